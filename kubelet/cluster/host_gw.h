// Pod routes between nodes on one L2 segment (--pod-routes=host-gw), as flannel's
// host-gw backend does it: for every other Node with a spec.podCIDR and an InternalIP, a
// route to that CIDR through that IP. The routes knode owns are exactly the main table's
// routes with a gateway to a subnet of --cluster-cidr, other than this node's own pod
// CIDR: a restart or a node that left is reconciled from the kernel's table, nothing
// else in it is touched.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "knode/api/cluster.h"
#include "knode/dataplane/link.h"
#include "knode/net.h"

namespace knode::kubelet {

struct NodeRoute {
  std::string node;
  net::Cidr pod_cidr;
  net::IPAddress via;
};

// The routes this node wants, from every Node it knows (its own excluded), sorted by CIDR.
std::vector<NodeRoute> desired_node_routes(const std::string& self, const std::vector<api::Node>& nodes,
                                           const net::Cidr& cluster_cidr);

struct RouteDiff {
  std::vector<link::Route> add, remove;
};
// What to change in `current` (the main table) to reach `want`, touching only routes with
// a gateway inside cluster_cidr that are not `own_cidr`.
RouteDiff diff_node_routes(const std::vector<link::Route>& current, const std::vector<NodeRoute>& want,
                           const net::Cidr& cluster_cidr, const std::optional<net::Cidr>& own_cidr);

class HostGwRoutes {
 public:
  HostGwRoutes(std::string self, net::Cidr cluster_cidr) : self_(std::move(self)), cluster_(cluster_cidr) {}
  // From the loop: a Node's latest state (or its deletion).
  void on_node(const api::Node& node, bool deleted);
  // The routes as they should be now, for reconcile().
  std::vector<NodeRoute> desired() const;
  std::optional<net::Cidr> own_cidr() const;
  // Kernel work (a worker thread): brings the main table to desired(). Serialized.
  Status reconcile(const std::vector<NodeRoute>& want, const std::optional<net::Cidr>& own);

 private:
  const std::string self_;
  const net::Cidr cluster_;
  std::map<std::string, api::Node> nodes_;  // loop only
  std::mutex kernel_mu_;
};

}  // namespace knode::kubelet
