// Stale UDP conntrack entries, deleted when a UDP service's endpoints change, so a
// client's next datagram is NATed afresh. Every mode does this after a successful sync.
#pragma once

#include <map>
#include <set>
#include <string>

#include "knode/proxy/model.h"
#include "knode/status.h"

namespace knode::proxy {

// Compares a UDP service port before and after (after == null: removed) and deletes the
// entries that would now misroute: to endpoints that left, on every destination of the
// service, and all entries of a service that gained its first endpoints. Logs failures.
void flush_stale_udp_entries(const ServicePort& before, const ServicePort* after);

// The UDP service ports of the last successful sync, to compare the next one against.
class StaleUdpFlows {
 public:
  // After a successful sync of `state` (`changed`: the service ports it touched; null:
  // all of them).
  void after_sync(const ProxyState& state, const std::set<std::string>* changed);

 private:
  std::map<std::string, ServicePort> udp_;
};

}  // namespace knode::proxy
