// Deleting conntrack entries of the current netns (libnetfilter_conntrack), as
// kube-proxy does when a UDP service or endpoint changes: stale entries would keep
// sending datagrams to an endpoint that is gone (or past the new one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "knode/net.h"
#include "knode/status.h"

namespace knode::conntrack {

// Which entries to delete; every field set must match. Addresses are IPv4 or IPv6.
struct Filter {
  uint8_t protocol = 17;                       // IPPROTO_UDP; 0 = any
  std::optional<net::IPAddress> orig_dst;      // the service IP the client sent to
  uint16_t orig_dst_port = 0;                  // 0 = any
  std::optional<net::IPAddress> reply_src;     // the endpoint that answers (after DNAT)
};

// Deletes the matching entries; returns how many were deleted. Entries that vanish
// meanwhile are not errors.
Result<size_t> delete_entries(const Filter& filter);

// kube-proxy's helpers, spelled out:
// the service IP is gone (all its UDP flows): conntrack -D -p udp --orig-dst IP
Result<size_t> clear_service_ip(const net::IPAddress& service_ip, uint8_t protocol = 17);
// one service port is gone: ... --orig-dst IP --orig-port-dst PORT
Result<size_t> clear_service_port(const net::IPAddress& service_ip, uint16_t port,
                                  uint8_t protocol = 17);
// an endpoint of the service is gone: ... --orig-dst IP --reply-src ENDPOINT
Result<size_t> clear_endpoint(const net::IPAddress& service_ip, const net::IPAddress& endpoint,
                              uint8_t protocol = 17);

}  // namespace knode::conntrack
