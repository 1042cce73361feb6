// Helpers for tests of blocking code: a watchdog that turns a lost wake-up into a failure instead of a
// hang, a thread's CPU time, "this thread sleeps in its wait" and "eventually".
#pragma once

#include <pthread.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "check.h"

namespace pysf::test {

/// Calls `on_expiry` (once) if not destroyed within `limit`: it records a failure and must unstick the
/// blocked threads so that they can be joined. Sleeps on a condition variable meanwhile. Declare it before
/// the threads it guards, so that it outlives their joins.
class Watchdog {
 public:
  Watchdog(std::chrono::milliseconds limit, std::string what, std::function<void()> on_expiry)
      : thread_([this, limit, what = std::move(what), on_expiry = std::move(on_expiry)] {
          std::unique_lock lock(mutex_);
          if (cv_.wait_for(lock, limit, [this] { return done_; })) return;
          lock.unlock();
          report_failure(__FILE__, __LINE__, "watchdog: " + what + " did not finish in time");
          on_expiry();
        }) {}
  ~Watchdog() {
    {
      const std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

/// CPU time a (not yet joined) thread has used so far; zero if it cannot be read (a thread that already
/// returned, which the callers detect on their own).
inline std::chrono::nanoseconds thread_cpu_time(std::thread::native_handle_type thread) {
  clockid_t clock = 0;
  timespec now{};
  if (::pthread_getcpuclockid(thread, &clock) != 0 || ::clock_gettime(clock, &now) != 0) return {};
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

/// Checks that a thread that should be blocked in a wait neither returns nor burns CPU for a while
/// (after `settle`, its time to reach the wait).
inline void expect_sleeping(std::thread::native_handle_type thread, const std::atomic<bool>& returned,
                            const std::string& what,
                            std::chrono::milliseconds settle = std::chrono::milliseconds(50)) {
  using std::chrono::milliseconds;
  std::this_thread::sleep_for(settle);
  const auto cpu_before = thread_cpu_time(thread);
  std::this_thread::sleep_for(milliseconds(300));
  const auto used = thread_cpu_time(thread) - cpu_before;
  EXPECT_MSG(!returned.load(), what + " returned while it should wait");
  EXPECT_MSG(used < milliseconds(30),
             what + " used " + std::to_string(used.count() / 1000) + " µs of CPU in 300 ms of waiting");
}

/// Polls `condition` every millisecond until it holds or `limit` passes (test-side only, e.g. to see that
/// a thread reached its blocking call).
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace pysf::test
