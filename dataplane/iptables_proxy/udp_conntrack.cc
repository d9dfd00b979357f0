#include "udp_conntrack.h"

#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <netinet/in.h>

#include <memory>
#include <set>
#include <vector>

#include "knode/log.h"

namespace knode::iptables_proxy {
namespace {

struct HandleCloser {
  void operator()(nfct_handle* h) const { nfct_close(h); }
};
struct CtFree {
  void operator()(nf_conntrack* c) const { nfct_destroy(c); }
};

struct Match {
  uint32_t vip_be;
  uint16_t port_be;
  std::optional<uint32_t> endpoint_be;
  std::vector<std::unique_ptr<nf_conntrack, CtFree>> found;
};

int collect(enum nf_conntrack_msg_type, nf_conntrack* ct, void* data) {
  auto* m = static_cast<Match*>(data);
  if (nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_UDP) return NFCT_CB_CONTINUE;
  if (m->vip_be != 0 && nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST) != m->vip_be) return NFCT_CB_CONTINUE;
  if (nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST) != m->port_be) return NFCT_CB_CONTINUE;
  if (m->endpoint_be && nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC) != *m->endpoint_be) {
    return NFCT_CB_CONTINUE;
  }
  m->found.emplace_back(nfct_clone(ct));
  return NFCT_CB_CONTINUE;
}

}  // namespace

Result<int> delete_udp_entries(const net::IPAddress& vip, uint16_t port,
                               const std::optional<net::IPAddress>& endpoint) {
  std::unique_ptr<nfct_handle, HandleCloser> h(nfct_open(CONNTRACK, 0));
  if (!h) return Status::FromErrno("open conntrack netlink socket", errno);
  Match m{vip.v4_be(), htons(port), std::nullopt, {}};
  if (endpoint) m.endpoint_be = endpoint->v4_be();
  nfct_callback_register(h.get(), NFCT_T_ALL, collect, &m);
  uint32_t family = AF_INET;
  if (nfct_query(h.get(), NFCT_Q_DUMP, &family) < 0) {
    return Status::FromErrno("dump conntrack table", errno);
  }
  int deleted = 0;
  for (auto& ct : m.found) {
    // ENOENT: it expired or was deleted meanwhile; that is what we wanted.
    if (nfct_query(h.get(), NFCT_Q_DESTROY, ct.get()) == 0 || errno == ENOENT) ++deleted;
  }
  return deleted;
}

void flush_stale_udp_entries(const dp::ServicePort& before, const dp::ServicePort* after) {
  std::set<net::IPAddress> was, is;
  for (const auto* list : {&before.cluster_backends, &before.local_backends}) {
    for (const auto& b : *list) was.insert(b.ip);
  }
  if (after) {
    for (const auto* list : {&after->cluster_backends, &after->local_backends}) {
      for (const auto& b : *list) is.insert(b.ip);
    }
  }
  const dp::ServicePort& where = after ? *after : before;
  std::vector<std::pair<net::IPAddress, uint16_t>> dests;
  if (where.cluster_ip.valid()) dests.emplace_back(where.cluster_ip, where.port);
  for (const auto& ip : where.external_ips) dests.emplace_back(ip, where.port);
  for (const auto& ip : where.load_balancer_ips) dests.emplace_back(ip, where.port);
  auto run = [&](const net::IPAddress& vip, uint16_t port, std::optional<net::IPAddress> ep) {
    auto r = delete_udp_entries(vip, port, ep);
    if (!r.ok()) {
      KLOG(WARNING, "could not delete stale UDP conntrack entries").kv("service", where.name).kv("err", r.error());
    } else if (*r > 0) {
      KLOGV(2, "deleted stale UDP conntrack entries").kv("service", where.name).kv("entries", *r);
    }
  };
  for (const auto& ip : was) {
    if (is.count(ip)) continue;
    for (const auto& [vip, port] : dests) run(vip, port, ip);
  }
  // A service that had no endpoints may hold entries from before its rules existed.
  if (was.empty() && !is.empty()) {
    for (const auto& [vip, port] : dests) run(vip, port, std::nullopt);
  }
  // NodePort entries: the original destination is a node address, unknown here; the
  // endpoint side is enough to find them.
  if (where.node_port != 0) {
    for (const auto& ip : was) {
      if (!is.count(ip)) run(net::IPAddress(), where.node_port, ip);
    }
  }
}

}  // namespace knode::iptables_proxy
