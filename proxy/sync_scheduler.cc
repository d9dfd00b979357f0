#include "sync_scheduler.h"

#include <algorithm>

namespace knode::proxy {

SyncScheduler::Decision SyncScheduler::decide(TimePoint now) const {
  Decision d;
  if (!ready_ || in_flight_) {
    d.wake_at = TimePoint::max();
    return d;
  }
  if (now < retry_at_) {
    d.wake_at = retry_at_;
    return d;
  }
  if (first_) return Decision{true, true, false, {}};
  TimePoint earliest = last_start_ + min_;
  TimePoint full_due = last_full_ + full_;
  bool want_full = force_full_ || now >= full_due;
  bool periodic = want_full && !force_full_;
  if ((dirty_ || want_full) && now >= earliest) return Decision{true, want_full, periodic, {}};
  // Now, whatever the min interval says: it carries what changed meanwhile too, which
  // keeps the rate at most two syncs per min interval.
  if (housekeeping_) return Decision{true, want_full, periodic, {}};
  d.wake_at = (dirty_ || force_full_) ? earliest : std::max(earliest, full_due);
  return d;
}

void SyncScheduler::started(TimePoint now, bool full) {
  in_flight_ = true;
  // Only a sync that carries changes (or the first, or a retry) counts toward the min
  // interval: a housekeeping sync or a periodic resync with nothing new must not make
  // the next change wait (with a 30 s period, that was about one change in twenty at
  // 10,000 services waiting most of a second).
  if (dirty_ || force_full_ || first_) last_start_ = now;
  dirty_ = false;
  housekeeping_ = false;
  if (full) {
    force_full_ = false;
    last_full_ = now;
  }
}

void SyncScheduler::finished(TimePoint now, bool ok) {
  in_flight_ = false;
  if (ok) {
    first_ = false;
    return;
  }
  // Retry after the min interval (at least 1 s), as a full sync (the kernel state is
  // unknown now).
  dirty_ = true;
  force_full_ = true;
  retry_at_ = now + std::max<Duration>(min_, std::chrono::seconds(1));
}

}  // namespace knode::proxy
