// What the proxy modes read from and set on the node they run on (its network
// namespace): addresses, sysctls, loaded kernel features. One implementation over the
// real kernel (system_host()); unit tests pass their own.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "knode/net.h"
#include "knode/status.h"

namespace knode::proxy {

class Host {
 public:
  virtual ~Host() = default;
  // Every non-loopback IPv4 address of the node, except those on `skip_iface`.
  virtual std::vector<net::IPAddress> local_ipv4_addresses(const std::string& skip_iface) = 0;
  // The IPv4 addresses of the interface holding the default route; empty without one.
  virtual std::set<net::IPAddress> default_route_ipv4_addresses() = 0;
  virtual bool has_sysctl(const std::string& name) = 0;
  // Writes the sysctl when its value differs.
  [[nodiscard]] virtual Status ensure_sysctl(const std::string& name, const std::string& value) = 0;
};

Host& system_host();

// A kernel setting a mode needs. A required one that cannot be set fails the sync; the
// others are logged with `consequence`.
struct SysctlNeed {
  const char* name;
  const char* value;
  bool required;
  const char* consequence;
};
[[nodiscard]] Status ensure_sysctls(Host& host, const std::vector<SysctlNeed>& needs, const std::string& mode);

// br_netfilter: without it traffic between pods on one bridge bypasses iptables, so a pod
// reaching a service backed by a pod on the same bridge (itself included) is not
// masqueraded. Sets net.bridge.bridge-nf-call-iptables=1 where it exists; warns otherwise.
void ensure_bridge_netfilter(Host& host);

// knode writes the legacy x_tables; on hosts whose `iptables` is the nft variant, say
// where the rules are to be seen (once).
void note_iptables_variant();

}  // namespace knode::proxy
