#include "mrkv/kv/value_buffer.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace mrkv::kv {

value_buffer::block* value_buffer::allocate(std::size_t capacity) {
  void* memory = std::malloc(sizeof(block) + capacity);
  if (memory == nullptr) throw std::bad_alloc();
  auto* b = static_cast<block*>(memory);
  new (&b->references) std::atomic<std::size_t>(1);
  b->size = 0;
  b->capacity = capacity;
  return b;
}

value_buffer value_buffer::copy_of(std::string_view bytes) {
  value_buffer out;
  if (bytes.empty()) return out;
  out.block_ = allocate(bytes.size());
  std::memcpy(out.block_->bytes(), bytes.data(), bytes.size());
  out.block_->size = bytes.size();
  return out;
}

value_buffer::value_buffer(const value_buffer& other) noexcept : block_(other.block_) {
  if (block_ != nullptr) block_->references.fetch_add(1, std::memory_order_relaxed);
}

value_buffer::~value_buffer() {
  if (block_ != nullptr && block_->references.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    block_->references.~atomic();
    std::free(block_);
  }
}

std::string_view value_buffer::view() const noexcept {
  return block_ == nullptr ? std::string_view() : std::string_view(block_->bytes(), block_->size);
}

std::size_t value_buffer::size() const noexcept { return block_ == nullptr ? 0 : block_->size; }

std::size_t value_buffer::capacity() const noexcept { return block_ == nullptr ? 0 : block_->capacity; }

value_buffer value_buffer::append(std::string_view more) {
  if (more.empty()) return {};
  if (block_ == nullptr) {
    *this = copy_of(more);
    return {};
  }
  if (more.size() <= block_->capacity - block_->size) {
    std::memcpy(block_->bytes() + block_->size, more.data(), more.size());
    block_->size += more.size();
    return {};
  }
  // Geometric growth, as std::string grows: a run of appends costs amortised linear time.
  const std::size_t needed = block_->size + more.size();
  block* bigger = allocate(std::max(needed, 2 * block_->capacity));
  std::memcpy(bigger->bytes(), block_->bytes(), block_->size);
  std::memcpy(bigger->bytes() + block_->size, more.data(), more.size());
  bigger->size = needed;
  value_buffer old;
  old.block_ = block_;
  block_ = bigger;
  return old;
}

}  // namespace mrkv::kv
