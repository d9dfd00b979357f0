// IPVS mode at scale, inside the VM (the host kernel has no IPVS), one phase per boot:
//
//   bench/run_ipvs_bench.sh [--services 1000,10000] [--endpoints 10]
//   knode_ipvs_bench --phase table|restore|mode --services N --endpoints M   (in the VM)
//
// table:   the IPVS table of N services x M endpoints programmed by knode's IPVS backend
//          (full sync), one endpoint added and removed again at that scale (20 times, on
//          services spread over the table: median and slowest), a full resync with nothing
//          to change.
// restore: the same table loaded by `ipvsadm -R` (what a restore-based proxy does).
// mode:    the whole IPVS mode as the daemon runs it (virtual servers, kube-ipvs0
//          addresses, ipsets, iptables companions) from empty, one endpoint added through
//          it (20 times: median and slowest).
// TCG is slow: the ratios are the figure.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ipvs/companion_sync.h"
#include "ipvs/proxier.h"
#include "ipvs/vips.h"
#include "ipvs/virtual_servers.h"
#include "knode/dataplane/ipset.h"
#include "knode/dataplane/ipvs.h"

namespace {

using knode::SyncStats;
using knode::proxy::Endpoint;
using knode::proxy::ProxyState;
using knode::proxy::ServicePort;
using knode::net::IPAddress;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr int kChanges = 20;  // one-endpoint changes per measurement: median and slowest

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
double max_of(const std::vector<double>& v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

int sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ipvs_bench: %s\n", what.c_str());
  std::exit(1);
}

Endpoint backend_at(uint32_t n) {
  Endpoint b;
  b.ip = IPAddress::V4(0x0a000000u + (1u << 16) + n);  // 10.1.0.0/16 and up
  b.port = 8080;
  return b;
}

ProxyState make_state(int services, int endpoints, std::string* restore) {
  ProxyState state;
  for (int i = 0; i < services; ++i) {
    ServicePort sp;
    sp.name = "ns/svc-" + std::to_string(i) + ":http";
    sp.cluster_ip = IPAddress::V4(0x0a600000u + uint32_t(i));  // 10.96.0.0/12
    sp.port = 80;
    restore->append("-A -t " + sp.cluster_ip.str() + ":80 -s rr\n");
    for (int e = 0; e < endpoints; ++e) {
      Endpoint b = backend_at(uint32_t(i * endpoints + e));
      sp.cluster_endpoints.push_back(b);
      restore->append("-a -t " + sp.cluster_ip.str() + ":80 -r " + b.str() + " -m -w 1\n");
    }
    sp.has_any_endpoint = true;
    state.services.push_back(std::move(sp));
  }
  std::sort(state.services.begin(), state.services.end(),
            [](const ServicePort& a, const ServicePort& b) { return a.name < b.name; });
  return state;
}

// Deleted real servers stay in the kernel's IPVS "trash" for minutes, and every later add
// scans that list: a second big table in one boot is much slower to load than the first.
// So each phase runs on a freshly booted kernel (run_ipvs_bench.sh boots one per phase).

void phase_table(ProxyState state, int services, int endpoints, knode::ipvs::Ipvs& ipvs) {
  knode::ipvs_proxy::VirtualServersConfig bc;
  bc.graceful_termination_bound = std::chrono::seconds(0);
  knode::ipvs_proxy::VirtualServers servers(ipvs, bc);
  // As the proxier drives them: plan the scope, then apply it.
  struct {
    knode::ipvs_proxy::VirtualServers& servers;
    knode::Status sync(const ProxyState& state, const std::set<std::string>& changed, bool full, SyncStats* stats) {
      auto plan = servers.plan(state, changed, full);
      return servers.apply(plan, &stats->changes);
    }
  } table{servers};
  SyncStats stats;
  auto t0 = Clock::now();
  if (auto s = table.sync(state, {}, true, &stats); !s.ok()) die(s.message());
  double full = seconds_since(t0);
  // One endpoint added to a service, synced, then removed again, synced: kChanges times,
  // each on another service spread over the table (one sample swings with the VM).
  std::vector<double> adds, removes;
  size_t add_changes = 0, remove_changes = 0;
  for (int i = 0; i < kChanges; ++i) {
    ServicePort& sp = state.services[(state.services.size() * size_t(2 * i + 1)) / (2 * kChanges)];
    sp.cluster_endpoints.push_back(backend_at(uint32_t(services * endpoints + 1 + i)));
    t0 = Clock::now();
    if (auto s = table.sync(state, {sp.name}, false, &stats); !s.ok()) die(s.message());
    adds.push_back(seconds_since(t0));
    add_changes = stats.changes;
    sp.cluster_endpoints.pop_back();
    t0 = Clock::now();
    if (auto s = table.sync(state, {sp.name}, false, &stats); !s.ok()) die(s.message());
    removes.push_back(seconds_since(t0));
    remove_changes = stats.changes;
  }
  t0 = Clock::now();
  if (auto s = table.sync(state, {}, true, &stats); !s.ok()) die(s.message());
  double resync = seconds_since(t0);
  std::printf("KNODE-MEASURE table %d %d full_s=%.3f add_ms=%.1f add_max_ms=%.1f add_changes=%zu remove_ms=%.1f "
              "remove_max_ms=%.1f remove_changes=%zu resync_s=%.3f\n",
              services, endpoints, full, median(adds) * 1e3, max_of(adds) * 1e3, add_changes, median(removes) * 1e3,
              max_of(removes) * 1e3, remove_changes, resync);
}

void phase_restore(const std::string& restore, int services, int endpoints, knode::ipvs::Ipvs& ipvs) {
  FILE* f = std::fopen("/tmp/ipvs.restore", "w");
  if (!f) die("write /tmp/ipvs.restore");
  std::fwrite(restore.data(), 1, restore.size(), f);
  std::fclose(f);
  auto t0 = Clock::now();
  if (sh("ipvsadm -R < /tmp/ipvs.restore") != 0) die("ipvsadm -R failed");
  double ipvsadm = seconds_since(t0);
  auto listed = ipvs.list_services();
  if (!listed.ok() || listed->size() != size_t(services)) die("ipvsadm -R left a different table");
  std::printf("KNODE-MEASURE restore %d %d full_s=%.3f\n", services, endpoints, ipvsadm);
}

// The whole mode as the daemon runs it (virtual servers, kube-ipvs0, ipsets, iptables),
// then its parts alone: the VIPs on kube-ipvs0, the ipsets with their rules.
void phase_mode(ProxyState state, int services, int endpoints) {
  auto sets = knode::ipset::open_netlink_ipset();
  if (!sets.ok()) die(sets.error());
  auto client = knode::ipvs::open_netlink_ipvs();
  if (!client.ok()) die(client.error());
  knode::ipvs_proxy::IpvsConfig mc;
  mc.cluster_cidrs = {*knode::net::Cidr::Parse("10.1.0.0/16")};
  knode::ProxyBackendPtr mode = knode::ipvs_proxy::make_ipvs_proxier(std::move(*client), std::move(*sets), mc);
  SyncStats stats;
  auto t0 = Clock::now();
  if (auto s = mode->sync(state, {}, true, &stats); !s.ok()) die(s.message());
  double mode_full = seconds_since(t0);
  // One endpoint added through the whole mode, kChanges times on services spread over it.
  std::vector<double> ones;
  for (int i = 0; i < kChanges; ++i) {
    ServicePort& sp = state.services[(state.services.size() * size_t(2 * i + 1)) / (2 * kChanges)];
    sp.cluster_endpoints.push_back(backend_at(uint32_t(services * endpoints + 1 + i)));
    t0 = Clock::now();
    if (auto s = mode->sync(state, {sp.name}, false, &stats); !s.ok()) die(s.message());
    ones.push_back(seconds_since(t0));
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  if (auto s = mode->cleanup(); !s.ok()) die(s.message());

  std::set<IPAddress> vips;
  for (const auto& sp : state.services) vips.insert(sp.cluster_ip);
  t0 = Clock::now();
  if (auto s = knode::ipvs_proxy::sync_vip_interface("kube-ipvs0", vips); !s.ok()) die(s.message());
  double vip_s = seconds_since(t0);
  if (auto s = knode::ipvs_proxy::sync_vip_interface("kube-ipvs0", {}); !s.ok()) die(s.message());
  auto sets2 = knode::ipset::open_netlink_ipset();
  if (!sets2.ok()) die(sets2.error());
  knode::ipvs_proxy::CompanionConfig cc;
  cc.cluster_cidrs = mc.cluster_cidrs;
  knode::ipvs_proxy::CompanionSync companion(**sets2, cc);
  t0 = Clock::now();
  if (auto s = companion.sync(state, {}, true); !s.ok()) die(s.message());
  double sets_s = seconds_since(t0);
  if (auto s = companion.cleanup(); !s.ok()) die(s.message());
  std::printf("KNODE-MEASURE mode %d %d full_s=%.3f one_ms=%.1f one_max_ms=%.1f vips_s=%.3f sets_s=%.3f "
              "rss_mb=%.1f\n",
              services, endpoints, mode_full, median(ones) * 1e3, max_of(ones) * 1e3, vip_s, sets_s,
              ru.ru_maxrss / 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  int services = 1000, endpoints = 10;
  std::string phase = "table";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--services")) {
      services = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--endpoints")) {
      endpoints = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--phase")) {
      phase = argv[i + 1];
    } else {
      die(std::string("unknown flag ") + argv[i]);
    }
  }
  std::string restore;
  ProxyState state = make_state(services, endpoints, &restore);
  auto client = knode::ipvs::open_netlink_ipvs();
  if (!client.ok()) die(client.error());
  if (phase == "table") {
    phase_table(std::move(state), services, endpoints, **client);
  } else if (phase == "restore") {
    phase_restore(restore, services, endpoints, **client);
  } else if (phase == "mode") {
    phase_mode(std::move(state), services, endpoints);
  } else {
    die("--phase must be table, restore or mode");
  }
  return 0;
}
