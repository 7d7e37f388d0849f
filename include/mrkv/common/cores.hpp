// How many cores this process may really use: what `--threads 0` means. In a container or under
// taskset, std::thread::hardware_concurrency() reports the host's CPUs, and a thread per host CPU then
// costs memory (a malloc arena each) and context switches for nothing.
#pragma once

#include <string_view>

namespace mrkv {

// The smaller of the CPUs in this process's affinity mask and the cgroup v2 CPU quota (cpu.max,
// rounded up); at least 1. Falls back to hardware_concurrency() where neither can be read.
unsigned usable_cores();

// The quota in a cgroup v2 cpu.max line ("max 100000", "150000 100000"), rounded up to whole cores;
// 0 when there is no limit or the line can't be read.
unsigned cores_in_cpu_max(std::string_view line);

}  // namespace mrkv
