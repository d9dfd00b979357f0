// What the IPVS table should hold for a ProxyState: a pure function, unit-tested alone.
#pragma once

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "knode/dataplane/ipvs.h"
#include "knode/proxy/model.h"

namespace knode::ipvs_proxy {

using ipvs::RealServer;
using ipvs::VirtualServer;

using ServiceKey = std::tuple<net::IPAddress, uint16_t, net::Protocol>;
inline ServiceKey key_of(const VirtualServer& vs) { return {vs.address, vs.port, vs.protocol}; }

struct DesiredService {
  VirtualServer vs;
  std::vector<RealServer> dests;
  std::string owner;  // ServicePort::name
};

struct DesiredOptions {
  // Addresses NodePorts listen on (kube-proxy's --nodeport-addresses resolved).
  std::vector<net::IPAddress> node_addresses;
  // The IPVS scheduler of every virtual server (--ipvs-scheduler), as the kernel names it.
  std::string scheduler = "rr";
  // Flags added to services scheduled with "sh" (kFlagShFallback, kFlagShPort).
  uint32_t sh_flags = 0;
};

// Virtual servers for the cluster IP, every node address (NodePort), external IPs and
// load-balancer IPs of each service port; real servers in masquerade mode with the
// backends' weights; ClientIP affinity as persistence. A key claimed twice keeps the
// first (sorted by name) claimant.
// `contested` (optional) gets the keys more than one service port claims.
std::map<ServiceKey, DesiredService> build_desired(const proxy::ProxyState& state,
                                                   const DesiredOptions& options,
                                                   std::set<ServiceKey>* contested = nullptr);
// The same for one service port, added to `out`.
void add_desired(const proxy::ServicePort& sp, const DesiredOptions& options,
                 std::map<ServiceKey, DesiredService>* out, std::set<ServiceKey>* contested = nullptr);

}  // namespace knode::ipvs_proxy
