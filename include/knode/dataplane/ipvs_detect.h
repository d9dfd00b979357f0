// Does this kernel have what IPVS mode needs? Used by the proxy to decide between
// ipvs and the iptables fallback, and to tell the operator what is missing.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace knode::ipvs {

struct DetectOptions {
  // Schedulers the configuration will use ("rr", "wrr", "sh", ...).
  std::vector<std::string> schedulers = {"rr", "wrr", "sh"};
  // Try loading the modules first, where the kernel can load modules.
  bool try_modprobe = true;
  // Injected for tests: the /proc and /lib/modules roots, the genl probe, modprobe.
  std::string proc_root = "/proc";
  std::string modules_root = "/lib/modules";
  std::function<bool()> genl_family_present;  // default: resolve "IPVS" over netlink
  // Runs modprobe with these module names; returns its exit status, output in *out.
  std::function<int(const std::vector<std::string>&, std::string* out)> modprobe;
};

struct Detection {
  bool genl_family = false;       // generic netlink family "IPVS" resolves
  bool proc_ip_vs = false;        // /proc/net/ip_vs exists
  bool modules_listed = false;    // /proc/modules exists (modular kernel)
  bool modprobe_tried = false;
  int modprobe_status = 0;
  std::string modprobe_output;
  std::vector<std::string> required;  // module names checked, in order
  std::vector<std::string> missing;   // subset of `required` not present

  bool available() const { return genl_family && missing.empty(); }
  // One line for the log: "IPVS unavailable: missing ip_vs, ip_vs_rr (...)".
  std::string summary() const;
  // How to fix it, for the operator.
  std::string hint() const;
};

// Module names for a scheduler list: ip_vs, ip_vs_<sched>..., nf_conntrack.
std::vector<std::string> required_modules(const std::vector<std::string>& schedulers);

Detection detect(const DetectOptions& options = {});

}  // namespace knode::ipvs
