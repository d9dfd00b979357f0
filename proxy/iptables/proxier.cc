#include "iptables/proxier.h"

#include <chrono>
#include <map>

#include "iptables/service_rules.h"
#include "knode/dataplane/iptables/reconciler.h"
#include "knode/log.h"
#include "udp_conntrack.h"

namespace knode::iptables_proxy {
namespace {

class IptablesProxier final : public ProxyBackend {
 public:
  IptablesProxier(const IptablesConfig& c, proxy::Host& host) : host_(host) {
    rules_.cluster_cidrs = c.cluster_cidrs;
    rules_.masquerade_all = c.masquerade_all;
    rules_.masquerade_mark = 1u << c.masquerade_bit;
    rules_.node_port_addresses = c.node_port_addresses;
    rules_.localhost_node_ports = c.localhost_node_ports;
    rules_.encode_service_chains = true;
  }

  std::string mode() const override { return "iptables"; }

  Status sync(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full,
              SyncStats* stats) override {
    if (!synced_once_) {
      if (Status s = prepare_host(); !s.ok()) return s;
    }
    size_t endpoints = 0;
    for (const auto& sp : state.services) endpoints += sp.cluster_endpoints.size();
    bool large = endpoints > kLargeClusterEndpointsThreshold;
    if (large != rules_.large_cluster) {
      // Every endpoint rule changes shape: only a full sync can switch.
      KLOG(INFO, large ? "entering large-cluster mode: per-endpoint rules carry no comments"
                       : "leaving large-cluster mode").kv("endpoints", endpoints);
      rules_.large_cluster = large;
      full = true;
    }
    bool partial = !full && synced_once_ && !need_full_;
    auto gen_start = std::chrono::steady_clock::now();
    // A full sync streams the per-service chains into the table image (generated once to
    // compare and size them, once more for the bytes of those that differ), so the
    // table is never held twice: at 10,000 services the encoded chains were ~80 MB
    // beside the ~110 MB image.
    Tables t = generate(state, rules_, partial ? &changed : nullptr, shared_, /*service_chains=*/partial);
    if (!t.error.ok()) return fail(t.error.Wrap("generate iptables rules"));
    if (!partial) {
      t.nat.streamed = [this, &state](const iptables::ChainEmitter& emit) {
        return emit_service_chains(state, rules_, emit);
      };
    }
    double gen_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - gen_start).count();
    iptables::ReconcileOptions nat_opts;
    // Partial syncs trust the table this process last wrote (when it still has the shape
    // it left); full ones (the first, hourly, after a failure or a foreign change) read the
    // kernel, which repairs whatever someone changed by hand.
    nat_opts.trust_cache = partial;
    if (partial) {
      // The shared chains only when a service port's part of them changed (the tables
      // then want them), and the two small static ones (KUBE-MARK-MASQ, KUBE-POSTROUTING).
      std::set<std::string> only;
      for (const auto& name : shared_nat_chains()) {
        if (t.nat.wants(name)) only.insert(name);
      }
      // A changed service port's chains: those it had (named after it, and the endpoint
      // chains they jump to in the table as last written: nothing kept per service
      // port) and those it has now.
      auto targets = [this](const std::string& chain) { return nat_.jump_targets("nat", chain); };
      for (const auto& name : changed) {
        for (auto& c : chains_of(name, targets)) only.insert(std::move(c));
        if (auto it = t.service_chains.find(name); it != t.service_chains.end()) {
          only.insert(it->second.begin(), it->second.end());
        }
      }
      nat_opts.only_chains = std::move(only);
    }
    iptables::ReconcileStats nat_stats, filter_stats;
    if (auto s = nat_.reconcile(std::move(t.nat), nat_opts, &nat_stats); !s.ok()) {
      return fail(s.Wrap("sync iptables nat table"));
    }
    // The filter table holds only shared chains: a partial sync touches the ones whose
    // parts changed, if any.
    iptables::ReconcileOptions filter_opts;
    filter_opts.trust_cache = partial;
    bool filter_sync = !partial;
    if (partial) {
      std::set<std::string> only;
      for (const auto& name : shared_filter_chains()) {
        if (t.filter.encoded.count(name)) only.insert(name);
      }
      filter_sync = !only.empty();
      filter_opts.only_chains = std::move(only);
    }
    if (filter_sync) {
      if (auto s = filter_.reconcile(std::move(t.filter), filter_opts, &filter_stats); !s.ok()) {
        return fail(s.Wrap("sync iptables filter table"));
      }
      filter_rules_ = filter_stats.table_rules;
    }
    // UDP has no connection to end: entries to endpoints that left would keep steering a
    // client's datagrams to them.
    udp_.after_sync(state, partial ? &changed : nullptr);
    synced_once_ = true;
    // A partial sync that found a table not as this process left it (someone else
    // changed it) repaired only the chains it synced: the next sync is full.
    need_full_ = partial && (nat_stats.read_kernel || filter_stats.read_kernel);
    if (!partial) last_full_ = std::chrono::steady_clock::now();
    if (stats && need_full_) {
      KLOG(WARNING, "iptables tables changed by someone else; a full sync follows to repair them");
      stats->resync_after = std::chrono::seconds(1);  // soon, not at the next sync period
    }
    if (stats) {
      stats->rules_written = nat_stats.table_rules + filter_rules_;
      stats->rules_by_table["nat"] = nat_stats.table_rules;
      stats->rules_by_table["filter"] = filter_rules_;
      stats->changes = nat_stats.chains_created + nat_stats.chains_rewritten + nat_stats.chains_deleted +
                       filter_stats.chains_created + filter_stats.chains_rewritten +
                       filter_stats.chains_deleted + nat_stats.jumps_added + filter_stats.jumps_added;
    }
    KLOGV(2, "iptables synced")
        .kv("partial", partial)
        .kv("natRules", nat_stats.table_rules)
        .kv("chainsWritten", nat_stats.chains_created + nat_stats.chains_rewritten)
        .kv("chainsDeleted", nat_stats.chains_deleted)
        .kv("generateMs", gen_ms)
        .kv("readMs", nat_stats.read_ms)
        .kv("diffMs", nat_stats.diff_ms)
        .kv("writeMs", nat_stats.write_ms)
        .kv("kernelMs", nat_stats.kernel_ms);
    return Status::Ok();
  }

  // Between hourly full syncs (kube-proxy's FullSyncPeriod), a periodic resync looks at
  // the shape of both tables: any rule someone added or removed changes it, and makes the
  // resync full (read the kernel, rewrite what differs). An edit that keeps both the
  // entry count and the size waits for the hourly one.
  bool kernel_as_left() override {
    if (!synced_once_ || need_full_) return false;
    if (std::chrono::steady_clock::now() - last_full_ >= kFullResyncPeriod) return false;
    // (The first sync is full: both tables have been synced.)
    return nat_.kernel_matches("nat") && filter_.kernel_matches("filter");
  }

  Status cleanup() override {
    Tables t = skeleton();
    Status nat = iptables::cleanup(t.nat);
    Status filter = iptables::cleanup(t.filter);
    shared_.parts.clear();
    synced_once_ = false;
    if (!nat.ok()) return nat.Wrap("clean up iptables nat table");
    if (!filter.ok()) return filter.Wrap("clean up iptables filter table");
    return Status::Ok();
  }

 private:
  // After a failure neither the kernel's tables nor what the shared-chain cache says
  // they hold can be trusted: the next sync reads the kernel and generates everything.
  Status fail(Status s) {
    nat_.invalidate();
    filter_.invalidate();
    shared_.parts.clear();
    need_full_ = true;
    return s;
  }

  // What the mode needs from the (network namespace's) kernel settings, set once.
  Status prepare_host() {
    std::vector<proxy::SysctlNeed> needs = {
        {"net.ipv4.ip_forward", "1", false, "traffic to pods on other hosts is not forwarded"}};
    if (rules_.localhost_node_ports) {
      needs.push_back({"net.ipv4.conf.all.route_localnet", "1", false, "NodePorts do not answer on 127.0.0.1"});
    }
    if (Status s = proxy::ensure_sysctls(host_, needs, "iptables"); !s.ok()) return s;
    proxy::ensure_bridge_netfilter(host_);
    proxy::note_iptables_variant();
    return Status::Ok();
  }

  proxy::Host& host_;
  RulesConfig rules_;
  iptables::Reconciler nat_;
  iptables::Reconciler filter_;
  proxy::StaleUdpFlows udp_;
  SharedChainCache shared_;
  bool synced_once_ = false;
  bool need_full_ = false;
  size_t filter_rules_ = 0;  // in the filter table after its last sync
  std::chrono::steady_clock::time_point last_full_{};
  static constexpr std::chrono::hours kFullResyncPeriod{1};
};

}  // namespace

ProxyBackendPtr make_iptables_proxier(const IptablesConfig& config, proxy::Host& host) {
  return std::make_unique<IptablesProxier>(config, host);
}

}  // namespace knode::iptables_proxy
