// This file contains ordered_index: the keys of one store shard in byte order (bytes compared as
// unsigned), so that a listing starts reading where its page starts instead of scanning every key.
//
// It holds pointers to entries that live elsewhere (a shard's hash map nodes, whose addresses do not
// change while they exist), ordered by the entry's `first` member: 8 bytes a key plus the slack of its
// block. The pointers sit in sorted blocks of at most block_size, as in Python's sortedcontainers:
// insert and erase find their block by binary search over the blocks' last keys, then move at most
// block_size pointers inside it, so neither costs more than a few microseconds at any size, where one
// sorted vector would move half a shard per new key. A full block first passes entries to a
// neighbour with room and splits in two only when neither has any (as a B*-tree does), so blocks stay
// mostly full whatever order keys come in; a block that erases leave with a neighbour at most half a
// block between them merges with it, so deleting most keys leaves no trail of near-empty blocks.
//
// Not thread-safe: its owner's lock guards it (the store's shard mutex). An entry must be erased
// before it is destroyed.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <string_view>
#include <utility>
#include <vector>

namespace mrkv::kv {

// a < b with bytes compared as unsigned (std::string_view compares char, which is signed here).
inline bool unsigned_less(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = std::min(a.size(), b.size());
  const int c = n == 0 ? 0 : std::memcmp(a.data(), b.data(), n);
  return c != 0 ? c < 0 : a.size() < b.size();
}

template <class Entry>
class ordered_index {
 public:
  // Big enough that the blocks' own headers are nothing next to their pointers, small enough that an
  // insert's move within a block (up to 4 KiB) is a fraction of a microsecond.
  static constexpr std::size_t block_size = 512;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  // Adds `entry`, whose key must not be in the index yet.
  void insert(const Entry* entry) {
    const std::string_view key = key_of(entry);
    if (blocks_.empty()) {
      blocks_.emplace_back().reserve(block_size);
      blocks_.back().push_back(entry);
      ++size_;
      return;
    }
    std::size_t b = first_block_not_before(key, false);
    if (b == blocks_.size()) --b;  // past every key: the end of the last block
    if (blocks_[b].size() == block_size) b = make_room(b, key);
    auto& block = blocks_[b];
    block.insert(lower_bound(block, key, false), entry);
    ++size_;
  }

  // Removes `entry` if it is in the index; false when it is not.
  bool erase(const Entry* entry) {
    const std::string_view key = key_of(entry);
    const std::size_t b = first_block_not_before(key, false);
    if (b == blocks_.size()) return false;
    auto& block = blocks_[b];
    auto at = lower_bound(block, key, false);
    if (at == block.end() || *at != entry) return false;
    block.erase(at);
    --size_;
    if (block.empty()) {
      blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(b));
    } else if (b + 1 < blocks_.size() && block.size() + blocks_[b + 1].size() <= block_size / 2) {
      merge_with_next(b);
    } else if (b > 0 && blocks_[b - 1].size() + block.size() <= block_size / 2) {
      merge_with_next(b - 1);
    }
    return true;
  }

  // Calls visit(entry) for the entries whose key is at least `from` (greater than `from` when
  // `exclusive`), in order, until visit returns false or the entries run out.
  template <class Visit>
  void visit_from(std::string_view from, bool exclusive, Visit&& visit) const {
    std::size_t b = first_block_not_before(from, exclusive);
    if (b == blocks_.size()) return;
    for (auto it = lower_bound(blocks_[b], from, exclusive);; it = blocks_[b].begin()) {
      for (; it != blocks_[b].end(); ++it)
        if (!visit(*it)) return;
      if (++b == blocks_.size()) return;
    }
  }

  // Bytes held beyond the object itself (for tests and the memory figures).
  std::size_t heap_bytes() const noexcept {
    std::size_t bytes = blocks_.capacity() * sizeof(block);
    for (const auto& b : blocks_) bytes += b.capacity() * sizeof(const Entry*);
    return bytes;
  }

 private:
  using block = std::vector<const Entry*>;

  static std::string_view key_of(const Entry* entry) noexcept { return entry->first; }

  // Whether `entry` comes before the position of `key` (before or at it when `exclusive`).
  static bool before(const Entry* entry, std::string_view key, bool exclusive) noexcept {
    return exclusive ? !unsigned_less(key, key_of(entry)) : unsigned_less(key_of(entry), key);
  }

  static typename block::const_iterator lower_bound(const block& b, std::string_view key, bool exclusive) {
    return std::partition_point(b.begin(), b.end(), [&](const Entry* e) { return before(e, key, exclusive); });
  }
  static typename block::iterator lower_bound(block& b, std::string_view key, bool exclusive) {
    return std::partition_point(b.begin(), b.end(), [&](const Entry* e) { return before(e, key, exclusive); });
  }

  // The first block whose last entry is not before `key`; blocks_.size() when there is none.
  std::size_t first_block_not_before(std::string_view key, bool exclusive) const {
    auto it = std::partition_point(blocks_.begin(), blocks_.end(),
                                   [&](const block& b) { return before(b.back(), key, exclusive); });
    return static_cast<std::size_t>(it - blocks_.begin());
  }

  // Makes room for `key` in full block `b`: moves some of its entries into a neighbour with room if
  // there is one, else splits it. Returns the block that `key` goes into (which has room). Sharing with
  // neighbours before splitting keeps blocks full where splits alone would leave them half full: keys
  // that arrive in order (key:100000, key:100001, ...) would otherwise leave a trail of half blocks.
  std::size_t make_room(std::size_t b, std::string_view key) {
    auto& full = blocks_[b];
    // Half of the neighbour's room moves over, so both it and block b keep at least one free slot.
    if (b > 0 && block_size - blocks_[b - 1].size() >= 2) {
      auto& left = blocks_[b - 1];
      const auto n = static_cast<std::ptrdiff_t>((block_size - left.size()) / 2);
      left.insert(left.end(), full.begin(), full.begin() + n);
      full.erase(full.begin(), full.begin() + n);
      return unsigned_less(key_of(left.back()), key) ? b : b - 1;
    }
    if (b + 1 < blocks_.size() && block_size - blocks_[b + 1].size() >= 2) {
      auto& right = blocks_[b + 1];
      const auto n = static_cast<std::ptrdiff_t>((block_size - right.size()) / 2);
      right.insert(right.begin(), full.end() - n, full.end());
      full.erase(full.end() - n, full.end());
      return unsigned_less(key_of(full.back()), key) ? b + 1 : b;
    }
    split(b);
    return unsigned_less(key_of(blocks_[b].back()), key) ? b + 1 : b;
  }

  // Moves the upper half of full block `b` into a new block after it; both keep room for block_size,
  // so neither reallocates until it splits again.
  void split(std::size_t b) {
    block upper;
    upper.reserve(block_size);
    auto half = blocks_[b].begin() + static_cast<std::ptrdiff_t>(block_size / 2);
    upper.assign(half, blocks_[b].end());
    blocks_[b].erase(half, blocks_[b].end());
    blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(b) + 1, std::move(upper));
  }

  void merge_with_next(std::size_t b) {
    auto& next = blocks_[b + 1];
    blocks_[b].insert(blocks_[b].end(), next.begin(), next.end());
    blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(b) + 1);
  }

  std::vector<block> blocks_;  // each non-empty and sorted; every key of a block before the next block's
  std::size_t size_ = 0;
};

}  // namespace mrkv::kv
