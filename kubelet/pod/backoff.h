// Upstream's keyed exponential back-off (client-go flowcontrol.Backoff) over an injected
// clock, with the two configurations the kubelet uses: restarting crashed containers
// (CrashLoopBackOff) and pulling images (ImagePullBackOff).
//
// Times are steady; a wall time from the runtime (a container's finishedAt) becomes one
// with to_steady().
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "knode/api/pod.h"
#include "knode/clock.h"

namespace knode::kubelet {

class Backoff {
 public:
  using Duration = std::chrono::steady_clock::duration;
  using TimePoint = Clock::SteadyTime;
  // Whether an entry last moved at `last_update` is stale at `event_time`: the next
  // next() starts over from the initial delay, and gc() drops it.
  using ExpiredFn = std::function<bool(TimePoint event_time, TimePoint last_update)>;

  // An entry expires once 2 * max has passed since it last moved, unless `expired` says
  // otherwise.
  Backoff(const Clock& clock, Duration initial, Duration max, ExpiredFn expired = nullptr);

  // 10 s doubling to 300 s; a container that ran 10 minutes since its last restart
  // starts over at 10 s.
  static Backoff container_restarts(const Clock& clock);
  // 10 s doubling to 300 s.
  static Backoff image_pulls(const Clock& clock);

  // The current delay of `key`; zero when it has none.
  Duration get(const std::string& key) const;
  // Moves `key` to its next delay (the initial one when new or expired) and records now
  // as its last update.
  void next(const std::string& key, TimePoint event_time);
  // Whether less than the delay has passed since `since` (the container's exit for a
  // restart): IsInBackOffSince.
  bool is_in_backoff(const std::string& key, TimePoint since) const;
  // Whether less than the delay has passed between the last update and `now`, as image
  // pulls ask: IsInBackOffSinceUpdate.
  bool is_in_backoff_since_update(const std::string& key, TimePoint now) const;
  // What is left of the window is_in_backoff(key, since) checks; zero when out of it.
  Duration remaining(const std::string& key, TimePoint since) const;
  void reset(const std::string& key);
  // Drops every entry that has expired by now.
  void gc();
  size_t size() const { return entries_.size(); }

  // The steady time of a wall-clock instant, by the clock's current offset.
  static TimePoint to_steady(const Clock& clock, Clock::SystemTime t);

 private:
  struct Entry {
    Duration delay{};
    TimePoint last_update{};
  };
  bool expired(TimePoint event_time, TimePoint last_update) const;
  const Entry* live(const std::string& key, TimePoint event_time) const;

  const Clock& clock_;
  Duration initial_, max_;
  ExpiredFn expired_fn_;
  std::map<std::string, Entry> entries_;
};

// The kubelet's keys: a container restart is keyed by the pod and the container's spec
// hash (a changed spec starts over), an image pull by pod UID and image.
std::string container_backoff_key(const api::Pod& pod, const std::string& container,
                                  const std::string& spec_hash);
std::string image_backoff_key(const api::Pod& pod, const std::string& image);

}  // namespace knode::kubelet
