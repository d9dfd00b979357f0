// Helpers for tests that run inside the VM (scripts/vm/run.sh): shell out to the
// reference tools (ipvsadm, ipset) and compare their text with what we programmed.
#pragma once

#include <chrono>
#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace knode::vmtest {

// Runs `cmd` with sh and returns its stdout; *status gets the exit status.
inline std::string shell(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (status != nullptr) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// Collapses runs of blanks into one space and trims: ipvsadm pads columns.
inline std::string squeeze(const std::string& line) {
  std::istringstream is(line);
  std::string word, out;
  while (is >> word) out += (out.empty() ? "" : " ") + word;
  return out;
}

inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream is(text);
  std::string line;
  while (std::getline(is, line)) out.push_back(line);
  return out;
}

// `ipvsadm -Ln` as {service line -> set of destination lines}, blanks squeezed, header
// dropped, so the kernel's hash order does not matter.
using IpvsadmTable = std::map<std::string, std::set<std::string>>;
inline IpvsadmTable ipvsadm_table(const std::string& args = "-Ln") {
  IpvsadmTable t;
  std::string current;
  for (const auto& raw : lines(shell("ipvsadm " + args))) {
    std::string l = squeeze(raw);
    if (l.empty() || l.starts_with("IP Virtual Server") || l.starts_with("Prot ") ||
        l.starts_with("-> RemoteAddress")) {
      continue;
    }
    if (l.starts_with("-> ")) {
      t[current].insert(l.substr(3));
    } else {
      current = l;
      t[current];
    }
  }
  return t;
}

// The same without the connection counters: "10.0.1.2:8080 Masq 3". Connections
// outlive their services in IPVS (TIME_WAIT), so counters carry over between tests.
inline IpvsadmTable ipvsadm_config() {
  IpvsadmTable t;
  for (const auto& [svc, dests] : ipvsadm_table()) {
    auto& out = t[svc];
    for (const auto& d : dests) {
      std::istringstream is(d);
      std::string addr, fwd, weight;
      is >> addr >> fwd >> weight;
      out.insert(addr + " " + fwd + " " + weight);
    }
  }
  return t;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace knode::vmtest
