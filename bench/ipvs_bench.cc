// IPVS mode at scale, inside the VM (the host kernel has no IPVS), one phase per boot:
//
//   bench/run_ipvs_bench.sh [--services 1000,10000] [--endpoints 10]
//   knode_ipvs_bench --phase table|restore|mode|daemon --services N --endpoints M
//                    [--agent /knode/knode]   (in the VM)
//
// table:   the IPVS table of N services x M endpoints programmed by knode's IPVS backend
//          (full sync), one endpoint added and removed again at that scale (20 times, on
//          services spread over the table: median and slowest), a full resync with nothing
//          to change.
// restore: the same table loaded by `ipvsadm -R` (what a restore-based proxy does).
// mode:    the whole IPVS mode as the daemon runs it (virtual servers, kube-ipvs0
//          addresses, ipsets, iptables companions) from empty, one endpoint added through
//          it (20 times: median and slowest).
// daemon:  the daemon itself, `knode proxy --proxy-mode=ipvs` from a manifest directory of
//          the same N services: process start to the whole mode in the kernel (virtual
//          servers, real servers, the VIPs on kube-ipvs0: the mode's last step), then one
//          EndpointSlice file rewritten with an endpoint more (20 times, on services spread
//          over the table: median and slowest from the file's rename to the real server in
//          the kernel, polled over netlink every millisecond), and the daemon's peak RSS.
// TCG is slow: the ratios are the figure.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
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

// A Service per virtual server of make_state (same addresses), an EndpointSlice file each,
// written beside the directory's files as "<name>.tmp"; rename_slice() puts it in place.
std::string slice_file(const std::string& dir, int s) { return dir + "/svc-" + std::to_string(s) + "-slice.yaml"; }

void rename_slice(const std::string& dir, int s) {
  // whole, as an operator's editor or kubectl writes
  std::filesystem::rename(slice_file(dir, s) + ".tmp", slice_file(dir, s));
}

void write_slice(const std::string& dir, int s, const std::vector<Endpoint>& eps, bool rename = true) {
  const std::string name = slice_file(dir, s);
  {
    std::ofstream f(name + ".tmp");
    f << "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: svc-" << s
      << "-abc, namespace: ns, labels: {kubernetes.io/service-name: svc-" << s
      << "}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n";
    for (const auto& e : eps) f << "- {addresses: [\"" << e.ip.str() << "\"]}\n";
  }
  if (rename) rename_slice(dir, s);
}

long status_kb(pid_t pid, const char* key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(k, 0) == 0) return std::stol(line.substr(k.size()));
  }
  return -1;
}

// The process's minor page faults and CPU time (user, system; ms), from /proc/PID/stat.
struct ProcTimes {
  long faults = -1;
  double user_ms = -1, sys_ms = -1;
};
ProcTimes faults_and_cpu_ms(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = all.rfind(')');
  if (close == std::string::npos) return {};
  std::vector<std::string> fields;  // from field 3 (state) on
  std::istringstream in(all.substr(close + 2));
  for (std::string x; in >> x;) fields.push_back(x);
  if (fields.size() < 13) return {};
  const double tick_ms = 1000.0 / double(sysconf(_SC_CLK_TCK));
  // minflt is field 10, utime 14, stime 15 (1-based, man 5 proc).
  return {std::stol(fields[10 - 3]), std::stod(fields[14 - 3]) * tick_ms, std::stod(fields[15 - 3]) * tick_ms};
}

bool has_destination(knode::ipvs::Ipvs& ipvs, const knode::ipvs::VirtualServer& vs, const Endpoint& e) {
  auto dests = ipvs.list_destinations(vs);
  if (!dests.ok()) return false;
  return std::any_of(dests->begin(), dests->end(),
                     [&](const knode::ipvs::RealServer& r) { return r.address == e.ip && r.port == e.port; });
}

void phase_daemon(const std::string& agent, int services, int endpoints, knode::ipvs::Ipvs& ipvs) {
  const std::string dir = "/tmp/knode-ipvs-bench-manifests";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<std::vector<Endpoint>> eps(static_cast<size_t>(services));
  {
    std::ofstream f(dir + "/services.yaml");
    for (int i = 0; i < services; ++i) {
      f << "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-" << i
        << ", namespace: ns}\nspec: {clusterIP: " << IPAddress::V4(0x0a600000u + uint32_t(i)).str()
        << ", ports: [{name: http, port: 80, targetPort: 8080}]}\n";
      for (int e = 0; e < endpoints; ++e) eps[size_t(i)].push_back(backend_at(uint32_t(i * endpoints + e)));
    }
  }
  for (int i = 0; i < services; ++i) write_slice(dir, i, eps[size_t(i)]);
  auto vs_of = [](int i) {
    knode::ipvs::VirtualServer vs;
    vs.address = IPAddress::V4(0x0a600000u + uint32_t(i));
    vs.port = 80;
    return vs;
  };
  auto t0 = Clock::now();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    int fd = ::open("/tmp/knode.log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(agent.c_str(), agent.c_str(), "proxy", "--proxy-mode=ipvs", ("--manifest-dir=" + dir).c_str(),
          "--cluster-cidr=10.1.0.0/16", "--healthz-bind-address=127.0.0.1:0", "--metrics-bind-address=127.0.0.1:0",
          "--ipvs-min-sync-period=0s", "-v=2", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Programmed: every virtual server there with the first and last services' real servers,
  // and every VIP on kube-ipvs0 (the mode's last step), seen as a bind() to it succeeding.
  // Polled every 100 ms: a listing of 10,000 services costs the VM's one CPU.
  bool ready = false;
  int vips_seen = 0;  // VIPs 0..vips_seen-1 are local (none goes away meanwhile)
  auto is_local = [](const IPAddress& a) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = a.v4_be();
    bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
  };
  double ready_s = 0;
  while (!ready && seconds_since(t0) < 1200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // The poll that finds it all there counts from its start, not after its listings.
    ready_s = seconds_since(t0);
    if (waitpid(pid, nullptr, WNOHANG) == pid) die("the daemon exited; its log: /tmp/knode.log");
    while (vips_seen < services && is_local(vs_of(vips_seen).address)) ++vips_seen;
    if (vips_seen < services) continue;
    auto listed = ipvs.list_services();
    ready = listed.ok() && listed->size() == size_t(services) &&
            has_destination(ipvs, vs_of(0), eps[0].back()) &&
            has_destination(ipvs, vs_of(services - 1), eps[size_t(services) - 1].back());
  }
  if (!ready) die("the daemon did not program the table in 20 minutes");
  std::vector<double> ones;
  std::string each_faults, each_user, each_sys;  // the daemon's, per change (CPU in 10 ms ticks)
  for (int i = 0; i < kChanges; ++i) {
    const auto before = faults_and_cpu_ms(pid);
    const int s = int((size_t(services) * size_t(2 * i + 1)) / (2 * kChanges));
    const Endpoint added = backend_at(uint32_t(services * endpoints + 1 + i));
    eps[size_t(s)].push_back(added);
    write_slice(dir, s, eps[size_t(s)], /*rename=*/false);
    t0 = Clock::now();
    rename_slice(dir, s);
    while (!has_destination(ipvs, vs_of(s), added)) {
      if (seconds_since(t0) > 30) die("an added endpoint did not reach the kernel in 30 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ones.push_back(seconds_since(t0));
    const auto after = faults_and_cpu_ms(pid);
    const char* sep = each_faults.empty() ? "" : ",";
    each_faults += sep + std::to_string(after.faults - before.faults);
    each_user += sep + std::to_string(int(after.user_ms - before.user_ms + 0.5));
    each_sys += sep + std::to_string(int(after.sys_ms - before.sys_ms + 0.5));
  }
  const long hwm = status_kb(pid, "VmHWM");
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::string each;
  for (double o : ones) each += (each.empty() ? "" : ",") + std::to_string(int(o * 1e3 + 0.5));
  // The daemon's own split of the changes (the proxier's stages, the mode's), to the
  // console beside the measurement: the last syncs' lines of its -v=2 log.
  {
    std::ifstream log("/tmp/knode.log");
    std::vector<std::string> synced;
    for (std::string line; std::getline(log, line);) {
      if (line.find("synced") != std::string::npos) synced.push_back(line);
    }
    const size_t keep = std::min<size_t>(synced.size(), 2 * kChanges + 2);
    for (size_t i = synced.size() - keep; i < synced.size(); ++i) std::printf("KNODE-LOG %s\n", synced[i].c_str());
  }
  std::printf("KNODE-MEASURE daemon %d %d ready_s=%.2f one_ms=%.1f one_max_ms=%.1f rss_mb=%.1f each_ms=%s "
              "daemon_faults=%s daemon_user_ms=%s daemon_sys_ms=%s\n",
              services, endpoints, ready_s, median(ones) * 1e3, max_of(ones) * 1e3, hwm / 1024.0, each.c_str(),
              each_faults.c_str(), each_user.c_str(), each_sys.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  int services = 1000, endpoints = 10;
  std::string phase = "table";
  std::string agent = "/knode/knode";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--services")) {
      services = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--endpoints")) {
      endpoints = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--phase")) {
      phase = argv[i + 1];
    } else if (!std::strcmp(argv[i], "--agent")) {
      agent = argv[i + 1];
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
  } else if (phase == "daemon") {
    phase_daemon(agent, services, endpoints, **client);
  } else {
    die("--phase must be table, restore, mode or daemon");
  }
  return 0;
}
