// knode-cni against the reference bridge + host-local plugins (Debian's
// containernetworking-plugins, /usr/lib/cni), in one run, on the same config shape:
// ADD then DEL of N pods, each plugin run as a runtime runs it (fork + exec, config on
// stdin), inside a private "node" netns so nothing touches the host's network.
//
//   cni_bench [--pods 100] [--knode PATH] [--ref-dir /usr/lib/cni] [--ip-masq]
//
// Prints median and p99 latency of ADD and DEL and the peak RSS of one invocation
// (wait4's ru_maxrss, which covers the IPAM child the reference bridge plugin execs).
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "knode/dataplane/netns.h"

namespace {

struct Sample {
  double ms = 0;
  double cpu_ms = 0;  // user + system, the plugin and its children
  long maxrss_kb = 0;
  int exit_code = 0;
};

struct Stats {
  double median = 0;
  double p99 = 0;
  double cpu_median = 0;
  long peak_rss_kb = 0;
  int failures = 0;
};

Stats summarize(std::vector<Sample> s) {
  Stats st;
  std::vector<double> ms;
  for (const auto& x : s) {
    ms.push_back(x.ms);
    st.peak_rss_kb = std::max(st.peak_rss_kb, x.maxrss_kb);
    if (x.exit_code != 0) ++st.failures;
  }
  std::vector<double> cpu;
  for (const auto& x : s) cpu.push_back(x.cpu_ms);
  std::sort(cpu.begin(), cpu.end());
  if (!cpu.empty()) st.cpu_median = cpu[cpu.size() / 2];
  std::sort(ms.begin(), ms.end());
  if (!ms.empty()) {
    st.median = ms[ms.size() / 2];
    st.p99 = ms[std::min(ms.size() - 1, static_cast<size_t>(ms.size() * 0.99))];
  }
  return st;
}

int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

Sample run(const std::string& binary, const std::vector<std::string>& env, const std::string& stdin_text) {
  int in[2];
  if (pipe2(in, O_CLOEXEC) != 0) return {0, 0, -1};
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    std::vector<std::string> vars = env;
    vars.push_back("PATH=/usr/sbin:/usr/bin:/sbin:/bin");
    std::vector<char*> envp;
    for (auto& v : vars) envp.push_back(v.data());
    envp.push_back(nullptr);
    const char* argv[] = {binary.c_str(), nullptr};
    execve(binary.c_str(), const_cast<char**>(argv), envp.data());
    _exit(127);
  }
  close(in[0]);
  [[maybe_unused]] ssize_t n = write(in[1], stdin_text.data(), stdin_text.size());
  close(in[1]);
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  auto t1 = std::chrono::steady_clock::now();
  auto tv_ms = [](const timeval& tv) { return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0; };
  return Sample{std::chrono::duration<double, std::milli>(t1 - t0).count(), tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime),
                ru.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : 128};
}

std::string config(const std::string& type, const std::string& bridge, const std::string& subnet,
                   const std::string& data_dir, bool ip_masq) {
  return std::string(R"({"cniVersion":"1.0.0","name":"bench-)") + bridge + R"(","type":")" + type +
         R"(","bridge":")" + bridge + R"(","isGateway":true,"isDefaultGateway":true,"hairpinMode":true,"ipMasq":)" +
         (ip_masq ? "true" : "false") + R"(,"ipam":{"type":"host-local","dataDir":")" + data_dir +
         R"(","ranges":[[{"subnet":")" + subnet + R"("}]]}})";
}

struct PluginResult {
  Stats add;
  Stats del;
};

PluginResult bench(const std::string& binary, const std::string& type, const std::string& cni_path,
                   const std::string& bridge, const std::string& subnet, const std::string& data_dir,
                   const std::vector<std::string>& pods, bool ip_masq) {
  std::string conf = config(type, bridge, subnet, data_dir, ip_masq);
  std::vector<Sample> adds, dels;
  auto env = [&](const char* cmd, size_t i) {
    return std::vector<std::string>{std::string("CNI_COMMAND=") + cmd, "CNI_CONTAINERID=bench-" + std::to_string(i),
                                    "CNI_NETNS=" + pods[i], "CNI_IFNAME=eth0", "CNI_PATH=" + cni_path};
  };
  for (size_t i = 0; i < pods.size(); ++i) adds.push_back(run(binary, env("ADD", i), conf));
  for (size_t i = 0; i < pods.size(); ++i) dels.push_back(run(binary, env("DEL", i), conf));
  return PluginResult{summarize(adds), summarize(dels)};
}

}  // namespace

int main(int argc, char** argv) {
  int pods_n = 100;
  std::string knode = KNODE_CNI_BINARY;
  std::string ref_dir = "/usr/lib/cni";
  bool ip_masq = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--pods" && i + 1 < argc) pods_n = std::atoi(argv[++i]);
    else if (a == "--knode" && i + 1 < argc) knode = argv[++i];
    else if (a == "--ref-dir" && i + 1 < argc) ref_dir = argv[++i];
    else if (a == "--ip-masq") ip_masq = true;
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "cni_bench: needs root (network namespaces)\n");
    return 77;
  }
  std::string ref = ref_dir + "/bridge";
  if (access(ref.c_str(), X_OK) != 0 || access((ref_dir + "/host-local").c_str(), X_OK) != 0) {
    std::fprintf(stderr, "cni_bench: reference plugins not found in %s (apt-get install containernetworking-plugins)\n",
                 ref_dir.c_str());
    return 77;
  }
  std::string prefix = "knode-cni-bench-" + std::to_string(getpid());
  std::string node = prefix + "-node";
  sh("ip netns add " + node);
  std::vector<std::string> pods;
  for (int i = 0; i < pods_n; ++i) {
    std::string name = prefix + "-p" + std::to_string(i);
    sh("ip netns add " + name);
    pods.push_back("/var/run/netns/" + name);
  }
  char tmpl[] = "/tmp/knode-cni-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);

  PluginResult k, r;
  {
    // Plugins inherit the node netns; a private mount namespace with /sys remounted
    // makes sysfs show that netns, as `ip netns exec` does.
    auto guard = knode::netns::NetnsGuard::Enter("/var/run/netns/" + node);
    if (!guard.ok()) {
      std::fprintf(stderr, "cni_bench: %s\n", guard.error().c_str());
      return 1;
    }
    if (unshare(CLONE_NEWNS) == 0) {
      mount("", "/", nullptr, MS_SLAVE | MS_REC, nullptr);
      umount2("/sys", MNT_DETACH);
      mount(node.c_str(), "/sys", "sysfs", 0, nullptr);
    }
    sh("ip link set lo up");
    // Alternate a warm-up ADD/DEL of each so neither pays first-exec page-cache costs.
    bench(knode, "knode-cni", "/opt/cni/bin", "kbench0", "10.250.0.0/16", dir + "/k", {pods[0]}, ip_masq);
    bench(ref, "bridge", ref_dir, "rbench0", "10.251.0.0/16", dir + "/r", {pods[0]}, ip_masq);
    k = bench(knode, "knode-cni", "/opt/cni/bin", "kbench0", "10.250.0.0/16", dir + "/k", pods, ip_masq);
    r = bench(ref, "bridge", ref_dir, "rbench0", "10.251.0.0/16", dir + "/r", pods, ip_masq);
  }
  for (const auto& p : pods) sh("ip netns del " + p.substr(p.rfind('/') + 1));
  sh("ip netns del " + node);
  std::filesystem::remove_all(dir);

  std::printf("CNI ADD+DEL of %d pods (bridge, veth, host-local%s), plugin run in a private node netns\n", pods_n,
              ip_masq ? ", ipMasq" : "");
  std::printf("%-28s %10s %10s %12s %10s %10s %12s %13s %9s\n", "plugin", "ADD p50 ms", "ADD p99 ms",
              "ADD cpu ms", "DEL p50 ms", "DEL p99 ms", "DEL cpu ms", "peak RSS KiB", "failures");
  auto row = [](const char* name, const PluginResult& p) {
    std::printf("%-28s %10.2f %10.2f %12.2f %10.2f %10.2f %12.2f %13ld %9d\n", name, p.add.median, p.add.p99,
                p.add.cpu_median, p.del.median, p.del.p99, p.del.cpu_median,
                std::max(p.add.peak_rss_kb, p.del.peak_rss_kb), p.add.failures + p.del.failures);
  };
  row("knode-cni", k);
  row("reference bridge+host-local", r);
  long krss = std::max(k.add.peak_rss_kb, k.del.peak_rss_kb);
  long rrss = std::max(r.add.peak_rss_kb, r.del.peak_rss_kb);
  std::printf("knode-cni: %.1fx faster per ADD (median wall), %.1fx less CPU per ADD, %.1fx faster per DEL, "
              "%.1fx smaller peak RSS\n",
              r.add.median / k.add.median, r.add.cpu_median / k.add.cpu_median, r.del.median / k.del.median,
              static_cast<double>(rrss) / krss);
  return (k.add.failures + k.del.failures) == 0 ? 0 : 1;
}
