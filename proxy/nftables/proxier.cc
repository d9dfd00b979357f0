#include "nftables/proxier.h"

#include <cerrno>

#include "knode/dataplane/nftables/reconciler.h"
#include "knode/log.h"
#include "nftables/service_rules.h"
#include "udp_conntrack.h"

namespace knode::nftables_proxy {
namespace {

nftables::ReconcilerOptions reconciler_options(const NftablesConfig& c) {
  nftables::ReconcilerOptions o;
  o.family = nftables::Family::kIPv4;
  o.table = kTable;
  o.stale_chain_delay = c.stale_chain_delay;
  o.now = c.now;
  return o;
}

class NftablesProxier final : public ProxyBackend {
 public:
  NftablesProxier(nftables::NftablesPtr client, const NftablesConfig& c, proxy::Host& host)
      : client_(std::move(client)), config_(c), host_(host), reconciler_(*client_, reconciler_options(c)) {
    rules_.cluster_cidrs = c.cluster_cidrs;
    rules_.masquerade_all = c.masquerade_all;
    rules_.masquerade_mark = 1u << c.masquerade_bit;
    rules_.node_ports_on_all_addresses = c.node_port_addresses.empty();
  }

  std::string mode() const override { return "nftables"; }

  Status sync(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full,
              SyncStats* stats) override {
    if (!prepared_) {
      if (Status s = prepare_host(); !s.ok()) return s;
      prepared_ = true;
    }
    nftables::ReconcileStats rs;
    bool partial = !full && reconciler_.begin_partial(changed);
    Status s = partial ? run(state, &changed, &rs) : run_full(state, &rs);
    if (!s.ok() && partial && s.error_number() == ERESTART) {
      // Someone else committed to the ruleset since our last sync: our record may be
      // stale, so read the kernel and sync everything.
      KLOGV(2, "nftables ruleset changed under us; syncing in full");
      partial = false;
      s = run_full(state, &rs);
    }
    if (!s.ok()) return s;
    udp_.after_sync(state, partial ? &changed : nullptr);
    if (stats) {
      // Flushed chains wait to be deleted; a sync after the delay does that.
      if (reconciler_.stale_chains() > 0) {
        stats->resync_after = config_.stale_chain_delay + std::chrono::milliseconds(100);
      }
      stats->rules_written = rs.rules;
      stats->changes = rs.chains_added + rs.chains_rewritten + rs.chains_flushed + rs.chains_deleted +
                       rs.elements_added + rs.elements_deleted + rs.sets_added + rs.sets_deleted;
    }
    KLOGV(2, "nftables synced")
        .kv("partial", partial)
        .kv("readKernel", rs.read_kernel)
        .kv("chains", rs.chains)
        .kv("chainsAdded", rs.chains_added)
        .kv("chainsRewritten", rs.chains_rewritten)
        .kv("chainsFlushed", rs.chains_flushed)
        .kv("chainsDeleted", rs.chains_deleted)
        .kv("elementsAdded", rs.elements_added)
        .kv("elementsDeleted", rs.elements_deleted)
        .kv("operations", rs.operations)
        .kv("readMs", rs.read_ms)
        .kv("commitMs", rs.commit_ms);
    return Status::Ok();
  }

  Status cleanup() override { return reconciler_.remove_table(); }

 private:
  Status run_full(const proxy::ProxyState& state, nftables::ReconcileStats* rs) {
    refresh_node_addresses();
    if (Status s = reconciler_.begin_full(); !s.ok()) return s;
    return run(state, nullptr, rs);
  }

  Status run(const proxy::ProxyState& state, const std::set<std::string>* only, nftables::ReconcileStats* rs) {
    describe(reconciler_, state, rules_, only);
    return reconciler_.commit(rs);
  }

  // Forwarding for traffic to pods elsewhere; br_netfilter so that traffic between pods
  // on one bridge sees the ruleset.
  Status prepare_host() {
    std::vector<proxy::SysctlNeed> needs = {
        {"net.ipv4.ip_forward", "1", false, "traffic to pods on other hosts is not forwarded"}};
    if (Status s = proxy::ensure_sysctls(host_, needs, "nftables"); !s.ok()) return s;
    proxy::ensure_bridge_netfilter(host_);
    return Status::Ok();
  }

  // The node's addresses that accept node ports (with --nodeport-addresses) and the IPs
  // LB source ranges may let in, looked at on every full sync.
  void refresh_node_addresses() {
    rules_.node_port_ips.clear();
    if (!config_.node_port_addresses.empty()) {
      for (const auto& ip : host_.local_ipv4_addresses("")) {
        for (const auto& cidr : config_.node_port_addresses) {
          if (cidr.contains(ip)) {
            rules_.node_port_ips.push_back(ip);
            break;
          }
        }
      }
    }
    rules_.node_ips = config_.node_ip.valid() ? std::set<net::IPAddress>{config_.node_ip}
                                              : host_.default_route_ipv4_addresses();
  }

  nftables::NftablesPtr client_;
  NftablesConfig config_;
  proxy::Host& host_;
  RulesConfig rules_;
  nftables::Reconciler reconciler_;
  proxy::StaleUdpFlows udp_;
  bool prepared_ = false;
};

}  // namespace

ProxyBackendPtr make_nftables_proxier(nftables::NftablesPtr client, const NftablesConfig& config, proxy::Host& host) {
  return std::make_unique<NftablesProxier>(std::move(client), config, host);
}

Status cleanup_nftables(nftables::Nftables& client) {
  NftablesConfig c;
  nftables::Reconciler r(client, reconciler_options(c));
  return r.remove_table();
}

}  // namespace knode::nftables_proxy
