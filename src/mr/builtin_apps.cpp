#include "builtin_apps.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <unordered_set>
#include <vector>

#include "mrkv/common/log.hpp"
#include "mrkv/mr/words.hpp"

namespace mrkv::mr {
namespace {

std::string_view decimal(std::uint64_t n, char (&buf)[24]) {
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;  // 24 bytes always hold a 64-bit decimal
  return {buf, static_cast<std::size_t>(end - buf)};
}

// Counts words by their text, keyed by views into one text buffer. An open-addressing table (linear
// probing, power-of-two capacity, at most half full) instead of std::unordered_map: one flat array,
// no allocation per distinct word, and each slot keeps the word's first 8 bytes as an integer, so most
// words (English ones are short) are hashed and compared with a single unaligned load and no memcmp.
class word_counter {
 public:
  // Every word added must lie inside `text`, which makes it safe to load 8 bytes at a time.
  explicit word_counter(std::string_view text) : end_(text.data() + text.size()) {}

  void add(std::string_view word) {
    if (2 * (size_ + 1) > slots_.size()) grow();
    const std::uint64_t head = load_head(word);
    const std::uint64_t h = hash(word, head);
    std::size_t i = static_cast<std::size_t>(h) & (slots_.size() - 1);
    for (;;) {
      slot& s = slots_[i];
      if (s.count == 0) {
        s = slot{word.data(), word.size(), head, h, 1};
        ++size_;
        return;
      }
      if (s.head == head && s.size == word.size() &&
          (word.size() <= 8 || std::memcmp(s.data + 8, word.data() + 8, word.size() - 8) == 0)) {
        ++s.count;
        return;
      }
      i = (i + 1) & (slots_.size() - 1);
    }
  }

  template <class F>
  void for_each(F&& f) const {
    for (const slot& s : slots_)
      if (s.count != 0) f(std::string_view(s.data, s.size), s.count);
  }

 private:
  struct slot {
    const char* data = nullptr;
    std::size_t size = 0;
    std::uint64_t head = 0;   // the first min(size, 8) bytes, zero-padded
    std::uint64_t hash = 0;
    std::uint64_t count = 0;  // 0 marks an empty slot
  };

  static std::uint64_t load8(const char* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }

  std::uint64_t load_head(std::string_view w) const noexcept {
    if (w.size() >= 8) return load8(w.data());
    if constexpr (std::endian::native == std::endian::little) {
      // Reading past the word is fine while inside the text; the mask drops the extra bytes.
      if (end_ - w.data() >= 8) return load8(w.data()) & ((std::uint64_t{1} << (8 * w.size())) - 1);
    }
    std::uint64_t v = 0;
    std::memcpy(&v, w.data(), w.size());
    return v;
  }

  static std::uint64_t mix(std::uint64_t h) noexcept {
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    return h ^ (h >> 32);
  }

  static std::uint64_t hash(std::string_view w, std::uint64_t head) noexcept {
    std::uint64_t h = mix(head ^ (w.size() * 0x9e3779b97f4a7c15ull));
    if (w.size() > 8) {
      // The middle 8-byte words, then the last 8 bytes (which may overlap the ones before).
      for (std::size_t i = 8; i + 8 < w.size(); i += 8) h = mix(h ^ load8(w.data() + i));
      h = mix(h ^ load8(w.data() + w.size() - 8));
    }
    return h;
  }

  void grow() {
    std::vector<slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 4096 : 2 * old.size(), slot{});
    for (const slot& s : old) {
      if (s.count == 0) continue;
      std::size_t i = static_cast<std::size_t>(s.hash) & (slots_.size() - 1);
      while (slots_[i].count != 0) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = s;
    }
  }

  const char* end_;
  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

// wc: the lab's word count. Its map emits one pair per distinct word of the file with the number of
// occurrences, instead of one ("word", "1") per occurrence, and its reduce sums the counts. The output
// lines are the lab's; on the lab corpus there are 12x fewer pairs to store and sort, and counting
// allocates nothing per token, since the table is keyed by views into `contents`. This is a combiner in
// the sense of the MapReduce paper, folded into map because the app knows its reduce is a sum.
class word_count final : public application {
 public:
  const std::string& name() const noexcept override { return name_; }

  void map(std::string_view /*filename*/, std::string_view contents, emit_fn emit) override {
    word_counter counts(contents);
    for_each_word(contents, [&](std::string_view word) { counts.add(word); });
    char buf[24];
    counts.for_each([&](std::string_view word, std::uint64_t n) { emit(word, decimal(n, buf)); });
  }

  std::string reduce(std::string_view key, std::span<const std::string_view> values) override {
    std::uint64_t total = 0;
    for (std::string_view v : values) {
      std::uint64_t n = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc{} || end != v.data() + v.size() || v.empty() ||
          n > std::numeric_limits<std::uint64_t>::max() - total)
        throw app_error("wc: reduce of key " + log::peer_text(key, 60) + " got the value " + log::peer_text(v, 30) +
                        ", which is not a count");
      total += n;
    }
    char buf[24];
    return std::string(decimal(total, buf));
  }

  // A map task's output already has one count per word (map counts), so this sums only where one
  // task's map emitted a word twice; it is here so that every built-in shows the combiner at work.
  bool has_combiner() const noexcept override { return true; }
  void combine(std::string_view key, std::span<const std::string_view> values, emit_fn emit) override {
    if (values.size() == 1) return emit(key, values.front());
    emit(key, reduce(key, values));
  }

 private:
  std::string name_ = "wc";
};

// indexer: the lab's inverted index. Map emits (word, filename) once per distinct word of the file;
// reduce returns "<n> <file>,<file>,..." with the names in byte order.
class indexer final : public application {
 public:
  const std::string& name() const noexcept override { return name_; }

  void map(std::string_view filename, std::string_view contents, emit_fn emit) override {
    std::unordered_set<std::string_view> seen;
    for_each_word(contents, [&](std::string_view word) {
      if (seen.insert(word).second) emit(word, filename);
    });
  }

  std::string reduce(std::string_view /*key*/, std::span<const std::string_view> values) override {
    std::vector<std::string_view> docs(values.begin(), values.end());
    std::sort(docs.begin(), docs.end());
    std::string out = std::to_string(docs.size());
    out.push_back(' ');
    for (std::size_t i = 0; i < docs.size(); ++i) {
      if (i > 0) out.push_back(',');
      out.append(docs[i]);
    }
    return out;
  }

  // A document counts once per word: duplicates within one map task's output are dropped.
  bool has_combiner() const noexcept override { return true; }
  void combine(std::string_view key, std::span<const std::string_view> values, emit_fn emit) override {
    std::vector<std::string_view> docs(values.begin(), values.end());
    std::sort(docs.begin(), docs.end());
    docs.erase(std::unique(docs.begin(), docs.end()), docs.end());
    for (std::string_view doc : docs) emit(key, doc);
  }

 private:
  std::string name_ = "indexer";
};

}  // namespace

std::unique_ptr<application> make_builtin_app(std::string_view name) {
  if (name == "wc") return std::make_unique<word_count>();
  if (name == "indexer") return std::make_unique<indexer>();
  return nullptr;
}

}  // namespace mrkv::mr
