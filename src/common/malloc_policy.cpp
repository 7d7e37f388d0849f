#include "mrkv/common/malloc_policy.hpp"

#include <malloc.h>

namespace mrkv {

void return_big_blocks_to_the_os() {
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

void keep_freed_memory_for_reuse() {
  mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
}

}  // namespace mrkv
