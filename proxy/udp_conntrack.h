// Stale UDP conntrack entries, deleted when a UDP service's endpoints change, so a
// client's next datagram is NATed afresh.
#pragma once

#include "knode/proxy/model.h"
#include "knode/status.h"

namespace knode::iptables_proxy {

// Compares a UDP service port before and after (after == null: removed) and deletes the
// entries that would now misroute: to endpoints that left, on every destination of the
// service, and all entries of a service that gained its first endpoints. Logs failures.
void flush_stale_udp_entries(const proxy::ServicePort& before, const proxy::ServicePort* after);

}  // namespace knode::iptables_proxy
