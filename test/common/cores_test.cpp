// usable_cores(): what `--threads 0` resolves to.
#include "mrkv/common/cores.hpp"

#include <doctest/doctest.h>

#include <sched.h>

#include <thread>

TEST_SUITE("common") {

TEST_CASE("cores: a cgroup v2 cpu.max quota is rounded up to whole cores") {
  CHECK(mrkv::cores_in_cpu_max("max 100000") == 0);
  CHECK(mrkv::cores_in_cpu_max("max 100000\n") == 0);
  CHECK(mrkv::cores_in_cpu_max("200000 100000\n") == 2);
  CHECK(mrkv::cores_in_cpu_max("150000 100000") == 2);
  CHECK(mrkv::cores_in_cpu_max("50000 100000") == 1);
  CHECK(mrkv::cores_in_cpu_max("") == 0);
  CHECK(mrkv::cores_in_cpu_max("garbage") == 0);
  CHECK(mrkv::cores_in_cpu_max("100000 0") == 0);
  CHECK(mrkv::cores_in_cpu_max("12x 100000") == 0);
}

TEST_CASE("cores: a thread pinned to one CPU counts one usable core") {
  unsigned all = 0, pinned = 0;
  // Affinity is per thread: pin a fresh one so the rest of the suite keeps every CPU.
  std::thread probe([&] {
    all = mrkv::usable_cores();
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(sched_getaffinity(0, sizeof(set), &set) == 0);
    int first = 0;
    while (!CPU_ISSET(first, &set)) ++first;
    CPU_ZERO(&set);
    CPU_SET(first, &set);
    REQUIRE(sched_setaffinity(0, sizeof(set), &set) == 0);
    pinned = mrkv::usable_cores();
  });
  probe.join();
  CHECK(all >= 1);
  CHECK(all <= std::thread::hardware_concurrency());
  CHECK(pinned == 1);
}

}  // TEST_SUITE
