// Drives IPVS mode's virtual servers and VIP references the way IpvsProxier does, without
// its ip sets and iptables rules, so their logic runs against FakeIpvs (unit tests) or the
// VM's kernel. A VIP sync counts as one change, as in the proxier's stats.
#pragma once

#include <functional>
#include <set>
#include <string>

#include "ipvs/vips.h"
#include "ipvs/virtual_servers.h"
#include "knode/proxy/backend.h"

namespace knode::ipvs_proxy::testing {

struct HarnessConfig : VirtualServersConfig {
  // Makes exactly these VIPs local (kube-ipvs0); optional.
  std::function<Status(const std::set<net::IPAddress>&)> sync_vips;
};

class VirtualServerHarness {
 public:
  VirtualServerHarness(ipvs::Ipvs& ipvs, HarnessConfig config)
      : servers_(ipvs, config), sync_vips_(std::move(config.sync_vips)) {}

  Status sync(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full, SyncStats* stats) {
    SyncPlan plan = servers_.plan(state, changed, full);
    size_t changes = 0;
    Status s = servers_.apply(plan, &changes);
    if (sync_vips_ && vips_.update(state, plan.changed, plan.full)) {
      Status v = sync_vips_(vips_.vips());
      if (v.ok()) ++changes;
      if (s.ok()) s = v;
    }
    if (stats) {
      stats->changes = changes;
      stats->rules_written = servers_.objects();
    }
    return s;
  }

  Status cleanup() {
    Status s = servers_.cleanup();
    vips_.clear();
    if (sync_vips_) {
      Status v = sync_vips_({});
      if (s.ok()) s = v;
    }
    return s;
  }

  size_t draining() const { return servers_.draining(); }

 private:
  VirtualServers servers_;
  VipRefs vips_;
  std::function<Status(const std::set<net::IPAddress>&)> sync_vips_;
};

}  // namespace knode::ipvs_proxy::testing
