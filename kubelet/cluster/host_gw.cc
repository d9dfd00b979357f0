#include "cluster/host_gw.h"

#include <algorithm>

#include "knode/log.h"

namespace knode::kubelet {

namespace {

bool inside(const net::Cidr& outer, const net::Cidr& inner) {
  return inner.prefix() >= outer.prefix() && outer.contains(inner.address());
}

}  // namespace

std::vector<NodeRoute> desired_node_routes(const std::string& self, const std::vector<api::Node>& nodes,
                                           const net::Cidr& cluster_cidr) {
  std::vector<NodeRoute> out;
  for (const auto& n : nodes) {
    if (n.metadata.name == self || n.spec.pod_cidr.empty()) continue;
    auto cidr = net::Cidr::Parse(n.spec.pod_cidr);
    if (!cidr || !inside(cluster_cidr, *cidr)) continue;
    std::optional<net::IPAddress> via;
    for (const auto& a : n.status.addresses) {
      if (a.type != "InternalIP") continue;
      auto ip = net::IPAddress::Parse(a.address);
      if (ip && ip->is_v4() == cidr->address().is_v4()) {
        via = *ip;
        break;
      }
    }
    if (!via) continue;
    out.push_back(NodeRoute{n.metadata.name, *cidr, *via});
  }
  std::sort(out.begin(), out.end(), [](const NodeRoute& a, const NodeRoute& b) { return a.pod_cidr < b.pod_cidr; });
  return out;
}

RouteDiff diff_node_routes(const std::vector<link::Route>& current, const std::vector<NodeRoute>& want,
                           const net::Cidr& cluster_cidr, const std::optional<net::Cidr>& own_cidr) {
  RouteDiff d;
  auto ours = [&](const link::Route& r) {
    return r.table == 254 && r.gateway.valid() && inside(cluster_cidr, r.dst) && (!own_cidr || r.dst != *own_cidr);
  };
  for (const auto& w : want) {
    link::Route r;
    r.dst = w.pod_cidr;
    r.gateway = w.via;
    bool present = false;
    for (const auto& c : current) {
      if (c.dst == r.dst && c.gateway == r.gateway && c.table == r.table) present = true;
    }
    if (!present) d.add.push_back(r);
  }
  for (const auto& c : current) {
    if (!ours(c)) continue;
    bool wanted = false;
    for (const auto& w : want) wanted |= c.dst == w.pod_cidr && c.gateway == w.via;
    if (!wanted) d.remove.push_back(c);
  }
  return d;
}

void HostGwRoutes::on_node(const api::Node& node, bool deleted) {
  if (deleted) {
    nodes_.erase(node.metadata.name);
  } else {
    nodes_[node.metadata.name] = node;
  }
}

std::vector<NodeRoute> HostGwRoutes::desired() const {
  std::vector<api::Node> nodes;
  for (const auto& [name, n] : nodes_) nodes.push_back(n);
  return desired_node_routes(self_, nodes, cluster_);
}

std::optional<net::Cidr> HostGwRoutes::own_cidr() const {
  auto it = nodes_.find(self_);
  if (it == nodes_.end() || it->second.spec.pod_cidr.empty()) return std::nullopt;
  return net::Cidr::Parse(it->second.spec.pod_cidr);
}

Status HostGwRoutes::reconcile(const std::vector<NodeRoute>& want, const std::optional<net::Cidr>& own) {
  std::lock_guard lock(kernel_mu_);
  auto sock = link::Socket::Open();
  if (!sock.ok()) return sock.status().Wrap("host-gw routes");
  auto current = link::list_routes(*sock, 0);
  if (!current.ok()) return current.status().Wrap("host-gw routes");
  RouteDiff d = diff_node_routes(*current, want, cluster_, own);
  // Removals first: a node whose address changed has its old route replaced.
  for (const auto& r : d.remove) {
    if (Status s = link::del_route(*sock, r); !s.ok()) return s.Wrap("host-gw: delete route " + r.str());
    KLOG(INFO, "pod route removed").kv("route", r.str());
  }
  for (const auto& r : d.add) {
    // A route to that CIDR through another gateway (not ours to keep) blocks the add.
    for (const auto& c : *current) {
      if (c.dst == r.dst && c.table == r.table && !(c.gateway == r.gateway)) (void)link::del_route(*sock, c);
    }
    if (Status s = link::add_route(*sock, r); !s.ok()) return s.Wrap("host-gw: add route " + r.str());
    KLOG(INFO, "pod route added").kv("route", r.str());
  }
  return Status::Ok();
}

}  // namespace knode::kubelet
