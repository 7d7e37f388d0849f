#include "mrkv/kv/value_buffer.hpp"

#include <algorithm>
#include <cstring>
#include <new>

namespace mrkv::kv {

namespace {

char* allocate_bytes(std::size_t n) {
  auto* bytes = static_cast<char*>(std::malloc(n));
  if (bytes == nullptr) throw std::bad_alloc();
  return bytes;
}

}  // namespace

char* value_buffer::block::bytes() noexcept {
  if (!external) return area();
  char* buffer;
  std::memcpy(&buffer, area(), sizeof buffer);
  return buffer;
}

void value_buffer::block::point_to(char* buffer) noexcept {
  std::memcpy(area(), &buffer, sizeof buffer);
  external = true;
}

value_buffer::block* value_buffer::allocate(std::size_t area_size) {
  // Every block has room for a pointer, so any value can move out to a buffer of its own later.
  void* memory = allocate_bytes(sizeof(block) + std::max(area_size, sizeof(char*)));
  auto* b = new (memory) block;
  b->references.store(1, std::memory_order_relaxed);
  b->external = false;
  b->size = 0;
  b->capacity = std::max(area_size, sizeof(char*));
  return b;
}

value_buffer value_buffer::copy_of(std::string_view bytes) {
  value_buffer out;
  if (bytes.empty()) return out;
  if (bytes.size() <= largest_inline) {
    out.block_ = allocate(bytes.size());
  } else {
    out.block_ = allocate(0);
    char* buffer;
    try {
      buffer = allocate_bytes(bytes.size());
    } catch (...) {
      std::free(out.block_);
      out.block_ = nullptr;
      throw;
    }
    out.block_->point_to(buffer);
    out.block_->capacity = bytes.size();
  }
  std::memcpy(out.block_->bytes(), bytes.data(), bytes.size());
  out.block_->size = bytes.size();
  return out;
}

value_buffer::value_buffer(const value_buffer& other) noexcept : block_(other.block_) {
  if (block_ != nullptr) block_->references.fetch_add(1, std::memory_order_relaxed);
}

value_buffer::~value_buffer() {
  if (block_ != nullptr && block_->references.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    if (block_->external) std::free(block_->bytes());
    block_->~block();
    std::free(block_);
  }
}

std::string_view value_buffer::view() const noexcept {
  return block_ == nullptr ? std::string_view() : std::string_view(block_->bytes(), block_->size);
}

std::size_t value_buffer::size() const noexcept { return block_ == nullptr ? 0 : block_->size; }

std::size_t value_buffer::capacity() const noexcept { return block_ == nullptr ? 0 : block_->capacity; }

value_buffer::outgrown_bytes value_buffer::append(std::string_view more) {
  if (more.empty()) return nullptr;
  if (block_ == nullptr) {
    *this = copy_of(more);
    return nullptr;
  }
  if (more.size() <= block_->capacity - block_->size) {
    std::memcpy(block_->bytes() + block_->size, more.data(), more.size());
    block_->size += more.size();
    return nullptr;
  }
  // Geometric growth, as std::string grows: a run of appends costs amortised linear time.
  const std::size_t needed = block_->size + more.size();
  const std::size_t capacity = std::max(needed, 2 * block_->capacity);
  char* bigger = allocate_bytes(capacity);
  char* old = block_->bytes();
  std::memcpy(bigger, old, block_->size);
  std::memcpy(bigger + block_->size, more.data(), more.size());
  outgrown_bytes left(block_->external ? old : nullptr);
  block_->point_to(bigger);
  block_->size = needed;
  block_->capacity = capacity;
  return left;
}

}  // namespace mrkv::kv
