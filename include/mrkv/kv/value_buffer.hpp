// A stored value: one reference-counted heap block holding the bytes, referred to by an 8-byte handle.
// The store keeps a handle per key, and a cached append reply keeps another to the same block (the
// reply is a prefix of it, see store.hpp). Compared with a std::shared_ptr<std::string> this saves the
// 16-byte pointer pair, the control block and the string header: about 60 bytes per key.
//
// Appending writes past the end of the block when its capacity allows, even when the block is shared:
// holders of other handles only read the prefix they saw, which is never rewritten. Concurrent access
// to one block's bytes must be serialised by the caller (the store's shard mutex); the reference count
// itself is atomic, so handles may be dropped on any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <string_view>

namespace mrkv::kv {

class value_buffer {
 public:
  value_buffer() noexcept = default;  // empty, holds no block
  // A new block holding a copy of `bytes`, with room for exactly that (none at all when empty).
  static value_buffer copy_of(std::string_view bytes);

  value_buffer(const value_buffer& other) noexcept;
  value_buffer(value_buffer&& other) noexcept : block_(other.block_) { other.block_ = nullptr; }
  value_buffer& operator=(value_buffer other) noexcept {
    swap(other);
    return *this;
  }
  ~value_buffer();

  std::string_view view() const noexcept;
  std::size_t size() const noexcept;
  std::size_t capacity() const noexcept;
  void swap(value_buffer& other) noexcept {
    auto* mine = block_;
    block_ = other.block_;
    other.block_ = mine;
  }

  // Appends `more`. In place when it fits; otherwise the bytes move to a block of at least twice the
  // capacity, and the handle to the old block is returned so the caller can drop it outside its lock.
  value_buffer append(std::string_view more);

 private:
  struct block {
    std::atomic<std::size_t> references;
    std::size_t size;
    std::size_t capacity;
    char* bytes() noexcept { return reinterpret_cast<char*>(this + 1); }
  };
  static block* allocate(std::size_t capacity);

  block* block_ = nullptr;
};

}  // namespace mrkv::kv
