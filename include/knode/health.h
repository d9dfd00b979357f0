// Health state the HTTP endpoints and the systemd watchdog read.
//
// HealthRegistry: components (kubelet, proxy, sources) report healthy or unhealthy with
// a reason; the kubelet's /healthz is 200 "ok" when all are healthy, else 503 with the
// reasons. A component may also be given a maximum report age, so one that stops
// reporting (a stuck worker) turns unhealthy without anyone saying so.
//
// ProxyHealth: kube-proxy's rule for its /healthz and /livez. The proxier calls
// queued_update() when a Service/EndpointSlice change arrives and updated() after each
// successful sync (and once when its sync loop starts, "in case a sync never succeeds").
// It is unhealthy when the oldest queued-but-unsynced change is older than the timeout,
// which kube-proxy sets to 2 x the sync period. /healthz is also unhealthy when the node
// is not eligible (being deleted, or tainted ToBeDeletedByClusterAutoscaler).
//
// Both are thread-safe; time comes from the injected Clock.
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
};

class HealthRegistry {
 public:
  explicit HealthRegistry(const Clock& clock = RealClock::instance()) : clock_(clock) {}

  void set_healthy(std::string_view component);
  void set_unhealthy(std::string_view component, std::string reason);
  // From now on, a report older than max_age makes the component unhealthy.
  void set_max_age(std::string_view component, Clock::SteadyTime::duration max_age);

  // Every component that has reported, by name, with staleness applied.
  std::vector<ComponentHealth> components() const;
  // True when every component is healthy (and when none has reported yet).
  bool healthy() const;
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
  };
  void report(std::string_view component, bool healthy, std::string reason);

  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
};

class ProxyHealth {
 public:
  // IP families as in net::IPAddress::family(): 4 or 6.
  static constexpr int kIPv4 = 4;
  static constexpr int kIPv6 = 6;

  ProxyHealth(const Clock& clock, Clock::SteadyTime::duration health_timeout)
      : clock_(clock), timeout_(health_timeout) {}

  void queued_update(int ip_family);
  void updated(int ip_family);
  void set_node_eligible(bool eligible);

  struct State {
    bool healthy = true;        // the proxier alone, as /livez reports it
    bool node_eligible = true;  // /healthz also requires this
    // When unhealthy, the last successful sync of the late family; otherwise the latest
    // sync of any family (the epoch if none yet). The HTTP handlers report the current
    // time instead whenever they answer 200, as kube-proxy does for compatibility.
    Clock::SystemTime last_updated;
    Clock::SystemTime current_time;
    std::string reason;  // why not healthy, for logs and the watchdog
  };
  State state() const;
  bool healthy() const { return state().healthy; }

 private:
  struct Family {
    Clock::SteadyTime updated_steady;
    Clock::SystemTime updated_system;
    std::optional<Clock::SteadyTime> oldest_pending;
  };

  const Clock& clock_;
  const Clock::SteadyTime::duration timeout_;
  mutable std::mutex mu_;
  std::map<int, Family> updated_;                  // families that have synced at least once
  std::map<int, Clock::SteadyTime> pending_;        // oldest queued, unsynced change per family
  bool node_eligible_ = true;
};

// "2024-01-02T03:04:05.5Z": RFC 3339 in UTC with the fraction trimmed, as Go's RFC3339Nano.
std::string format_rfc3339(Clock::SystemTime t);

}  // namespace knode::health
