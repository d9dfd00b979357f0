#include "mode.h"

#include <algorithm>

#include "knode/dataplane/ipvs_detect.h"
#include "knode/log.h"

namespace knode::proxy {
namespace {

// The IPVS mode's clients when the kernel has what the mode needs; else why not.
std::string open_ipvs(const ProxyOptions& o, ipvs::IpvsPtr* client, ipset::IpsetPtr* sets) {
  ipvs::DetectOptions opts;
  if (std::find(opts.schedulers.begin(), opts.schedulers.end(), o.ipvs.scheduler) == opts.schedulers.end()) {
    opts.schedulers.push_back(o.ipvs.scheduler);
  }
  auto d = ipvs::detect(opts);
  if (!d.available()) return d.summary() + "; " + d.hint();
  auto c = ipvs::open_netlink_ipvs();
  if (!c.ok()) return "cannot open the IPVS netlink family: " + c.error();
  auto s = ipset::open_netlink_ipset();
  if (!s.ok() || !(*s)->is_available()) {
    return "the kernel has no ip_set support (IPVS mode keeps its address lists in ipsets); load it with "
           "`modprobe ip_set`";
  }
  *client = std::move(*c);
  *sets = std::move(*s);
  return "";
}

}  // namespace

ModeSelection select_mode(const ProxyOptions& o) {
  ModeSelection sel;
  sel.requested = o.mode;
  if (o.mode == "ipvs") {
    ipvs::IpvsPtr client;
    ipset::IpsetPtr sets;
    sel.fallback_reason = open_ipvs(o, &client, &sets);
    if (sel.fallback_reason.empty()) {
      sel.effective = "ipvs";
      sel.mode = ipvs_proxy::make_ipvs_proxier(std::move(client), std::move(sets), o.ipvs);
      return sel;
    }
    KLOG(WARNING, "IPVS proxy mode is not available; falling back to iptables mode")
        .kv("reason", sel.fallback_reason);
  }
  sel.effective = "iptables";
  sel.mode = iptables_proxy::make_iptables_proxier(o.iptables);
  return sel;
}

Status cleanup_all_modes(const ProxyOptions& o) {
  // Every KUBE-* chain of either mode, then IPVS mode's ip sets (no rule uses them now).
  Status s = iptables_proxy::make_iptables_proxier(o.iptables)->cleanup();
  ipset::IpsetPtr sets;
  if (auto opened = ipset::open_netlink_ipset(); opened.ok() && (*opened)->is_available()) {
    sets = std::move(*opened);
    if (Status v = ipvs_proxy::cleanup_ipvs_sets(*sets); s.ok()) s = v;
  }
  // IPVS state exists only where the kernel has IPVS.
  ipvs::DetectOptions opts;
  opts.try_modprobe = false;
  if (ipvs::detect(opts).genl_family) {
    if (auto client = ipvs::open_netlink_ipvs(); client.ok()) {
      Status v = ipvs_proxy::make_ipvs_proxier(std::move(*client), std::move(sets), o.ipvs)->cleanup();
      if (s.ok()) s = v;
    }
  }
  return s;
}

}  // namespace knode::proxy
