#include "pod/backoff.h"

#include <algorithm>

namespace knode::kubelet {

using namespace std::chrono_literals;

namespace {
constexpr auto kInitialDelay = 10s;
constexpr auto kMaxDelay = 300s;
// The kubelet forgives a crash loop once a container has run this long since it was
// last restarted.
constexpr auto kContainerResetAfter = 600s;
}  // namespace

Backoff::Backoff(const Clock& clock, Duration initial, Duration max, ExpiredFn expired)
    : clock_(clock), initial_(initial), max_(max), expired_fn_(std::move(expired)) {}

Backoff Backoff::container_restarts(const Clock& clock) {
  return Backoff(clock, kInitialDelay, kMaxDelay, [](TimePoint event_time, TimePoint last_update) {
    return event_time - last_update > kContainerResetAfter;
  });
}

Backoff Backoff::image_pulls(const Clock& clock) {
  return Backoff(clock, kInitialDelay, kMaxDelay);
}

bool Backoff::expired(TimePoint event_time, TimePoint last_update) const {
  if (expired_fn_) return expired_fn_(event_time, last_update);
  return event_time - last_update > 2 * max_;
}

const Backoff::Entry* Backoff::live(const std::string& key, TimePoint event_time) const {
  auto it = entries_.find(key);
  if (it == entries_.end() || expired(event_time, it->second.last_update)) return nullptr;
  return &it->second;
}

Backoff::Duration Backoff::get(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? Duration::zero() : it->second.delay;
}

void Backoff::next(const std::string& key, TimePoint event_time) {
  auto it = entries_.find(key);
  if (it == entries_.end() || expired(event_time, it->second.last_update)) {
    entries_[key] = Entry{initial_, clock_.steady_now()};
    return;
  }
  it->second.delay = std::min(it->second.delay * 2, max_);
  it->second.last_update = clock_.steady_now();
}

bool Backoff::is_in_backoff(const std::string& key, TimePoint since) const {
  const Entry* e = live(key, since);
  return e != nullptr && clock_.steady_now() - since < e->delay;
}

bool Backoff::is_in_backoff_since_update(const std::string& key, TimePoint now) const {
  const Entry* e = live(key, now);
  return e != nullptr && now - e->last_update < e->delay;
}

Backoff::Duration Backoff::remaining(const std::string& key, TimePoint since) const {
  if (!is_in_backoff(key, since)) return Duration::zero();
  return live(key, since)->delay - (clock_.steady_now() - since);
}

void Backoff::reset(const std::string& key) { entries_.erase(key); }

void Backoff::gc() {
  TimePoint now = clock_.steady_now();
  std::erase_if(entries_, [&](const auto& kv) { return expired(now, kv.second.last_update); });
}

Backoff::TimePoint Backoff::to_steady(const Clock& clock, Clock::SystemTime t) {
  auto ago = std::chrono::duration_cast<Duration>(clock.system_now() - t);
  return clock.steady_now() - ago;
}

std::string container_backoff_key(const api::Pod& pod, const std::string& container,
                                  const std::string& spec_hash) {
  const auto& m = pod.metadata;
  return m.name + "_" + m.namespace_ + "_" + m.uid + "_" + container + "_" + spec_hash;
}

std::string image_backoff_key(const api::Pod& pod, const std::string& image) {
  return pod.metadata.uid + "_" + image;
}

}  // namespace knode::kubelet
