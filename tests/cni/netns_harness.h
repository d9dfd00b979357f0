// Namespace-tier harness: a "node" netns where knode-cni runs (so its bridge, host
// veths and NAT rules live only there), pod and client namespaces, a private dataDir,
// and the real binary run through `ip netns exec` with CNI_* variables and stdin, as a
// runtime runs it. Every namespace it creates is deleted in TearDown.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace knode::cni::testing {

struct PluginRun {
  int exit_code = -1;
  std::string out;
  nlohmann::json json() const;
  int code() const;  // the error code, 0 on success
};

// A started plugin process (for concurrent runs).
struct PendingRun {
  pid_t pid = -1;
  int out_fd = -1;
};

class CniNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Creates knode-cni-test-<pid>-<suffix> and returns its path under /var/run/netns.
  std::string add_netns(const std::string& suffix);
  void del_netns(const std::string& suffix);
  std::string ns_name(const std::string& suffix) const;
  std::string node() const { return ns_name("node"); }

  // A network configuration: subnet with optional extra top-level fields (JSON text
  // without braces, e.g. R"("ipMasq":true)") and extra ipam range fields.
  std::string conf(const std::string& subnet, const std::string& extra = "", const std::string& range_extra = "",
                   const std::string& version = "1.1.0") const;

  PluginRun cni(const std::string& command, const std::string& container_id, const std::string& netns_path,
                const std::string& stdin_text, const std::string& ifname = "eth0");
  PendingRun start(const std::map<std::string, std::string>& env, const std::string& stdin_text);
  PluginRun finish(PendingRun p);

  // Runs a shell command; returns its exit status. `out` gets stdout when given.
  static int sh(const std::string& cmd, std::string* out = nullptr);
  // Runs cmd inside a namespace of this test.
  int in_ns(const std::string& suffix, const std::string& cmd, std::string* out = nullptr);
  bool ping(const std::string& from_suffix, const std::string& ip);

  std::string data_dir_;
  std::string network_ = "knode-test";
  std::vector<std::string> namespaces_;
  bool skipped_ = false;
  pid_t pid_ = getpid();
};

}  // namespace knode::cni::testing
