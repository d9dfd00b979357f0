// kube-proxy's health rule for its /healthz and /livez (pkg/proxy/healthcheck). The
// proxier calls queued_update() when a Service/EndpointSlice change arrives and
// updated() after each successful sync (and once when its sync loop starts, "in case a
// sync never succeeds"). It is unhealthy when the oldest queued-but-unsynced change is
// older than the timeout, which kube-proxy sets to 2 x the sync period. /healthz is also
// unhealthy when the node is not eligible (being deleted, or tainted
// ToBeDeletedByClusterAutoscaler). Thread-safe; time comes from the injected Clock.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "knode/clock.h"
#include "knode/http/types.h"
#include "knode/metrics.h"

namespace knode::proxy {

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

// kube-proxy's JSON bodies (application/json, X-Content-Type-Options: nosniff):
//   /healthz {"lastUpdated": "...","currentTime": "...", "nodeEligible": true}
//   /livez   {"lastUpdated": "...","currentTime": "..."}
// 200 when healthy, 503 when not; /livez ignores node eligibility.
// `answers`, when given, counts responses by status code; kube-proxy registers these as
// kubeproxy_healthz_total{code} and kubeproxy_livez_total{code}.
http::Handler healthz_handler(const ProxyHealth& health, metrics::CounterFamily* answers = nullptr);
http::Handler livez_handler(const ProxyHealth& health, metrics::CounterFamily* answers = nullptr);

}  // namespace knode::proxy
