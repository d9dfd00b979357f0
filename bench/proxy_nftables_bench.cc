// knode_nftables_bench: nftables proxy mode at scale, against the mechanism kube-proxy's
// nftables mode uses (the `nft` binary reading a script of the same ruleset).
//
//   knode_nftables_bench [--services 10000] [--endpoints 10] [--agent path/to/knode]
//                        [--endpoint-rules]  (a rule per endpoint instead of the slot maps)
//
// In process, through the backend the daemon uses (model -> layout -> one netlink batch):
// the full sync into an empty table, one endpoint removed and added back, 20 services
// added one by one (partial syncs; their median and slowest), and a full resync with
// nothing to change. Then `nft -f` of the
// identical ruleset into an empty ruleset, `nft -f` of the transaction kube-proxy would
// write for the one-endpoint change, and the `nft list chains` kube-proxy runs every sync
// to find stale chains. With --agent: the real daemon on generated manifests (time to
// ready, one EndpointSlice edited -> programmed, peak RSS). Needs root; runs in a private
// network namespace (unshare), never in the host's.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "knode/dataplane/nftables.h"
#include "knode/dataplane/nftables/print.h"
#include "knode/log.h"
#include "nftables/chain_names.h"
#include "nftables/proxier.h"
#include "nftables/service_rules.h"

using namespace knode;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

std::string dotted(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." + std::to_string((ip >> 8) & 255) +
         "." + std::to_string(ip & 255);
}

constexpr uint32_t kVipBase = 0x0a600000u;  // 10.96.0.0
constexpr uint32_t kPodBase = 0x0af40000u;  // 10.244.0.0

proxy::ServicePort make_service(int s, int endpoints) {
  proxy::ServicePort sp;
  sp.name = "bench/svc-" + std::to_string(s) + ":http";
  sp.cluster_ip = net::IPAddress::V4(kVipBase + static_cast<uint32_t>(s) + 1);
  sp.port = 80;
  for (int e = 0; e < endpoints; ++e) {
    proxy::Endpoint b;
    b.ip = net::IPAddress::V4(kPodBase + static_cast<uint32_t>(s * endpoints + e) + 1);
    b.port = 8080;
    sp.cluster_endpoints.push_back(b);
  }
  sp.local_endpoints = sp.cluster_endpoints;
  sp.has_any_endpoint = true;
  return sp;
}

proxy::ProxyState make_state(int services, int endpoints) {
  proxy::ProxyState st;
  st.services.reserve(services + 1);
  for (int s = 0; s < services; ++s) st.services.push_back(make_service(s, endpoints));
  std::sort(st.services.begin(), st.services.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return st;
}

bool endpoint_rules = false;  // --endpoint-rules

nftables_proxy::NftablesConfig backend_config() {
  nftables_proxy::NftablesConfig c;
  c.endpoint_rules = endpoint_rules;
  // KNODE_BENCH_ENDPOINT_SHARDS=n: the slot maps' shard count.
  if (const char* v = std::getenv("KNODE_BENCH_ENDPOINT_SHARDS")) c.endpoint_shards = std::strtoul(v, nullptr, 10);
  // KNODE_BENCH_FIRST_SYNC_BATCH_OPS=n: the first sync's batches ahead (0: one batch).
  if (const char* v = std::getenv("KNODE_BENCH_FIRST_SYNC_BATCH_OPS")) c.first_sync_batch_ops = std::strtoul(v, nullptr, 10);
  c.cluster_cidrs = {*net::Cidr::Parse("10.244.0.0/16")};
  return c;
}

// The layout the backend programs: slots in shared maps, or with --endpoint-rules one
// rule per endpoint. With `kube_proxy_shape`, kube-proxy's own (v1.37: a map of endpoints
// in each service port's rule).
nftables_proxy::RulesConfig rules_config(bool kube_proxy_shape = false) {
  nftables_proxy::RulesConfig r;
  r.cluster_cidrs = backend_config().cluster_cidrs;
  r.endpoint_shards = backend_config().endpoint_shards;
  if (kube_proxy_shape) {
    r.endpoint_pick = nftables_proxy::RulesConfig::EndpointPick::kMap;
  } else if (endpoint_rules) {
    r.endpoint_pick = nftables_proxy::RulesConfig::EndpointPick::kCascade;
  }
  return r;
}

class BenchHost final : public proxy::Host {
 public:
  std::vector<net::IPAddress> local_ipv4_addresses(const std::string&) override { return {}; }
  std::set<net::IPAddress> default_route_ipv4_addresses() override { return {}; }
  bool has_sysctl(const std::string&) override { return false; }
  Status ensure_sysctl(const std::string&, const std::string&) override { return Status::Ok(); }
};

int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

// A "Key:   N kB" line of /proc/<pid>/status (pid 0: this process); -1 when absent.
long status_kb(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + (pid ? std::to_string(pid) : std::string("self")) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  }
  return -1;
}

long vm_hwm_kb(pid_t pid) { return status_kb(pid, "VmHWM"); }

// Times a shell command; -1 when it fails.
double timed(const std::string& cmd) {
  auto t = Clock::now();
  if (sh(cmd) != 0) {
    std::fprintf(stderr, "failed: %s\n", cmd.c_str());
    return -1;
  }
  return ms_since(t);
}

// What kube-proxy's nftables mode hands `nft` for one endpoint gone from `sp`: the
// service chain rewritten (its map of endpoints is the rule's own).
std::string partial_script(const proxy::ServicePort& sp) {
  nftables::ContentSink sink;
  nftables_proxy::describe_service(sink, sp, rules_config(/*kube_proxy_shape=*/true));
  std::ostringstream os;
  const std::string svc = "service-" + nftables_proxy::service_chain_base(sp);
  os << "flush chain ip kube-proxy " << svc << "\n";
  for (const auto& c : sink.content.chains) {
    if (c.chain.name != svc) continue;
    for (const auto& r : c.rules) os << "add rule ip kube-proxy " << svc << " " << nftables::print_rule(r) << "\n";
  }
  return os.str();
}

bool wait_for(const std::string& log, const std::string& needle, size_t from, double limit_ms) {
  auto t = Clock::now();
  while (ms_since(t) < limit_ms) {
    std::ifstream f(log);
    std::stringstream ss;
    ss << f.rdbuf();
    if (ss.str().find(needle, from) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a log file, bounded
  }
  return false;
}

void write_slice(const std::string& dir, int s, int endpoints) {
  std::ofstream f(dir + "/svc-" + std::to_string(s) + "-slice.yaml");
  f << "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: svc-" << s
    << "-abc, namespace: bench, labels: {kubernetes.io/service-name: svc-" << s
    << "}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n";
  for (int e = 0; e < endpoints; ++e) {
    f << "- {addresses: [\"" << dotted(kPodBase + static_cast<uint32_t>(s * 10 + e) + 1) << "\"]}\n";
  }
}

struct AgentResult {
  double ready_ms = -1, change_ms = -1;
  long hwm_kb = -1;
  long anon_kb = -1, file_kb = -1;  // RssAnon and RssFile after the change
};

AgentResult run_agent(const std::string& knode, int services, int endpoints) {
  AgentResult r;
  std::string dir = "/tmp/knode-nft-bench-manifests-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir + "/services.yaml");
    for (int s = 0; s < services; ++s) {
      f << "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-" << s << ", namespace: bench}\nspec: {clusterIP: "
        << dotted(kVipBase + static_cast<uint32_t>(s) + 1) << ", ports: [{name: http, port: 80, targetPort: 8080}]}\n";
    }
  }
  for (int s = 0; s < services; ++s) write_slice(dir, s, endpoints);
  sh("nft flush ruleset");
  std::string log = dir + ".log";
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    execl(knode.c_str(), knode.c_str(), "proxy", "--proxy-mode=nftables", ("--manifest-dir=" + dir).c_str(),
          "--cluster-cidr=10.244.0.0/16", "--healthz-bind-address=127.0.0.1:0", "--metrics-bind-address=127.0.0.1:0",
          "--iptables-min-sync-period=0s", "-v=2", static_cast<char*>(nullptr));
    _exit(127);
  }
  auto t = Clock::now();
  if (wait_for(log, "\"knode ready\"", 0, 300000)) r.ready_ms = ms_since(t);
  size_t mark = std::filesystem::file_size(log);
  t = Clock::now();
  write_slice(dir, services / 2, endpoints - 1);  // one endpoint removed
  if (wait_for(log, "changedServicePorts=1", mark, 30000)) r.change_ms = ms_since(t);
  r.hwm_kb = vm_hwm_kb(pid);
  r.anon_kb = status_kb(pid, "RssAnon");
  r.file_kb = status_kb(pid, "RssFile");
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(log);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int services = 10000, endpoints = 10;
  std::string agent;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--services" && i + 1 < argc) {
      services = std::atoi(argv[++i]);
    } else if (a == "--endpoints" && i + 1 < argc) {
      endpoints = std::atoi(argv[++i]);
    } else if (a == "--agent" && i + 1 < argc) {
      agent = argv[++i];
    } else if (a == "--endpoint-rules") {
      endpoint_rules = true;
    } else {
      std::fprintf(stderr, "usage: %s [--services N] [--endpoints M] [--agent KNODE] [--endpoint-rules]\n", argv[0]);
      return 2;
    }
  }
  if (const char* v = std::getenv("KNODE_BENCH_V")) log::set_verbosity(std::atoi(v));
  if (unshare(CLONE_NEWNET) != 0) {
    std::perror("unshare(CLONE_NEWNET) (run as root)");
    return 1;
  }
  sh("ip link set lo up");

  if (std::getenv("KNODE_BENCH_AGENT_ONLY") && !agent.empty()) {  // the daemon's rows only
    auto r = run_agent(agent, services, endpoints);
    std::printf("daemon: ready %.0f ms, change %.0f ms, peak RSS %.1f MB, RSS after: anon %.1f MB, file %.1f MB\n",
                r.ready_ms, r.change_ms, r.hwm_kb / 1024.0, r.anon_kb / 1024.0, r.file_kb / 1024.0);
    return 0;
  }
  auto state = make_state(services, endpoints);
  auto client = nftables::open_netlink_nftables();
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.error().c_str());
    return 1;
  }
  BenchHost host;
  auto backend = nftables_proxy::make_nftables_proxier(std::move(*client), backend_config(), host);
  SyncStats stats;
  auto sync = [&](const std::set<std::string>& changed, bool full) {
    auto t = Clock::now();
    Status s = backend->sync(state, changed, full, &stats);
    double ms = ms_since(t);
    if (!s.ok()) {
      std::fprintf(stderr, "sync failed: %s\n", s.message().c_str());
      std::exit(1);
    }
    return ms;
  };
  const double full_ms = sync({}, true);
  const size_t rules = stats.rules_written;
  if (std::getenv("KNODE_BENCH_FULL_ONLY")) {  // for profiling the first sync
    std::printf("full sync: %.0f ms\n", full_ms);
    return 0;
  }

  auto& sp = state.services[state.services.size() / 2];
  const std::string name = sp.name;
  proxy::Endpoint gone = sp.cluster_endpoints.back();
  sp.cluster_endpoints.pop_back();
  sp.local_endpoints = sp.cluster_endpoints;
  const double remove_ms = sync({name}, false);
  const std::string upstream_partial = partial_script(sp);
  sp.cluster_endpoints.push_back(gone);
  sp.local_endpoints = sp.cluster_endpoints;
  const double add_ms = sync({name}, false);
  // KNODE_BENCH_LOOPS=n: n more remove/add pairs (for profiling the partial path).
  for (int i = 0, n = std::getenv("KNODE_BENCH_LOOPS") ? std::atoi(std::getenv("KNODE_BENCH_LOOPS")) : 0; i < n; ++i) {
    sp.cluster_endpoints.pop_back();
    sp.local_endpoints = sp.cluster_endpoints;
    sync({name}, false);
    sp.cluster_endpoints.push_back(gone);
    sp.local_endpoints = sp.cluster_endpoints;
    sync({name}, false);
  }

  // New services, one sync each: the median and the slowest of 20.
  std::vector<double> adds;
  for (int i = 0; i < 20; ++i) {
    state.services.push_back(make_service(services + i, endpoints));
    std::sort(state.services.begin(), state.services.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    adds.push_back(sync({"bench/svc-" + std::to_string(services + i) + ":http"}, false));
  }
  std::sort(adds.begin(), adds.end());
  const double service_ms = (adds[9] + adds[10]) / 2, service_max_ms = adds.back();
  // KNODE_BENCH_SERVICE_LOOPS=n: n more services removed and added again (for profiling).
  for (int i = 0, n = std::getenv("KNODE_BENCH_SERVICE_LOOPS") ? std::atoi(std::getenv("KNODE_BENCH_SERVICE_LOOPS")) : 0;
       i < n; ++i) {
    const std::string svc = "bench/svc-" + std::to_string(services + 19) + ":http";
    auto it = std::find_if(state.services.begin(), state.services.end(), [&](const auto& x) { return x.name == svc; });
    auto saved = *it;
    state.services.erase(it);
    sync({svc}, false);
    state.services.insert(std::lower_bound(state.services.begin(), state.services.end(), saved,
                                           [](const auto& a, const auto& b) { return a.name < b.name; }),
                          saved);
    sync({svc}, false);
  }
  const double noop_ms = sync({}, true);
  for (int i = 0, n = std::getenv("KNODE_BENCH_NOOPS") ? std::atoi(std::getenv("KNODE_BENCH_NOOPS")) : 0; i < n; ++i) {
    sync({}, true);
  }
  const long rss_kb = vm_hwm_kb(0);
  // A restart: a new proxier (its own netlink socket, nothing cached) adopts the table the
  // first one left, reading it back; nothing changed, so it commits nothing.
  double restart_ms = 0;
  {
    auto again = nftables::open_netlink_nftables();
    if (!again.ok()) {
      std::fprintf(stderr, "%s\n", again.error().c_str());
      return 1;
    }
    auto adopter = nftables_proxy::make_nftables_proxier(std::move(*again), backend_config(), host);
    auto t = Clock::now();
    Status s = adopter->sync(state, {}, true, &stats);
    restart_ms = ms_since(t);
    if (!s.ok()) {
      std::fprintf(stderr, "restart sync failed: %s\n", s.message().c_str());
      return 1;
    }
  }
  if (std::getenv("KNODE_BENCH_SKIP_NFT")) {  // knode's own rows only
    std::printf("full %.0f ms, remove %.1f ms, add %.1f ms, service %.1f ms (max %.1f), noop %.1f ms, restart %.0f ms\n",
                full_ms, remove_ms, add_ms, service_ms, service_max_ms, noop_ms, restart_ms);
    return 0;
  }

  // The same ruleset through nft, into an empty ruleset.
  const std::string path = "/tmp/knode-nft-bench-" + std::to_string(getpid()) + ".nft";
  {
    std::ofstream f(path);
    f << nftables::nft_script(nftables_proxy::generate(state, rules_config()));
  }
  sh("nft flush ruleset");
  const double nft_full = timed("timeout 1200 nft -f " + path);
  // kube-proxy's own ruleset (the endpoints in a map in each service chain's rule), which
  // stays loaded for its one-endpoint sync.
  {
    std::ofstream f(path);
    f << nftables::nft_script(nftables_proxy::generate(state, rules_config(/*kube_proxy_shape=*/true)));
  }
  sh("nft flush ruleset");
  const double nft_kube_proxy_full = timed("timeout 1200 nft -f " + path);
  // kube-proxy's one-endpoint sync: its transaction, and the chain listing it runs first.
  {
    std::ofstream f(path);
    f << upstream_partial;
  }
  const double nft_partial = timed("nft -f " + path);
  const double nft_list_chains = timed("nft -j list chains ip >/dev/null");
  std::filesystem::remove(path);

  std::printf("knode nftables proxy mode, %d services x %d endpoints (%zu rules)\n", services, endpoints, rules);
  std::printf("| what | knode | nft (kube-proxy's mechanism) | ratio |\n|---|---|---|---|\n");
  std::printf("| full sync (empty ruleset)%s | %.0f ms | `nft -f` of the same rules: %.0f ms | %.1fx faster |\n",
              endpoint_rules ? " (--endpoint-rules: a rule per endpoint)" : "", full_ms, nft_full, nft_full / full_ms);
  std::printf("| | | `nft -f` of kube-proxy's rules (a map of endpoints in each service's rule): %.0f ms | %.1fx faster |\n",
              nft_kube_proxy_full, nft_kube_proxy_full / full_ms);
  const double upstream_one = nft_partial + nft_list_chains;
  std::printf("| one endpoint removed | %.1f ms | `nft -j list chains` %.0f ms + `nft -f` %.0f ms = %.0f ms | %.0fx faster |\n",
              remove_ms, nft_list_chains, nft_partial, upstream_one, upstream_one / remove_ms);
  std::printf("| one endpoint added | %.1f ms | | |\n", add_ms);
  std::printf("| one service added (median / slowest of 20) | %.1f / %.1f ms | | |\n", service_ms, service_max_ms);
  std::printf("| full resync, nothing to change | %.1f ms | | |\n", noop_ms);
  std::printf("| restart: a new proxier adopts the table (reads it back, commits nothing) | %.0f ms | | |\n",
              restart_ms);
  std::printf("| bench process peak RSS | %.1f MB | | |\n", rss_kb / 1024.0);
  if (!agent.empty()) {
    auto r = run_agent(agent, services, endpoints);
    std::printf("| daemon: manifests -> programmed (start to ready) | %.0f ms | | |\n", r.ready_ms);
    std::printf("| daemon: one EndpointSlice edited -> programmed | %.0f ms | | |\n", r.change_ms);
    std::printf("| daemon peak RSS (VmHWM) | %.1f MB | | |\n", r.hwm_kb / 1024.0);
    std::printf("| daemon RSS after the change: anonymous / file-backed (the binary and its libraries) "
                "| %.1f / %.1f MB | | |\n", r.anon_kb / 1024.0, r.file_kb / 1024.0);
  }
  return 0;
}
