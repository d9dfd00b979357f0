// Deleting conntrack entries of the current netns (libnetfilter_conntrack), e.g. the
// UDP flows to a virtual IP whose real server is gone: stale entries would keep sending
// a client's datagrams to it.
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
  std::optional<net::IPAddress> orig_dst;      // the address the client sent to
  uint16_t orig_dst_port = 0;                  // 0 = any
  std::optional<net::IPAddress> reply_src;     // the server that answers (after DNAT)
};

// Deletes the matching entries; returns how many were deleted. Entries that vanish
// meanwhile are not errors.
Result<size_t> delete_entries(const Filter& filter);

}  // namespace knode::conntrack
