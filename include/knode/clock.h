// Injected time. Code that measures intervals reads steady_now(); code that shows a time
// to a person or a peer (RFC 3339 in a health body, a metric's start time) reads
// system_now(). Tests pass a FakeClock (tests/fakes/fake_clock.h) and never sleep.
#pragma once

#include <chrono>

namespace knode {

class Clock {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using SystemTime = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;
  virtual SteadyTime steady_now() const = 0;
  virtual SystemTime system_now() const = 0;
};

// The process's real clocks.
class RealClock final : public Clock {
 public:
  SteadyTime steady_now() const override { return std::chrono::steady_clock::now(); }
  SystemTime system_now() const override { return std::chrono::system_clock::now(); }

  // One shared instance for callers that do not inject a clock.
  static const RealClock& instance() {
    static const RealClock clock;
    return clock;
  }
};

}  // namespace knode
