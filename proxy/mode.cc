#include "mode.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>

#include "knode/dataplane/ipvs_detect.h"
#include "knode/dataplane/nftables.h"
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

// The nf_tables client when the kernel answers on it; else why not.
std::string open_nftables(nftables::NftablesPtr* client) {
  auto c = nftables::open_netlink_nftables();
  if (!c.ok()) return "cannot open a netfilter netlink socket: " + c.error();
  if (auto gen = (*c)->generation(); !gen.ok()) {
    return "the kernel does not answer nf_tables requests (" + gen.error() + "); load it with `modprobe nf_tables`";
  }
  *client = std::move(*c);
  return "";
}

// What iptables and IPVS modes leave: every KUBE-* chain, IPVS mode's ip sets, and the
// IPVS services where the kernel has IPVS (--cleanup).
Status cleanup_x_tables_modes(const ProxyOptions& o) {
  Status s = iptables_proxy::make_iptables_proxier(o.iptables)->cleanup();
  ipset::IpsetPtr sets;
  if (auto opened = ipset::open_netlink_ipset(); opened.ok() && (*opened)->is_available()) {
    sets = std::move(*opened);
    if (Status v = ipvs_proxy::cleanup_ipvs_sets(*sets); s.ok()) s = v;
  }
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

// What IPVS mode left, drained without cutting its connections
// (ipvs_proxy::drain_ipvs_leftovers), one pass per call; done at once where the kernel has
// no IPVS. Passes after the first run at most every 10 s (they follow syncs).
class IpvsModeDrain {
 public:
  explicit IpvsModeDrain(const ProxyOptions& o)
      : o_(o), drain_(o.ipvs.exclude_cidrs, std::chrono::duration_cast<std::chrono::seconds>(o.ipvs.drain_bound)) {}
  Status pass(bool* done) {
    *done = false;
    const auto now = std::chrono::steady_clock::now();
    if (passes_++ > 0 && now - last_ < std::chrono::seconds(10)) return Status::Ok();
    last_ = now;
    ipvs::DetectOptions opts;
    opts.try_modprobe = false;
    if (!ipvs::detect(opts).genl_family) {
      *done = true;
      return Status::Ok();
    }
    auto client = ipvs::open_netlink_ipvs();
    if (!client.ok()) return client.status();
    ipset::IpsetPtr sets;
    if (auto opened = ipset::open_netlink_ipset(); opened.ok() && (*opened)->is_available()) sets = std::move(*opened);
    return ipvs_proxy::drain_ipvs_leftovers(**client, sets.get(), o_.ipvs, drain_, done);
  }

 private:
  const ProxyOptions o_;
  ipvs_proxy::LeftoverDrain drain_;
  int passes_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

// The other modes' cleanup for iptables or nftables mode: `once` (the other modes' rules)
// at the first call, then IPVS mode's leftovers drained over as many calls as that takes.
std::function<Status(bool*)> cleanup_then_drain_ipvs(const ProxyOptions& o, std::function<Status()> once) {
  auto drain = std::make_shared<IpvsModeDrain>(o);
  auto first = std::make_shared<bool>(true);
  return [drain, first, once = std::move(once)](bool* done) {
    Status rules = Status::Ok();
    if (*first) {
      *first = false;
      rules = once();
    }
    Status ipvs = drain->pass(done);
    return rules.ok() ? ipvs : rules;
  };
}

// What nftables mode leaves: table ip kube-proxy, where the kernel has nf_tables.
Status cleanup_nftables_mode() {
  auto client = nftables::open_netlink_nftables();
  if (!client.ok() || !(*client)->generation().ok()) return Status::Ok();
  return nftables_proxy::cleanup_nftables(**client);
}

// Runs the other modes' cleanup on the sync thread right after this mode's first successful
// sync, as kube-proxy does when it starts: switching modes leaves no rules of the old one
// behind. After, not before: until this mode's rules are in, the old mode's keep answering
// new connections (both at once are harmless: a connection's first packet is translated
// by the first NAT rule that matches it, and the old rules only ever accept). What cannot
// go yet without cutting connections (IPVS virtual servers still carrying some) is tried
// again after each later sync until it is gone.
class CleansOtherModes final : public ProxyBackend {
 public:
  using Cleanup = std::function<Status(bool* done)>;
  CleansOtherModes(ProxyBackendPtr inner, Cleanup cleanup) : inner_(std::move(inner)), cleanup_(std::move(cleanup)) {}
  std::string mode() const override { return inner_->mode(); }
  Status sync(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full,
              SyncStats* stats) override {
    Status synced = inner_->sync(state, changed, full, stats);
    if (synced.ok() && cleanup_) {
      bool done = true;
      if (Status s = cleanup_(&done); !s.ok()) {
        KLOG(WARNING, "could not remove the rules of the other proxy modes").kv("mode", mode()).kv("err", s.message());
      }
      if (done) cleanup_ = nullptr;
    }
    return synced;
  }
  bool kernel_as_left() override { return inner_->kernel_as_left(); }
  Status cleanup() override { return inner_->cleanup(); }

 private:
  ProxyBackendPtr inner_;
  Cleanup cleanup_;
};

}  // namespace

ModeSelection select_mode(const ProxyOptions& o) {
  ModeSelection sel;
  sel.requested = o.mode;
  if (o.mode == "nftables") {
    nftables::NftablesPtr client;
    sel.fallback_reason = open_nftables(&client);
    if (sel.fallback_reason.empty()) {
      sel.effective = "nftables";
      sel.mode = std::make_unique<CleansOtherModes>(
          nftables_proxy::make_nftables_proxier(std::move(client), o.nftables),
          // The iptables rules at once (established connections keep their conntrack NAT),
          // IPVS mode's virtual servers as their connections end.
          cleanup_then_drain_ipvs(o, [o] { return iptables_proxy::make_iptables_proxier(o.iptables)->cleanup(); }));
      return sel;
    }
    KLOG(WARNING, "nftables proxy mode is not available; falling back to iptables mode")
        .kv("reason", sel.fallback_reason);
  }
  if (o.mode == "ipvs") {
    ipvs::IpvsPtr client;
    ipset::IpsetPtr sets;
    sel.fallback_reason = open_ipvs(o, &client, &sets);
    if (sel.fallback_reason.empty()) {
      sel.effective = "ipvs";
      sel.mode = std::make_unique<CleansOtherModes>(
          ipvs_proxy::make_ipvs_proxier(std::move(client), std::move(sets), o.ipvs), [](bool* done) {
            *done = true;
            return cleanup_nftables_mode();
          });
      return sel;
    }
    KLOG(WARNING, "IPVS proxy mode is not available; falling back to iptables mode")
        .kv("reason", sel.fallback_reason);
  }
  sel.effective = "iptables";
  // (Its first sync replaced IPVS mode's iptables rules; IPVS mode's sets, virtual servers
  // and VIPs drain after it.)
  sel.mode = std::make_unique<CleansOtherModes>(iptables_proxy::make_iptables_proxier(o.iptables),
                                                cleanup_then_drain_ipvs(o, cleanup_nftables_mode));
  return sel;
}

Status cleanup_all_modes(const ProxyOptions& o) {
  // Every KUBE-* chain of either x_tables mode, then IPVS mode's ip sets (no rule uses
  // them now), the IPVS services, and nftables mode's table.
  Status s = cleanup_x_tables_modes(o);
  if (Status v = cleanup_nftables_mode(); s.ok()) s = v;
  return s;
}

}  // namespace knode::proxy
