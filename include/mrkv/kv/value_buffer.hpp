// A stored value: one reference-counted heap block, referred to by an 8-byte handle. The store keeps a
// handle per key, and a cached append reply keeps another to the same block (the reply is a prefix of
// it, see store.hpp). Compared with a std::shared_ptr<std::string> this saves the 16-byte pointer pair,
// the control block and the string header: about 60 bytes per key.
//
// Small values live inside the block. A value that outgrows its room, or is large from the start, lives
// in a separate buffer that the block points to, so growing it frees the old bytes at once even while
// a cached reply holds the block: that reply reads its prefix from whatever buffer is current.
//
// Appending writes past the end of the value when its capacity allows, even when the block is shared:
// holders of other handles only read the prefix they saw, which is never rewritten. Concurrent access
// to one block's bytes must be serialised by the caller (the store's shard mutex); the reference count
// itself is atomic, so handles may be dropped on any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace mrkv::kv {

class value_buffer {
 public:
  struct free_bytes {
    void operator()(char* bytes) const noexcept { std::free(bytes); }
  };
  // Bytes a value has moved out of, for the caller to drop once it has released its lock.
  using outgrown_bytes = std::unique_ptr<char, free_bytes>;

  static constexpr std::size_t largest_inline = 64;  // bytes; larger values get a buffer of their own

  value_buffer() noexcept = default;  // empty, holds no block
  // A new block holding a copy of `bytes`, with room for exactly that (no block at all when empty).
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

  // Appends `more`. In place when it fits; otherwise the value moves to a buffer of at least twice the
  // capacity, and the bytes it left are returned.
  outgrown_bytes append(std::string_view more);

 private:
  struct block {
    std::atomic<std::uint32_t> references;
    bool external;  // the bytes are in a buffer of their own, whose address the inline area holds
    std::size_t size;
    std::size_t capacity;
    char* area() noexcept { return reinterpret_cast<char*>(this + 1); }
    char* bytes() noexcept;
    void point_to(char* buffer) noexcept;
  };
  static block* allocate(std::size_t area_size);

  block* block_ = nullptr;
};

}  // namespace mrkv::kv
