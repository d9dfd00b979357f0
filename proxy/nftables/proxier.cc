#include "nftables/proxier.h"

#include <cerrno>
#include <unordered_map>

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
  o.first_sync_batch_ops = c.first_sync_batch_ops;
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
    if (c.endpoint_rules) rules_.endpoint_pick = RulesConfig::EndpointPick::kCascade;
    rules_.endpoint_shards = c.endpoint_shards;
  }

  std::string mode() const override { return "nftables"; }

  Status sync(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full,
              SyncStats* stats) override {
    if (!prepared_) {
      if (Status s = prepare_host(); !s.ok()) return s;
      prepared_ = true;
    }
    bool whole = !reconciler_.has_record();  // describe everything and compare with the kernel
    std::set<std::string> scope = changed;
    if (full && !whole) {
      // A full resync repairs what others changed. When the ruleset generation has not
      // moved since our last commit nobody changed anything, and only service ports whose
      // model changed can differ: no need to describe the others again.
      whole = refresh_node_addresses() || !reconciler_.record_is_current();
      if (!whole) changed_models(state, &scope);
    }
    if (whole) refresh_node_addresses();
    if (!whole) {
      // The shards of the service ports in scope are described whole, with every member
      // (describe()); naming their owners lets an emptied one go.
      add_endpoint_shard_owners(rules_, &scope);
      add_hairpin_owners(state, &scope);
    }
    nftables::ReconcileStats rs;
    bool partial = !whole && reconciler_.begin_partial(scope);
    Status s = partial ? run(state, &scope, &rs) : run_full(state, &rs);
    if (!s.ok() && partial && s.error_number() == ERESTART) {
      // Someone else committed to the ruleset since our last sync: our record may be
      // stale, so read the kernel and sync everything.
      KLOGV(2, "nftables ruleset changed under us; syncing in full");
      partial = false;
      s = run_full(state, &rs);
    }
    if (!s.ok()) return s;
    remember(state, partial ? &scope : nullptr);
    udp_.after_sync(state, partial ? &scope : nullptr);
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
        .kv("describeMs", describe_ms_)
        .kv("commitMs", rs.commit_ms);
    return Status::Ok();
  }

  Status cleanup() override { return reconciler_.remove_table(); }

 private:
  Status run_full(const proxy::ProxyState& state, nftables::ReconcileStats* rs) {
    if (Status s = reconciler_.begin_full(); !s.ok()) return s;
    return run(state, nullptr, rs);
  }

  Status run(const proxy::ProxyState& state, const std::set<std::string>* only, nftables::ReconcileStats* rs) {
    auto t0 = std::chrono::steady_clock::now();
    describe(reconciler_, state, rules_, only);
    describe_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
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
  // LB source ranges may let in, looked at on every full sync. True when they changed.
  bool refresh_node_addresses() {
    std::vector<net::IPAddress> node_port_ips;
    if (!config_.node_port_addresses.empty()) {
      for (const auto& ip : host_.local_ipv4_addresses("")) {
        for (const auto& cidr : config_.node_port_addresses) {
          if (cidr.contains(ip)) {
            node_port_ips.push_back(ip);
            break;
          }
        }
      }
    }
    auto node_ips = config_.node_ip.valid() ? std::set<net::IPAddress>{config_.node_ip}
                                            : host_.default_route_ipv4_addresses();
    bool changed = node_port_ips != rules_.node_port_ips || node_ips != rules_.node_ips;
    rules_.node_port_ips = std::move(node_port_ips);
    rules_.node_ips = std::move(node_ips);
    return changed;
  }

  // The hairpin elements of the service ports in `scope` (their endpoints before and
  // after), each owned by itself: a partial sync describes them again.
  void add_hairpin_owners(const proxy::ProxyState& state, std::set<std::string>* scope) const {
    std::set<std::string> owners;
    for (const auto& name : *scope) {
      auto it = programmed_.find(name);
      if (it != programmed_.end()) owners.insert(it->second.hairpin_owners.begin(), it->second.hairpin_owners.end());
    }
    for (const auto& sp : state.services) {
      if (scope->count(sp.name)) hairpin_owners(sp, &owners);
    }
    scope->insert(owners.begin(), owners.end());
  }

  // Adds to `scope` the service ports whose model differs from what was last programmed.
  void changed_models(const proxy::ProxyState& state, std::set<std::string>* scope) const {
    std::set<std::string> now;
    for (const auto& sp : state.services) {
      now.insert(sp.name);
      auto it = programmed_.find(sp.name);
      if (it == programmed_.end() || it->second.model != proxy::encode(sp)) scope->insert(sp.name);
    }
    for (const auto& [name, sp] : programmed_) {
      if (!now.count(name)) scope->insert(name);
    }
  }

  // What is now programmed, for the next full resync to compare against.
  void remember(const proxy::ProxyState& state, const std::set<std::string>* scope) {
    if (!scope) programmed_.clear();
    std::set<std::string> present;
    for (const auto& sp : state.services) {
      if (scope && !scope->count(sp.name)) continue;
      Programmed& p = programmed_[sp.name];
      p.model = proxy::encode(sp);
      std::set<std::string> owners;
      hairpin_owners(sp, &owners);
      p.hairpin_owners.assign(owners.begin(), owners.end());
      present.insert(sp.name);
    }
    if (scope) {
      for (const auto& name : *scope) {
        if (!present.count(name)) programmed_.erase(name);
      }
    }
  }

  nftables::NftablesPtr client_;
  NftablesConfig config_;
  proxy::Host& host_;
  RulesConfig rules_;
  nftables::Reconciler reconciler_;
  proxy::StaleUdpFlows udp_;
  // Each service port as last programmed: its model encoded (for a full resync to find
  // what changed) and the hairpin elements it owned (for a partial sync to replace), not
  // a copy of the model (8 MB at 10,000 services, ~2 MB so).
  struct Programmed {
    std::string model;  // proxy::encode
    std::vector<std::string> hairpin_owners;
  };
  std::unordered_map<std::string, Programmed> programmed_;
  bool prepared_ = false;
  double describe_ms_ = 0;  // generating and comparing, for the log
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
