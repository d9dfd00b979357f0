// Health state the HTTP endpoints and the systemd watchdog read.
//
// HealthRegistry: components (kubelet, proxy, sources) report healthy or unhealthy with
// a reason; the kubelet's /healthz is 200 "ok" when all are healthy, else 503 with the
// reasons. A component may also be given a maximum report age, so one that stops
// reporting (a stuck worker) turns unhealthy without anyone saying so. A component marked
// external is a dependency (the container runtime): it shows in /healthz, but it does not
// make knode itself unhealthy for the systemd watchdog, since a restart would not fix it.
//
// Thread-safe; time comes from the injected Clock.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "knode/clock.h"

namespace knode::health {

struct ComponentHealth {
  std::string component;
  bool healthy = false;
  std::string reason;               // empty when healthy
  Clock::SystemTime last_updated;   // when the component last reported
  bool external = false;            // a dependency, not part of knode (see set_external)
};

class HealthRegistry {
 public:
  explicit HealthRegistry(const Clock& clock = RealClock::instance()) : clock_(clock) {}

  void set_healthy(std::string_view component);
  void set_unhealthy(std::string_view component, std::string reason);
  // From now on, a report older than max_age makes the component unhealthy.
  void set_max_age(std::string_view component, Clock::SteadyTime::duration max_age);
  // The component is a dependency outside knode: healthy(kSelf) ignores it.
  void set_external(std::string_view component);

  enum class Scope { kAll, kSelf };

  // Every component that has reported, by name, with staleness applied.
  std::vector<ComponentHealth> components() const;
  // True when every component is healthy (and when none has reported yet); with kSelf,
  // every component but the external ones.
  bool healthy(Scope scope = Scope::kAll) const;
  // "kubelet: PLEG is not healthy; proxy: no report for 90s", or "" when healthy.
  std::string unhealthy_reason() const;

 private:
  struct Entry {
    bool reported = false;
    bool healthy = false;
    std::string reason;
    Clock::SystemTime system_time;
    Clock::SteadyTime steady_time;
    std::optional<Clock::SteadyTime::duration> max_age;
    bool external = false;
  };
  void report(std::string_view component, bool healthy, std::string reason);

  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
};

// "2024-01-02T03:04:05.5Z": RFC 3339 in UTC with the fraction trimmed, as Go's RFC3339Nano.
std::string format_rfc3339(Clock::SystemTime t);

}  // namespace knode::health
