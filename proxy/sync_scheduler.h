// When to sync, as kube-proxy's BoundedFrequencyRunner decides it: changes coalesce so
// syncs start at most once per min interval; a full resync (repairing drift) runs at
// least once per full interval; a failed sync retries after the min interval, never
// sooner than 1 s (a first sync too: a kernel refusing every attempt must not be asked in
// a tight loop), and makes the next one full. A housekeeping sync a mode asks for
// (nftables: deleting the chains a sync flushed, once packets no longer use them) runs as
// soon as nothing is in flight; neither it nor a periodic full resync that carries no
// change counts toward the min interval, so neither delays the next real change. A
// full sync due only to the full interval is marked periodic (Decision::periodic).
// Pure logic over injected time, so tests need no sleeping.
#pragma once

#include <chrono>

namespace knode::proxy {

class SyncScheduler {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;

  SyncScheduler(Duration min_interval, Duration full_interval, TimePoint now)
      : min_(min_interval), full_(full_interval), last_full_(now) {}

  void changed() { dirty_ = true; }
  void housekeeping() { housekeeping_ = true; }
  void ready() { ready_ = true; }  // the initial state has arrived

  struct Decision {
    bool run = false;
    bool full = false;
    // A full sync only because the full interval ran out (not the first, not a retry):
    // a mode that can tell cheaply that the kernel is as it left it may sync less.
    bool periodic = false;
    TimePoint wake_at{};  // when not running now: ask again then
  };
  Decision decide(TimePoint now) const;

  void started(TimePoint now, bool full);
  void finished(TimePoint now, bool ok);
  bool in_flight() const { return in_flight_; }

 private:
  Duration min_, full_;
  bool ready_ = false;
  bool dirty_ = false;
  bool housekeeping_ = false;
  bool in_flight_ = false;
  bool first_ = true;
  bool force_full_ = false;
  TimePoint last_start_{};
  TimePoint last_full_;
  TimePoint retry_at_{};  // after a failed sync: not before then
};

}  // namespace knode::proxy
