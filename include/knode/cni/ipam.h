// host-local allocation: one address per range set, round-robin after the last
// reserved address, never the network, broadcast or gateway address.
#pragma once

#include <vector>

#include "knode/cni/config.h"
#include "knode/cni/error.h"
#include "knode/cni/ipam_store.h"
#include "knode/cni/result.h"

namespace knode::cni {

struct Allocation {
  std::vector<ResultIp> ips;  // one per range set, interface index unset
  std::vector<ResultRoute> routes;
};

// Reserves one address for owner in every range set; on a full set releases what it
// took and fails with kRangeExhausted naming the set.
Result<Allocation> ipam_allocate(IpamStore& store, const IpamConfig& conf, const Attachment& owner);
// Addresses still free in the ranges (for STATUS).
size_t ipam_free_count(const IpamStore& store, const RangeSet& set, size_t cap);
// The range a reserved address belongs to, for its gateway and prefix.
const Range* find_range(const IpamConfig& conf, const net::IPAddress& ip);

}  // namespace knode::cni
