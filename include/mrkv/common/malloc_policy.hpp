// How each mode asks glibc's malloc to treat freed memory; called once at the start of a mode.
#pragma once

namespace mrkv {

// For the kvserver. glibc raises its mmap threshold each time a big mmapped block is freed, after which
// 10 MiB values come from the heap and stay in the process when freed. Pinning the threshold keeps every
// block of 128 KiB or more (values, request and reply bodies) in its own mapping, unmapped when freed.
// The trim threshold is lowered to match: with glibc's default, each thread's arena kept up to 128 KiB-1
// MiB of freed reply buffers resident (1,000 growing appends left about 1 MiB more than the value).
void return_big_blocks_to_the_os();

// For batch work (worker, sequential): keep freed memory for the next task instead of unmapping it,
// since every task reads, builds and writes buffers of the same few sizes. Without this, a worker on
// the 20x corpus took 75,000 page faults, with it about 3,000.
void keep_freed_memory_for_reuse();

}  // namespace mrkv
