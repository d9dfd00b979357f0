// knode_proxy_bench: the iptables proxy mode at scale, measured the way an operator
// would feel it, against what kube-proxy does (iptables-legacy-restore of the same rules).
//
//   knode_proxy_bench [--services 10000] [--endpoints 10] [--agent path/to/knode]
//
// In-process: the full sync (model -> kube-proxy's rules -> kernel) and one endpoint
// added/removed (a partial sync), through the same backend the daemon uses. Then the
// identical rules, written in iptables-save form, loaded by iptables-legacy-restore into
// an empty table. With --agent: the real daemon on generated manifests (time to ready,
// one EndpointSlice edited -> programmed, peak RSS). Needs root; runs in a private
// network namespace entered first (unshare), never in the host's.
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <linux/netfilter_ipv4/ip_tables.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "iptables/chain_names.h"
#include "iptables/service_rules.h"
#include "iptables/proxier.h"
#include "knode/log.h"

using namespace knode;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

proxy::ProxyState make_state(int services, int endpoints) {
  proxy::ProxyState st;
  st.services.reserve(services);
  for (int s = 0; s < services; ++s) {
    proxy::ServicePort sp;
    sp.name = "bench/svc-" + std::to_string(s) + ":http";
    sp.cluster_ip = net::IPAddress::V4(0x0a600000u + static_cast<uint32_t>(s) + 1);  // 10.96.x.x
    sp.port = 80;
    for (int e = 0; e < endpoints; ++e) {
      proxy::Endpoint b;
      b.ip = net::IPAddress::V4(0x0af40000u + static_cast<uint32_t>(s * endpoints + e) + 1);  // 10.244.x.x
      b.port = 8080;
      sp.cluster_endpoints.push_back(b);
    }
    sp.local_endpoints = sp.cluster_endpoints;
    sp.has_any_endpoint = true;
    st.services.push_back(std::move(sp));
  }
  std::sort(st.services.begin(), st.services.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return st;
}

knode::iptables_proxy::IptablesConfig backend_config() {
  knode::iptables_proxy::IptablesConfig c;
  c.cluster_cidrs = {*net::Cidr::Parse("10.244.0.0/16")};
  return c;
}

std::string save_text(const proxy::ProxyState& st) {
  iptables_proxy::RulesConfig rc;
  rc.cluster_cidrs = backend_config().cluster_cidrs;
  auto t = iptables_proxy::generate(st, rc);
  std::ostringstream os;
  os << "*nat\n";
  for (const auto& [chain, rules] : t.nat.chains) os << ":" << chain << " - [0:0]\n";
  for (const auto& j : t.nat.jumps) os << j.rule.save_string(j.chain) << "\n";
  for (const auto& [chain, rules] : t.nat.chains) {
    for (const auto& r : rules) os << r.save_string(chain) << "\n";
  }
  os << "COMMIT\n";
  return os.str();
}

// What kube-proxy writes for a partial sync after one endpoint left `sp`: the service's
// chain rewritten, the endpoint's chain deleted, with --noflush against the full table.
std::string partial_restore_text(const proxy::ServicePort& sp, const proxy::Endpoint& gone, bool large) {
  iptables_proxy::RulesConfig rc;
  rc.cluster_cidrs = backend_config().cluster_cidrs;
  rc.large_cluster = large;
  proxy::ProxyState one;
  one.services = {sp};
  auto t = iptables_proxy::generate(one, rc);
  std::string svc = iptables_proxy::service_chain("KUBE-SVC-", sp.name, "tcp");
  std::string sep = iptables_proxy::endpoint_chain(sp.name, "tcp", gone.str());
  std::ostringstream os;
  os << "*nat\n:" << svc << " - [0:0]\n:" << sep << " - [0:0]\n";
  for (const auto& r : t.nat.chains.at(svc)) os << r.save_string(svc) << "\n";
  os << "-X " << sep << "\nCOMMIT\n";
  return os.str();
}

long rss_kb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

int run(const char* cmd) { return std::system(cmd); }

// Flushes the nat table of this (private) netns, so every load starts empty.
void empty_nat() { run("iptables-legacy -t nat -F; iptables-legacy -t nat -X; iptables-legacy -F; iptables-legacy -X"); }

double restore_ms(const std::string& path) {
  empty_nat();
  auto t = Clock::now();
  std::string cmd = "iptables-legacy-restore --noflush < " + path;
  if (run(cmd.c_str()) != 0) {
    std::fprintf(stderr, "iptables-legacy-restore failed\n");
    return -1;
  }
  return ms_since(t);
}

struct AgentResult {
  double ready_ms = -1;
  std::vector<double> change_ms;  // one per change, -1 when not seen in time
  long hwm_kb = -1, rss_kb = -1;
  std::vector<double> kernel_replace_ms;  // one per change, between the changes
};

long status_kb(pid_t pid, const char* field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
  }
  return -1;
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

// The kernel's own view of the nat table: entry count and size (IPT_SO_GET_INFO, cheap
// at any size: nothing is copied).
struct NatInfo {
  uint32_t entries = 0, size = 0;
  bool operator==(const NatInfo&) const = default;
};
NatInfo nat_info() {
  NatInfo n;
  int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  ipt_getinfo info{};
  std::strncpy(info.name, "nat", sizeof info.name - 1);
  socklen_t len = sizeof info;
  if (fd >= 0 && ::getsockopt(fd, SOL_IP, IPT_SO_GET_INFO, &info, &len) == 0) {
    n.entries = info.num_entries;
    n.size = info.size;
  }
  if (fd >= 0) ::close(fd);
  return n;
}

// The kernel's own cost of replacing the nat table as it is (x_tables has no partial
// update: every change hands it the whole table): the table read, then written back
// unchanged, the write timed. The floor under any one change in this mode.
double kernel_replace_ms() {
  int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) return -1;
  ipt_getinfo info{};
  std::strncpy(info.name, "nat", sizeof info.name - 1);
  socklen_t len = sizeof info;
  double took = -1;
  if (::getsockopt(fd, SOL_IP, IPT_SO_GET_INFO, &info, &len) == 0) {
    std::vector<char> get(sizeof(ipt_get_entries) + info.size);
    auto* ge = reinterpret_cast<ipt_get_entries*>(get.data());
    std::strncpy(ge->name, "nat", sizeof ge->name - 1);
    ge->size = info.size;
    len = static_cast<socklen_t>(get.size());
    if (::getsockopt(fd, SOL_IP, IPT_SO_GET_ENTRIES, ge, &len) == 0) {
      std::vector<char> put(sizeof(ipt_replace) + info.size);
      auto* r = reinterpret_cast<ipt_replace*>(put.data());
      std::strncpy(r->name, "nat", sizeof r->name - 1);
      r->valid_hooks = info.valid_hooks;
      r->num_entries = info.num_entries;
      r->size = info.size;
      std::memcpy(r->hook_entry, info.hook_entry, sizeof r->hook_entry);
      std::memcpy(r->underflow, info.underflow, sizeof r->underflow);
      std::vector<xt_counters> counters(info.num_entries);
      r->num_counters = info.num_entries;
      r->counters = counters.data();
      std::memcpy(r->entries, ge->entrytable, info.size);
      auto t = Clock::now();
      if (::setsockopt(fd, SOL_IP, IPT_SO_SET_REPLACE, put.data(), static_cast<socklen_t>(put.size())) == 0) {
        took = ms_since(t);
      }
    }
  }
  ::close(fd);
  return took;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void write_slice(const std::string& dir, int s, int endpoints) {
  std::string path = dir + "/svc-" + std::to_string(s) + "-slice.yaml";
  std::ofstream f(path + ".tmp");
  f << "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: svc-" << s
    << "-abc, namespace: bench, labels: {kubernetes.io/service-name: svc-" << s
    << "}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n";
  for (int e = 0; e < endpoints; ++e) {
    uint32_t ip = 0x0af40000u + static_cast<uint32_t>(s * 10 + e) + 1;
    f << "- {addresses: [\"" << (ip >> 24) << "." << ((ip >> 16) & 255) << "." << ((ip >> 8) & 255) << "."
      << (ip & 255) << "\"]}\n";
  }
  f.close();
  std::filesystem::rename(path + ".tmp", path);  // one event, whole file: as kubectl or a config tool writes
}

AgentResult run_agent(const std::string& knode, int services, int endpoints, int changes) {
  AgentResult r;
  std::string dir = "/tmp/knode-bench-manifests-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir + "/services.yaml");
    for (int s = 0; s < services; ++s) {
      uint32_t ip = 0x0a600000u + static_cast<uint32_t>(s) + 1;
      f << "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-" << s
        << ", namespace: bench}\nspec: {clusterIP: " << (ip >> 24) << "." << ((ip >> 16) & 255) << "."
        << ((ip >> 8) & 255) << "." << (ip & 255) << ", ports: [{name: http, port: 80, targetPort: 8080}]}\n";
    }
  }
  for (int s = 0; s < services; ++s) write_slice(dir, s, endpoints);
  empty_nat();
  std::string log = dir + ".log";
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    execl(knode.c_str(), knode.c_str(), "proxy", ("--manifest-dir=" + dir).c_str(), "--cluster-cidr=10.244.0.0/16",
          "--healthz-bind-address=127.0.0.1:0", "--metrics-bind-address=127.0.0.1:0", "-v=2",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  auto t = Clock::now();
  if (wait_for(log, "\"knode ready\"", 0, 180000)) r.ready_ms = ms_since(t);
  // Let the first sync's aftermath settle (the manifest directory's events, a resync).
  std::this_thread::sleep_for(std::chrono::seconds(2));
  // Changes one at a time, each one endpoint removed from a different service, timed
  // from the file's rename to the kernel's nat table changing shape (polled every
  // millisecond, bounded at 30 s); the endpoint is given back (untimed) before the next.
  // Each write waits 1.1 s after the previous change reached the kernel, beyond the
  // default 1 s minimum sync period, so no change waits for another's sync.
  auto await_change = [](const NatInfo& before, Clock::time_point from) {
    while (ms_since(from) < 30000) {
      if (!(nat_info() == before)) return ms_since(from);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return -1.0;
  };
  for (int c = 0; c < changes; ++c) {
    const int s = static_cast<int>((static_cast<long>(c) * 7919 + 13) % services);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    NatInfo before = nat_info();
    t = Clock::now();
    write_slice(dir, s, endpoints - 1);
    r.change_ms.push_back(await_change(before, t));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    before = nat_info();
    t = Clock::now();
    write_slice(dir, s, endpoints);
    await_change(before, t);
    // The kernel's floor for a change at this size, sampled as often as the changes and
    // after the same 1.1 s of quiet (on this VM a replace after a second of idling takes
    // ~500 ms at 10,000 services, one 50 ms after another ~300 ms), on the table the
    // daemon wrote, while the daemon is idle (the same shape goes back: nothing to do).
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    r.kernel_replace_ms.push_back(kernel_replace_ms());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  // The kernel's floor for any change at this size, on the table the daemon wrote (idle
  // now: its last change is synced).
  r.hwm_kb = status_kb(pid, "VmHWM:");
  r.rss_kb = status_kb(pid, "VmRSS:");
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::filesystem::remove_all(dir);
  if (const char* keep = std::getenv("KNODE_BENCH_KEEP_LOG"); keep && *keep) {
    std::filesystem::rename(log, keep);  // the daemon's -v=2 log, per-sync timings included
  } else {
    std::filesystem::remove(log);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int services = 10000, endpoints = 10, changes = 20;
  std::string agent;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--services" && i + 1 < argc) services = std::atoi(argv[++i]);
    else if (a == "--endpoints" && i + 1 < argc) endpoints = std::atoi(argv[++i]);
    else if (a == "--agent" && i + 1 < argc) agent = argv[++i];
    else if (a == "--changes" && i + 1 < argc) changes = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--services N] [--endpoints M] [--agent KNODE [--changes K]]\n", argv[0]);
      return 2;
    }
  }
  if (const char* v = std::getenv("KNODE_BENCH_V")) knode::log::set_verbosity(std::atoi(v));
  if (unshare(CLONE_NEWNET) != 0) {
    std::perror("unshare(CLONE_NEWNET) (run as root)");
    return 1;
  }
  run("ip link set lo up");

  auto state = make_state(services, endpoints);
  auto backend = knode::iptables_proxy::make_iptables_proxier(backend_config());
  SyncStats stats;
  auto t = Clock::now();
  Status s = backend->sync(state, {}, true, &stats);
  double full_ms = ms_since(t);
  if (!s.ok()) {
    std::fprintf(stderr, "full sync failed: %s\n", s.message().c_str());
    return 1;
  }
  // One endpoint removed, then added back: partial syncs naming one service port.
  auto& sp = state.services[state.services.size() / 2];
  proxy::Endpoint gone = sp.cluster_endpoints.back();
  sp.cluster_endpoints.pop_back();
  sp.local_endpoints = sp.cluster_endpoints;
  t = Clock::now();
  s = backend->sync(state, {sp.name}, false, &stats);
  double remove_ms = ms_since(t);
  sp.cluster_endpoints.push_back(gone);
  sp.local_endpoints = sp.cluster_endpoints;
  t = Clock::now();
  Status s2 = backend->sync(state, {sp.name}, false, &stats);
  double add_ms = ms_since(t);
  if (!s.ok() || !s2.ok()) {
    std::fprintf(stderr, "partial sync failed: %s %s\n", s.message().c_str(), s2.message().c_str());
    return 1;
  }
  long rss = rss_kb();

  std::string path = "/tmp/knode-bench-rules-" + std::to_string(getpid()) + ".txt";
  {
    std::ofstream f(path);
    f << save_text(state);
  }
  double restore = restore_ms(path);
  // kube-proxy's partial sync on top of the full table just restored.
  std::string partial_path = path + ".partial";
  {
    std::ofstream f(partial_path);
    auto sp_now = sp;
    sp_now.cluster_endpoints.pop_back();
    sp_now.local_endpoints = sp_now.cluster_endpoints;
    size_t total = 0;
    for (const auto& x : state.services) total += x.cluster_endpoints.size();
    f << partial_restore_text(sp_now, gone, total > iptables_proxy::kLargeClusterEndpointsThreshold);
  }
  auto pt = Clock::now();
  bool partial_ok = run(("iptables-legacy-restore --noflush < " + partial_path).c_str()) == 0;
  double partial_restore = partial_ok ? ms_since(pt) : -1;
  std::filesystem::remove(path);
  std::filesystem::remove(partial_path);

  std::printf("knode iptables proxy mode, %d services x %d endpoints (%zu rules in the nat table)\n",
              services, endpoints, stats.rules_by_table["nat"]);
  std::printf("| what | knode | iptables-legacy-restore | ratio |\n|---|---|---|---|\n");
  std::printf("| full sync (empty table) | %.0f ms | %.0f ms | %.1fx faster |\n", full_ms, restore,
              restore / full_ms);
  std::printf("| one endpoint removed | %.1f ms | %.1f ms (--noflush, changed chains only) | %.1fx faster |\n",
              remove_ms, partial_restore, partial_restore / remove_ms);
  std::printf("| one endpoint added | %.1f ms | | |\n", add_ms);
  std::printf("| bench process peak RSS | %.1f MB | | |\n", rss / 1024.0);
  if (!agent.empty()) {
    auto r = run_agent(agent, services, endpoints, changes);
    std::vector<double> floor_ms;
    for (double v : r.kernel_replace_ms) {
      if (v >= 0) floor_ms.push_back(v);
    }
    std::vector<double> seen;
    for (double v : r.change_ms) {
      if (v >= 0) seen.push_back(v);
    }
    std::printf("| daemon: manifests -> programmed (start to ready) | %.0f ms | | |\n", r.ready_ms);
    std::printf("| daemon: one EndpointSlice file replaced -> nat table changed, p50 / p99 of %zu (%zu seen) | "
                "%.1f / %.1f ms | | |\n",
                r.change_ms.size(), seen.size(), percentile(seen, 0.5), percentile(seen, 0.99));
    std::printf("| the kernel's own replace of this nat table (read, written back as is), p50 / p99 of %zu | "
                "%.1f / %.1f ms | | |\n",
                floor_ms.size(), percentile(floor_ms, 0.5), percentile(floor_ms, 0.99));
    std::printf("| daemon change against the kernel's replace, p50 / p99 | %.2fx / %.2fx | | |\n",
                percentile(seen, 0.5) / percentile(floor_ms, 0.5), percentile(seen, 0.99) / percentile(floor_ms, 0.99));
    std::printf("| daemon peak RSS (VmHWM) / RSS after the changes | %.1f / %.1f MB | | |\n", r.hwm_kb / 1024.0,
                r.rss_kb / 1024.0);
  }
  return 0;
}
