#include <unistd.h>

#include <chrono>
#include <map>

#include "iptables/reconciler.h"
#include "knode/dataplane/iptables_backend.h"
#include "knode/log.h"
#include "service_rules.h"
#include "sysctl.h"
#include "udp_conntrack.h"

namespace knode {
namespace {

using iptables_proxy::RulesConfig;
using iptables_proxy::Tables;

class IptablesBackend : public ProxyBackend {
 public:
  explicit IptablesBackend(const IptablesBackendConfig& c) {
    rules_.cluster_cidrs = c.cluster_cidrs;
    rules_.masquerade_all = c.masquerade_all;
    rules_.masquerade_mark = 1u << c.masquerade_bit;
    rules_.node_port_addresses = c.node_port_addresses;
    rules_.localhost_node_ports = c.localhost_node_ports;
    rules_.encode_service_chains = true;
  }

  std::string mode() const override { return "iptables"; }

  Status sync(const dp::ProxyState& state, const std::set<std::string>& changed, bool full,
              SyncStats* stats) override {
    if (!synced_once_) prepare_host();
    size_t endpoints = 0;
    for (const auto& sp : state.services) endpoints += sp.cluster_backends.size();
    bool large = endpoints > iptables_proxy::kLargeClusterEndpointsThreshold;
    if (large != rules_.large_cluster) {
      // Every endpoint rule changes shape: only a full sync can switch.
      KLOG(INFO, large ? "entering large-cluster mode: per-endpoint rules carry no comments"
                       : "leaving large-cluster mode").kv("endpoints", endpoints);
      rules_.large_cluster = large;
      full = true;
    }
    bool partial = !full && synced_once_;
    auto gen_start = std::chrono::steady_clock::now();
    Tables t = iptables_proxy::generate(state, rules_, partial ? &changed : nullptr);
    double gen_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - gen_start).count();
    iptables::ReconcileOptions nat_opts;
    // Partial syncs trust the table this process last wrote; full ones (periodic, after a
    // failure) read the kernel, which repairs whatever someone changed by hand.
    nat_opts.trust_cache = partial;
    if (partial) {
      std::set<std::string> only = iptables_proxy::shared_nat_chains();
      for (const auto& name : changed) {
        if (auto it = service_chains_.find(name); it != service_chains_.end()) {
          only.insert(it->second.begin(), it->second.end());
        }
        if (auto it = t.service_chains.find(name); it != t.service_chains.end()) {
          only.insert(it->second.begin(), it->second.end());
        }
      }
      nat_opts.only_chains = std::move(only);
    }
    iptables::ReconcileStats nat_stats, filter_stats;
    if (auto s = nat_.reconcile(std::move(t.nat), nat_opts, &nat_stats); !s.ok()) {
      nat_.invalidate();
      return s.Wrap("sync iptables nat table");
    }
    // The filter table is small (rules only for services lacking endpoints): always whole.
    iptables::ReconcileOptions filter_opts;
    filter_opts.trust_cache = partial;
    if (auto s = filter_.reconcile(t.filter, filter_opts, &filter_stats); !s.ok()) {
      filter_.invalidate();
      return s.Wrap("sync iptables filter table");
    }
    if (partial) {
      for (const auto& name : changed) {
        auto it = t.service_chains.find(name);
        if (it == t.service_chains.end()) {
          service_chains_.erase(name);
        } else {
          service_chains_[name] = std::move(it->second);
        }
      }
    } else {
      service_chains_ = std::move(t.service_chains);
    }
    flush_stale_udp(state, partial ? &changed : nullptr);
    synced_once_ = true;
    if (stats) {
      stats->rules_written = nat_stats.table_rules + filter_stats.table_rules;
      stats->rules_by_table["nat"] = nat_stats.table_rules;
      stats->rules_by_table["filter"] = filter_stats.table_rules;
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
        .kv("writeMs", nat_stats.write_ms);
    return Status::Ok();
  }

  Status cleanup() override {
    Tables t = iptables_proxy::skeleton();
    Status nat = iptables::cleanup(t.nat);
    Status filter = iptables::cleanup(t.filter);
    service_chains_.clear();
    synced_once_ = false;
    if (!nat.ok()) return nat.Wrap("clean up iptables nat table");
    if (!filter.ok()) return filter.Wrap("clean up iptables filter table");
    return Status::Ok();
  }

 private:
  // What the mode needs from the (network namespace's) kernel settings, set once.
  void prepare_host() {
    if (!sysctl::ensure("net.ipv4.ip_forward", "1").ok()) {
      KLOG(WARNING, "could not enable net.ipv4.ip_forward; traffic to pods on other hosts will not be forwarded");
    }
    if (rules_.localhost_node_ports && !sysctl::ensure("net.ipv4.conf.all.route_localnet", "1").ok()) {
      KLOG(WARNING, "could not set net.ipv4.conf.all.route_localnet=1; NodePorts will not answer on 127.0.0.1");
    }
    if (::access(sysctl::path_of("net.bridge.bridge-nf-call-iptables").c_str(), F_OK) != 0) {
      KLOG(WARNING, "br_netfilter is not loaded: traffic between pods on one bridge bypasses iptables, so a pod "
                    "reaching a service backed by a pod on the same bridge may fail; run `modprobe br_netfilter`");
    } else if (!sysctl::ensure("net.bridge.bridge-nf-call-iptables", "1").ok()) {
      KLOG(WARNING, "could not set net.bridge.bridge-nf-call-iptables=1");
    }
    // knode writes the legacy x_tables; the nft variant of iptables shows other rules.
    char target[256] = {0};
    ssize_t n = ::readlink("/etc/alternatives/iptables", target, sizeof(target) - 1);
    if (n > 0 && std::string(target, static_cast<size_t>(n)).find("nft") != std::string::npos) {
      KLOG(INFO, "this host's `iptables` is the nft variant; knode programs the legacy tables: see them with "
                 "`iptables-legacy-save`");
    }
  }

  // UDP has no connection to end: when an endpoint goes, its conntrack entries would
  // keep steering a client's datagrams to it. Delete them, as kube-proxy does.
  void flush_stale_udp(const dp::ProxyState& state, const std::set<std::string>* changed) {
    auto relevant = [&](const std::string& name) { return !changed || changed->count(name) > 0; };
    std::map<std::string, const dp::ServicePort*> now;
    for (const auto& sp : state.services) {
      if (sp.protocol == dp::Protocol::kUDP && relevant(sp.name)) now[sp.name] = &sp;
    }
    static const dp::ServicePort kNone;
    for (const auto& [name, sp] : now) {
      auto old = udp_.find(name);
      iptables_proxy::flush_stale_udp_entries(old == udp_.end() ? kNone : old->second, sp);
    }
    for (auto it = udp_.begin(); it != udp_.end();) {
      if (!relevant(it->first) || now.count(it->first)) {
        ++it;
        continue;
      }
      iptables_proxy::flush_stale_udp_entries(it->second, nullptr);
      it = udp_.erase(it);
    }
    for (const auto& [name, sp] : now) udp_[name] = *sp;
  }

  RulesConfig rules_;
  iptables::Reconciler nat_;
  iptables::Reconciler filter_;
  std::map<std::string, std::vector<std::string>> service_chains_;
  std::map<std::string, dp::ServicePort> udp_;
  bool synced_once_ = false;
};

}  // namespace

ProxyBackendPtr make_iptables_backend(const IptablesBackendConfig& config) {
  return std::make_unique<IptablesBackend>(config);
}

}  // namespace knode
