#include "netns_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace knode::cni::testing {

nlohmann::json PluginRun::json() const {
  auto j = nlohmann::json::parse(out, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

int PluginRun::code() const {
  if (exit_code == 0) return 0;
  auto j = json();
  return j.is_object() && j.contains("code") ? j["code"].get<int>() : -1;
}

void CniNetnsTest::SetUp() {
  if (geteuid() != 0) {
    skipped_ = true;
    GTEST_SKIP() << "namespace test: needs root to create network namespaces (CI runs it as root)";
  }
  if (sh("ip netns list >/dev/null 2>&1") != 0) {
    skipped_ = true;
    GTEST_SKIP() << "namespace test: `ip netns` is not usable here";
  }
  char tmpl[] = "/tmp/knode-cni-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  data_dir_ = tmpl;
  add_netns("node");
  ASSERT_EQ(in_ns("node", "ip link set lo up"), 0);
}

void CniNetnsTest::TearDown() {
  if (skipped_) return;
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
    sh("ip netns del " + *it + " 2>/dev/null");
  }
  namespaces_.clear();
  std::filesystem::remove_all(data_dir_);
}

std::string CniNetnsTest::ns_name(const std::string& suffix) const {
  return "knode-cni-test-" + std::to_string(pid_) + "-" + suffix;
}

std::string CniNetnsTest::add_netns(const std::string& suffix) {
  std::string name = ns_name(suffix);
  EXPECT_EQ(sh("ip netns add " + name), 0) << name;
  namespaces_.push_back(name);
  return "/var/run/netns/" + name;
}

void CniNetnsTest::del_netns(const std::string& suffix) {
  std::string name = ns_name(suffix);
  sh("ip netns del " + name);
  namespaces_.erase(std::remove(namespaces_.begin(), namespaces_.end(), name), namespaces_.end());
}

std::string CniNetnsTest::conf(const std::string& subnet, const std::string& extra, const std::string& range_extra,
                               const std::string& version) const {
  std::string s = R"({"cniVersion":")" + version + R"(","name":")" + network_ +
                  R"(","type":"knode-cni","bridge":"kcbr0","isGateway":true,"isDefaultGateway":true,)" +
                  R"("ipam":{"type":"host-local","dataDir":")" + data_dir_ + R"(","ranges":[[{"subnet":")" + subnet +
                  "\"" + (range_extra.empty() ? "" : "," + range_extra) + "}]]}";
  if (!extra.empty()) s += "," + extra;
  return s + "}";
}

PendingRun CniNetnsTest::start(const std::map<std::string, std::string>& env, const std::string& stdin_text) {
  const std::string node_name = node();  // before fork: names carry the test's pid
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    std::vector<std::string> vars = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
    for (const auto& [k, v] : env) vars.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& v : vars) envp.push_back(v.data());
    envp.push_back(nullptr);
    const char* argv[] = {"ip", "netns", "exec", node_name.c_str(), KNODE_CNI_BINARY, nullptr};
    execve("/usr/sbin/ip", const_cast<char**>(argv), envp.data());
    execve("/sbin/ip", const_cast<char**>(argv), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  size_t off = 0;
  while (off < stdin_text.size()) {
    ssize_t n = write(in[1], stdin_text.data() + off, stdin_text.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(in[1]);
  return PendingRun{pid, out[0]};
}

PluginRun CniNetnsTest::finish(PendingRun p) {
  PluginRun r;
  char buf[4096];
  ssize_t n;
  while ((n = read(p.out_fd, buf, sizeof(buf))) > 0) r.out.append(buf, static_cast<size_t>(n));
  close(p.out_fd);
  int status = 0;
  waitpid(p.pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return r;
}

PluginRun CniNetnsTest::cni(const std::string& command, const std::string& container_id,
                            const std::string& netns_path, const std::string& stdin_text, const std::string& ifname) {
  std::map<std::string, std::string> env = {{"CNI_COMMAND", command}, {"CNI_PATH", "/opt/cni/bin"}};
  if (!container_id.empty()) env["CNI_CONTAINERID"] = container_id;
  if (!netns_path.empty()) env["CNI_NETNS"] = netns_path;
  if (!ifname.empty()) env["CNI_IFNAME"] = ifname;
  return finish(start(env, stdin_text));
}

int CniNetnsTest::sh(const std::string& cmd, std::string* out) {
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return -1;
  char buf[4096];
  size_t n;
  std::string text;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  int status = pclose(f);
  if (out != nullptr) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int CniNetnsTest::in_ns(const std::string& suffix, const std::string& cmd, std::string* out) {
  return sh("ip netns exec " + ns_name(suffix) + " " + cmd, out);
}

bool CniNetnsTest::ping(const std::string& from_suffix, const std::string& ip) {
  // The first packet may wait for ARP; three tries keep the test honest and steady.
  for (int i = 0; i < 3; ++i) {
    if (in_ns(from_suffix, "busybox ping -c1 -W1 " + ip + " >/dev/null 2>&1") == 0) return true;
  }
  return false;
}

}  // namespace knode::cni::testing
