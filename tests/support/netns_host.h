// The node as proxy tests in a private network namespace see it: one fixed address
// (192.168.0.2, also the default route's), every sysctl present, and sysctls written for
// real (they are the namespace's own).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "host.h"

namespace knode::testing {

class NetnsHost final : public proxy::Host {
 public:
  std::vector<net::IPAddress> local_ipv4_addresses(const std::string&) override { return {address()}; }
  std::set<net::IPAddress> default_route_ipv4_addresses() override { return {address()}; }
  bool has_sysctl(const std::string&) override { return true; }
  Status ensure_sysctl(const std::string& n, const std::string& v) override {
    return proxy::system_host().ensure_sysctl(n, v);
  }

 private:
  static net::IPAddress address() { return *net::IPAddress::Parse("192.168.0.2"); }
};

}  // namespace knode::testing
