#include "commands.h"
#include "knode/cni/ipam.h"
#include "knode/cni/ipam_store.h"
#include "knode/cni/result.h"
#include "knode/json_get.h"
#include "nat.h"
#include "pod_network.h"

namespace knode::cni {

Result<std::string> cmd_add(const Request& req, const NetConf& conf) {
  const Attachment att = req.attachment();
  // Refuse before touching anything, so a failed ADD leaves nothing behind.
  if (auto d = check_ifname_free(req.netns, req.ifname); !d.ok()) return d;

  Allocation alloc;
  {
    auto store = IpamStore::Open(conf.ipam.data_dir, conf.name);
    if (!store.ok()) return store.status();
    auto a = ipam_allocate(*store, conf.ipam, att);
    if (!a.ok()) return a.status();
    alloc = std::move(*a);
  }  // the IPAM lock is not held across the kernel work
  // Rolling back a failed ADD is best effort: the runtime sees the first error and calls
  // DEL, which releases whatever is left (and GC sweeps it otherwise).
  auto release = [&]() {
    auto store = IpamStore::Open(conf.ipam.data_dir, conf.name);
    if (!store.ok()) return;
    for (const auto& ip : alloc.ips) (void)store->release(ip.address.ip);
  };

  std::vector<ResultRoute> routes;
  auto links = setup_pod_network(conf, att, req.netns, alloc.ips, alloc.routes, &routes);
  if (!links.ok()) {
    release();
    return links.status();
  }
  auto undo = [&](const Status& e) -> Result<std::string> {
    (void)remove_port_mappings(conf, att);
    (void)teardown_pod_network(conf, att);
    release();
    return e;
  };
  if (conf.ip_masq) {
    if (auto d = ensure_masquerade(conf, alloc.ips); !d.ok()) return undo(d);
  }
  if (!conf.port_mappings.empty()) {
    if (auto d = add_port_mappings(conf, att, alloc.ips); !d.ok()) return undo(d);
  }

  CniResult r;
  r.cni_version = conf.cni_version;
  r.interfaces.push_back(ResultInterface{links->bridge.name, links->bridge.mac, links->bridge.mtu, ""});
  r.interfaces.push_back(ResultInterface{links->host.name, links->host.mac, links->host.mtu, ""});
  r.interfaces.push_back(ResultInterface{links->pod.name, links->pod.mac, links->pod.mtu, req.netns});
  for (auto ip : alloc.ips) {
    ip.interface = 2;
    r.ips.push_back(ip);
  }
  r.routes = std::move(routes);
  r.dns = conf.dns;
  return jget::dump(to_json(r));
}

}  // namespace knode::cni
