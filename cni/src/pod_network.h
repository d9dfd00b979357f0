// The kernel side of one attachment: bridge, veth pair, pod addresses and routes.
#pragma once

#include <string>
#include <vector>

#include "knode/cni/config.h"
#include "knode/cni/error.h"
#include "knode/cni/result.h"
#include "knode/dataplane/link.h"

namespace knode::cni {

// "veth" + 8 hex digits of a hash of (network, container, ifname): DEL finds the host
// end without entering the pod's namespace, which may be gone.
std::string host_veth_name(const std::string& network, const Attachment& a);

struct PodLinks {
  link::LinkInfo bridge;
  link::LinkInfo host;
  link::LinkInfo pod;
};

// Fails with kInterfaceExists when ifname already exists in the pod netns.
Status check_ifname_free(const std::string& netns, const std::string& ifname);

// Creates or reuses the bridge, creates the veth pair, configures both ends. `ips`
// and `routes` are the IPAM answer; the routes actually installed are returned in
// `routes_out` (IPAM's plus the default route when isDefaultGateway).
Result<PodLinks> setup_pod_network(const NetConf& conf, const Attachment& att, const std::string& netns,
                                    const std::vector<ResultIp>& ips, const std::vector<ResultRoute>& routes,
                                    std::vector<ResultRoute>* routes_out);

// Removes the veth pair (idempotent; the pod netns need not exist).
Status teardown_pod_network(const NetConf& conf, const Attachment& att);

// Verifies what prevResult says against the kernel (CHECK).
Status check_pod_network(const NetConf& conf, const Attachment& att, const std::string& netns,
                       const CniResult& prev);

// The routes the pod gets: IPAM's, plus a default route per family when isDefaultGateway.
std::vector<ResultRoute> pod_routes(const NetConf& conf, const std::vector<ResultIp>& ips,
                                    const std::vector<ResultRoute>& ipam_routes);

}  // namespace knode::cni
