#include "knode/dataplane/ipvs_detect.h"

#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "knode/dataplane/ipvs.h"

namespace knode::ipvs {

namespace {

bool valid_module_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// Module names the kernel has: loaded ones (/proc/modules) and built-in ones.
std::set<std::string> present_modules(const DetectOptions& o, bool* listed) {
  std::set<std::string> names;
  std::ifstream mods(o.proc_root + "/modules");
  *listed = mods.good();
  std::string line;
  while (std::getline(mods, line)) names.insert(line.substr(0, line.find(' ')));
  utsname u{};
  if (uname(&u) == 0) {
    std::ifstream builtin(o.modules_root + "/" + u.release + "/modules.builtin");
    while (std::getline(builtin, line)) {
      auto slash = line.rfind('/');
      std::string base = line.substr(slash == std::string::npos ? 0 : slash + 1);
      if (base.size() > 3 && base.ends_with(".ko")) base.resize(base.size() - 3);
      names.insert(base);
    }
  }
  // modprobe spells modules with '-' or '_' alike; the kernel lists '_'.
  std::set<std::string> normalized;
  for (auto n : names) {
    std::replace(n.begin(), n.end(), '-', '_');
    normalized.insert(n);
  }
  return normalized;
}

int run_modprobe(const std::vector<std::string>& modules, std::string* out) {
  std::string cmd = "modprobe -a --";
  for (const auto& m : modules) {
    if (valid_module_name(m)) cmd += " " + m;
  }
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[256];
  while (fgets(buf, sizeof(buf), p) != nullptr) *out += buf;
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool probe_genl() {
  auto ipvs = open_netlink_ipvs();
  return ipvs.ok() && (*ipvs)->is_available();
}

}  // namespace

std::vector<std::string> required_modules(const std::vector<std::string>& schedulers) {
  std::vector<std::string> mods = {"ip_vs"};
  for (const auto& s : schedulers) {
    std::string m = "ip_vs_" + s;
    if (valid_module_name(s) && std::find(mods.begin(), mods.end(), m) == mods.end()) {
      mods.push_back(m);
    }
  }
  mods.push_back("nf_conntrack");
  return mods;
}

Detection detect(const DetectOptions& o) {
  Detection d;
  d.required = required_modules(o.schedulers);
  auto genl = o.genl_family_present ? o.genl_family_present : probe_genl;

  bool listed = false;
  auto present = present_modules(o, &listed);
  bool all_present = std::all_of(d.required.begin(), d.required.end(),
                                 [&](const std::string& m) { return present.count(m) > 0; });
  // Only a kernel that can load modules is worth a modprobe.
  if (o.try_modprobe && !all_present && listed) {
    d.modprobe_tried = true;
    auto mp = o.modprobe ? o.modprobe : run_modprobe;
    d.modprobe_status = mp(d.required, &d.modprobe_output);
    present = present_modules(o, &listed);
  }
  d.modules_listed = listed;
  d.genl_family = genl();
  d.proc_ip_vs = exists(o.proc_root + "/net/ip_vs");
  bool conntrack = exists(o.proc_root + "/sys/net/netfilter/nf_conntrack_max");

  for (const auto& m : d.required) {
    bool have = present.count(m) > 0;
    if (!have && m == "ip_vs") have = d.genl_family || d.proc_ip_vs;
    if (!have && m == "nf_conntrack") have = conntrack;
    // A kernel without loadable modules cannot list schedulers: they are built in
    // with ip_vs or not at all, and only adding a service would tell.
    if (!have && !listed && m.starts_with("ip_vs_")) have = d.genl_family;
    if (!have) d.missing.push_back(m);
  }
  if (!d.genl_family &&
      std::find(d.missing.begin(), d.missing.end(), "ip_vs") == d.missing.end()) {
    d.missing.insert(d.missing.begin(), "ip_vs");
  }
  return d;
}

std::string Detection::summary() const {
  if (available()) return "IPVS available";
  std::ostringstream os;
  os << "IPVS unavailable: missing ";
  for (size_t i = 0; i < missing.size(); ++i) os << (i ? ", " : "") << missing[i];
  os << " (generic netlink family IPVS " << (genl_family ? "present" : "absent")
     << ", /proc/net/ip_vs " << (proc_ip_vs ? "present" : "absent");
  if (modprobe_tried) os << ", modprobe exit " << modprobe_status;
  else if (!modules_listed) os << ", kernel cannot load modules";
  os << ")";
  return os.str();
}

std::string Detection::hint() const {
  if (available()) return "";
  std::ostringstream os;
  if (modules_listed) {
    os << "load the modules with 'modprobe -a";
    for (const auto& m : missing) os << " " << m;
    os << "' (and list them in /etc/modules-load.d/ to survive reboots)";
  } else {
    os << "this kernel has no loadable modules and no IPVS built in; use a kernel with "
          "CONFIG_IP_VS and its schedulers, or --proxy-mode=iptables";
  }
  return os.str();
}

}  // namespace knode::ipvs
