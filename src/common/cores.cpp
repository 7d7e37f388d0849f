#include "mrkv/common/cores.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <string>
#include <thread>

namespace mrkv {

namespace {

unsigned cores_in_affinity_mask() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  return static_cast<unsigned>(CPU_COUNT(&set));
}

// The quota of the cgroup this process is in. With cgroup v2 mounted at /sys/fs/cgroup as containers
// see it, the process's own cgroup is the root of that mount; on a host it is the path /proc names.
unsigned cores_in_cgroup_quota() {
  std::string relative;
  {
    std::ifstream self("/proc/self/cgroup");
    std::string line;
    while (std::getline(self, line))
      if (line.rfind("0::", 0) == 0) relative = line.substr(3);
  }
  for (const std::string& dir : {"/sys/fs/cgroup" + relative, std::string("/sys/fs/cgroup")}) {
    std::ifstream file(dir + "/cpu.max");
    std::string line;
    if (file && std::getline(file, line)) return cores_in_cpu_max(line);
  }
  return 0;
}

}  // namespace

unsigned cores_in_cpu_max(std::string_view line) {
  auto space = line.find(' ');
  if (space == std::string_view::npos) return 0;
  auto quota_text = line.substr(0, space);
  auto period_text = line.substr(space + 1);
  while (!period_text.empty() && (period_text.back() == '\n' || period_text.back() == ' ')) period_text.remove_suffix(1);
  unsigned long long quota = 0, period = 0;
  auto q = std::from_chars(quota_text.data(), quota_text.data() + quota_text.size(), quota);
  auto p = std::from_chars(period_text.data(), period_text.data() + period_text.size(), period);
  if (q.ec != std::errc{} || q.ptr != quota_text.data() + quota_text.size()) return 0;  // "max": no limit
  if (p.ec != std::errc{} || p.ptr != period_text.data() + period_text.size() || period == 0 || quota == 0) return 0;
  return static_cast<unsigned>((quota + period - 1) / period);
}

unsigned usable_cores() {
  unsigned cores = cores_in_affinity_mask();
  if (cores == 0) cores = std::thread::hardware_concurrency();
  if (unsigned quota = cores_in_cgroup_quota(); quota > 0) cores = cores == 0 ? quota : std::min(cores, quota);
  return std::max(1u, cores);
}

}  // namespace mrkv
