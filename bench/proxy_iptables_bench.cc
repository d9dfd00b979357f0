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
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

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
  double ready_ms = -1, change_ms = -1;
  long hwm_kb = -1;
};

long vm_hwm_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
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

void write_slice(const std::string& dir, int s, int endpoints) {
  std::ofstream f(dir + "/svc-" + std::to_string(s) + "-slice.yaml");
  f << "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: svc-" << s
    << "-abc, namespace: bench, labels: {kubernetes.io/service-name: svc-" << s
    << "}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n";
  for (int e = 0; e < endpoints; ++e) {
    uint32_t ip = 0x0af40000u + static_cast<uint32_t>(s * 10 + e) + 1;
    f << "- {addresses: [\"" << (ip >> 24) << "." << ((ip >> 16) & 255) << "." << ((ip >> 8) & 255) << "."
      << (ip & 255) << "\"]}\n";
  }
}

AgentResult run_agent(const std::string& knode, int services, int endpoints) {
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
          "--healthz-bind-address=127.0.0.1:0", "--metrics-bind-address=127.0.0.1:0", "--iptables-min-sync-period=0s",
          "-v=2", static_cast<char*>(nullptr));
    _exit(127);
  }
  auto t = Clock::now();
  if (wait_for(log, "\"knode ready\"", 0, 120000)) r.ready_ms = ms_since(t);
  size_t mark = std::filesystem::file_size(log);
  t = Clock::now();
  write_slice(dir, services / 2, endpoints - 1);  // one endpoint removed
  if (wait_for(log, "changedServicePorts=1", mark, 30000)) r.change_ms = ms_since(t);
  r.hwm_kb = vm_hwm_kb(pid);
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
    if (a == "--services" && i + 1 < argc) services = std::atoi(argv[++i]);
    else if (a == "--endpoints" && i + 1 < argc) endpoints = std::atoi(argv[++i]);
    else if (a == "--agent" && i + 1 < argc) agent = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--services N] [--endpoints M] [--agent KNODE]\n", argv[0]);
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
    auto r = run_agent(agent, services, endpoints);
    std::printf("| daemon: manifests -> programmed (start to ready) | %.0f ms | | |\n", r.ready_ms);
    std::printf("| daemon: one EndpointSlice edited -> programmed | %.0f ms | | |\n", r.change_ms);
    std::printf("| daemon peak RSS (VmHWM) | %.1f MB | | |\n", r.hwm_kb / 1024.0);
  }
  return 0;
}
