// Fuzzes the command line: config::parse_flags for `knode agent|kubelet|proxy` (upstream
// flag names, aliases, "--f=v" and "--f v", booleans, durations, CIDR lists, then
// config::validate), plus config::split_list and config::split_host_port on each value.
// Input: the first byte picks the component; the rest is argv, split on NUL when there
// is one, else on whitespace.
//
// --config makes parse_flags read a file: its value (after '=' or the next argument) is
// replaced with a small valid config file the harness writes once into a private mkdtemp
// directory, so no input can make it read anything else. Errors travel as ParseOutcome.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "knode/config.h"

namespace {

const std::string& config_path() {
  // One directory for the process, made on first use; its destructor removes it at exit.
  static const knode::fuzz::TempDir dir;
  static const std::string path = [] {
    std::string p = dir.path() + "/config.yaml";
    knode::fuzz::write_file(p,
                            "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
                            "kind: KubeProxyConfiguration\n"
                            "mode: ipvs\n"
                            "clusterCIDR: 10.244.0.0/16\n"
                            "ipvs: {scheduler: rr, syncPeriod: 30s}\n"
                            "---\n"
                            "apiVersion: kubelet.config.k8s.io/v1beta1\n"
                            "kind: KubeletConfiguration\n"
                            "staticPodPath: /etc/kubernetes/manifests\n"
                            "clusterDNS: [10.96.0.10]\n");
    return p;
  }();
  return path;
}

// Whether `arg` is the --config flag (as parse_flags splits names: one or two dashes,
// up to '='), and whether its value is inline.
bool is_config_flag(const std::string& arg, bool* inline_value) {
  if (arg.size() < 2 || arg[0] != '-') return false;
  std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
  auto eq = body.find('=');
  *inline_value = eq != std::string::npos;
  return body.substr(0, eq) == "config";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using knode::config::Component;
  const Component comps[] = {Component::kAgent, Component::kKubelet, Component::kProxy};
  const Component comp = comps[data[0] % 3];
  std::vector<std::string> args = knode::fuzz::split_args(knode::fuzz::as_view(data + 1, size - 1));
  if (args.size() > 256) args.resize(256);
  for (size_t i = 0; i < args.size(); ++i) {
    bool inline_value = false;
    if (!is_config_flag(args[i], &inline_value)) continue;
    if (inline_value) {
      args[i] = args[i].substr(0, args[i].find('=') + 1) + config_path();
    } else if (i + 1 < args.size()) {
      args[i + 1] = config_path();
    }
  }
  knode::config::AgentConfig cfg;
  auto out = knode::config::parse_flags(comp, args, &cfg);
  (void)out.message.size();
  for (const auto& a : args) {
    auto eq = a.find('=');
    const std::string value = eq == std::string::npos ? a : a.substr(eq + 1);
    (void)knode::config::split_list(value);
    std::string host;
    int port = 0;
    if (knode::config::split_host_port(value, 10256, &host, &port) && (port < 0 || port > 65535)) {
      knode::fuzz::fail("split_host_port accepted a port outside 0-65535", value);
    }
  }
  return 0;
}
