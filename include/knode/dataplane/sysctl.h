// Reading and writing kernel parameters under /proc/sys, e.g.
//   sysctl::write("net/ipv4/ip_forward", "1");
//   sysctl::ensure("net.bridge.bridge-nf-call-iptables", "1");
// Names use '/' or '.' as separators (as sysctl(8) does). The values are per network
// namespace for net/*: the caller's netns is the one changed.
#pragma once

#include <string>

#include "knode/status.h"

namespace knode::sysctl {

// `root` is for tests; it replaces /proc/sys.
Result<std::string> read(const std::string& name, const std::string& root = "/proc/sys");
Result<long> read_int(const std::string& name, const std::string& root = "/proc/sys");
Status write(const std::string& name, const std::string& value,
             const std::string& root = "/proc/sys");
// Writes only when the current value differs; *changed says whether it did.
Status ensure(const std::string& name, const std::string& value, bool* changed = nullptr,
              const std::string& root = "/proc/sys");

// "net.ipv4.ip_forward" -> "/proc/sys/net/ipv4/ip_forward".
std::string path_of(const std::string& name, const std::string& root = "/proc/sys");

}  // namespace knode::sysctl
