// A bounded wait for a condition that has no signal to wait on (a process gone, a lease run out):
// re-checks `done` every `every` until it holds or `limit` passes, and says which.
#pragma once

#include <chrono>
#include <thread>

namespace mrkv::test {

template <class Check>
bool poll_until(Check&& done, std::chrono::milliseconds limit,
                std::chrono::milliseconds every = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(every);
  }
  return true;
}

}  // namespace mrkv::test
