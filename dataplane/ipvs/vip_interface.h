// kube-ipvs0: a dummy interface holding every service VIP as a host address, so the
// node treats traffic to them as local and IPVS (at LOCAL_IN) sees it. Plugs into
// IpvsBackendConfig::sync_vips.
#pragma once

#include <functional>
#include <set>
#include <string>

#include "knode/net.h"
#include "knode/status.h"

namespace knode::ipvs {

inline constexpr const char* kDefaultVipInterface = "kube-ipvs0";

// Makes `name` exist (dummy, down as kube-proxy leaves it: local routes work without
// carrier) and hold exactly `vips` as /32 and /128. Bound to the network namespace
// current at the call. An empty set removes the interface (cleanup).
Status sync_vip_interface(const std::string& name, const std::set<net::IPAddress>& vips);

// sync_vip_interface bound to a name, for IpvsBackendConfig::sync_vips.
std::function<Status(const std::set<net::IPAddress>&)> vip_interface_syncer(
    std::string name = kDefaultVipInterface);

}  // namespace knode::ipvs
