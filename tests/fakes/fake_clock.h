// A clock that moves only when a test says so. Both readings advance together, so code
// that measures with steady time and reports system time sees one consistent story.
// Thread-safe: a worker thread may read while the test advances.
#pragma once

#include <chrono>
#include <mutex>

#include "knode/clock.h"

namespace knode::testing {

class FakeClock final : public Clock {
 public:
  // Starts at a fixed, readable wall time: 2024-01-02T03:04:05Z.
  FakeClock() : FakeClock(SystemTime(std::chrono::seconds(1704164645))) {}
  explicit FakeClock(SystemTime start) : system_(start) {}

  SteadyTime steady_now() const override {
    std::lock_guard lock(mu_);
    return steady_;
  }
  SystemTime system_now() const override {
    std::lock_guard lock(mu_);
    return system_;
  }

  template <typename Rep, typename Period>
  void advance(std::chrono::duration<Rep, Period> d) {
    std::lock_guard lock(mu_);
    steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
    system_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  }

  // Steps the wall clock alone, as NTP or an operator might; steady time does not move.
  void set_system_time(SystemTime t) {
    std::lock_guard lock(mu_);
    system_ = t;
  }

 private:
  mutable std::mutex mu_;
  SteadyTime steady_{std::chrono::hours(1)};
  SystemTime system_;
};

}  // namespace knode::testing
