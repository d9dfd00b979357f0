#include "udp_conntrack.h"

#include <set>
#include <vector>

#include "knode/dataplane/conntrack.h"
#include "knode/log.h"

namespace knode::proxy {

void flush_stale_udp_entries(const ServicePort& before, const ServicePort* after) {
  std::set<net::IPAddress> was, is;
  for (const auto* list : {&before.cluster_endpoints, &before.local_endpoints}) {
    for (const auto& b : *list) was.insert(b.ip);
  }
  if (after) {
    for (const auto* list : {&after->cluster_endpoints, &after->local_endpoints}) {
      for (const auto& b : *list) is.insert(b.ip);
    }
  }
  const ServicePort& where = after ? *after : before;
  std::vector<std::pair<net::IPAddress, uint16_t>> dests;
  if (where.cluster_ip.valid()) dests.emplace_back(where.cluster_ip, where.port);
  for (const auto& ip : where.external_ips) dests.emplace_back(ip, where.port);
  for (const auto& ip : where.load_balancer_ips) dests.emplace_back(ip, where.port);
  auto run = [&](std::optional<net::IPAddress> vip, uint16_t port, std::optional<net::IPAddress> ep) {
    conntrack::Filter f;
    f.orig_dst = vip;
    f.orig_dst_port = port;
    f.reply_src = ep;
    auto r = conntrack::delete_entries(f);
    if (!r.ok()) {
      KLOG(WARNING, "could not delete stale UDP conntrack entries").kv("service", where.name).kv("err", r.error());
    } else if (*r > 0) {
      KLOGV(2, "deleted stale UDP conntrack entries").kv("service", where.name).kv("entries", *r);
    }
  };
  for (const auto& ip : was) {
    if (is.count(ip)) continue;
    for (const auto& [vip, port] : dests) run(vip, port, ip);
    // NodePort flows: their original destination is some node address; the endpoint
    // side and the node port find them.
    if (where.node_port != 0) run(std::nullopt, where.node_port, ip);
  }
  // A service that had no endpoints may hold entries from before its rules existed.
  if (was.empty() && !is.empty()) {
    for (const auto& [vip, port] : dests) run(vip, port, std::nullopt);
  }
}

void StaleUdpFlows::after_sync(const ProxyState& state, const std::set<std::string>* changed) {
  auto relevant = [&](const std::string& name) { return !changed || changed->count(name) > 0; };
  std::map<std::string, const ServicePort*> now;
  for (const auto& sp : state.services) {
    if (sp.protocol == net::Protocol::kUDP && relevant(sp.name)) now[sp.name] = &sp;
  }
  static const ServicePort kNone;
  for (const auto& [name, sp] : now) {
    auto old = udp_.find(name);
    flush_stale_udp_entries(old == udp_.end() ? kNone : old->second, sp);
  }
  for (auto it = udp_.begin(); it != udp_.end();) {
    if (!relevant(it->first) || now.count(it->first)) {
      ++it;
      continue;
    }
    flush_stale_udp_entries(it->second, nullptr);
    it = udp_.erase(it);
  }
  for (const auto& [name, sp] : now) udp_[name] = *sp;
}

}  // namespace knode::proxy
