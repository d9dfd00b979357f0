// The addresses IPVS must see as local: every service's cluster, external and
// load-balancer IPs, held as host addresses on the kube-ipvs0 dummy interface so the
// node delivers their traffic locally, where IPVS (at LOCAL_IN) takes it.
#pragma once

#include <map>
#include <set>
#include <string>

#include "knode/net.h"
#include "knode/proxy/model.h"
#include "knode/status.h"

namespace knode::ipvs_proxy {

inline constexpr const char* kDefaultVipInterface = "kube-ipvs0";

// Which VIPs the services use, counted per service port so that a partial sync costs
// O(change) and a VIP two services share stays while either has it.
class VipRefs {
 public:
  // Recounts the changed service ports (every one when `full`); true when the set of
  // VIPs changed.
  bool update(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full);
  std::set<net::IPAddress> vips() const;
  void clear();

 private:
  bool set_owner(const std::string& name, const std::set<net::IPAddress>& now);
  std::map<std::string, std::set<net::IPAddress>> by_owner_;  // service port -> its VIPs
  std::map<net::IPAddress, int> refs_;                        // VIP -> service ports using it
};

// Makes `name` exist (dummy, down as kube-proxy leaves it: local routes work without
// carrier) and hold exactly `vips` as /32 and /128. Bound to the network namespace
// current at the call. An empty set removes the interface (cleanup).
[[nodiscard]] Status sync_vip_interface(const std::string& name, const std::set<net::IPAddress>& vips);

}  // namespace knode::ipvs_proxy
