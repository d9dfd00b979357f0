// IPVS mode's virtual and real servers: what the model wants (desired.h), diffed against
// what the kernel holds, applying only the changes. Real servers that leave are drained:
// weight 0 first, deleted once their connections are gone (TCP) or at once (UDP, SCTP),
// or when the bound passes. A partial sync looks only at the changed services' keys.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "ipvs/desired.h"
#include "knode/dataplane/ipvs.h"

namespace knode::ipvs_proxy {

struct VirtualServersConfig {
  DesiredOptions desired;
  // Kernel services inside these are not ours: never changed or deleted (--ipvs-exclude-cidrs).
  std::vector<net::Cidr> exclude_cidrs;
  // --ipvs-tcp-timeout, --ipvs-tcpfin-timeout, --ipvs-udp-timeout; 0 leaves the kernel's.
  ipvs::Timeouts timeouts;
  // A draining real server is deleted after this long even with connections left.
  std::chrono::seconds graceful_termination_bound{900};
  // Injected clock (tests); default steady_clock.
  std::function<std::chrono::steady_clock::time_point()> now;
};

// What one sync covers.
struct SyncPlan {
  bool full = false;
  std::set<std::string> changed;  // service port names (partial syncs)
  std::map<ServiceKey, DesiredService> desired;  // of every service (full) or the changed ones
};

class VirtualServers {
 public:
  VirtualServers(ipvs::Ipvs& ipvs, VirtualServersConfig config);

  // Decides the scope: everything when `full`, else the changed service ports, widened
  // to everything when one of them holds or claims a key another service claims too (a
  // key's owner is decided among all claimants, as a full sync decides it).
  SyncPlan plan(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full);
  // Reads the kernel's servers in the plan's scope, applies the difference and records
  // what each service holds. `changes` gets the kernel objects touched.
  Status apply(const SyncPlan& plan, size_t* changes);
  // Removes every virtual server not excluded.
  Status cleanup();

  // The addresses NodePorts listen on; used from the next plan on.
  void set_node_addresses(std::vector<net::IPAddress> addresses) { config_.desired.node_addresses = std::move(addresses); }

  size_t objects() const { return objects_; }  // virtual + real servers programmed
  size_t draining() const { return draining_.size(); }

 private:
  using DestKey = std::tuple<ServiceKey, net::IPAddress, uint16_t>;
  struct Observed {
    VirtualServer vs;
    std::vector<RealServer> dests;
  };
  struct Apply;  // one sync's counts and first error

  bool contested_by_changed(const std::set<std::string>& changed) const;
  bool claims_held_key(const SyncPlan& plan) const;
  std::set<ServiceKey> scope_of(const SyncPlan& plan) const;
  Status observe(const SyncPlan& plan, const std::set<ServiceKey>& scope, std::map<ServiceKey, Observed>* out);
  Status observe_one(const ServiceKey& key, std::map<ServiceKey, Observed>* out);
  void reconcile(const ServiceKey& key, const DesiredService* want, const Observed* have, Apply& apply);
  void retire(const ServiceKey& key, const VirtualServer& vs, const RealServer& rs, Apply& apply);
  void recheck_draining(const ServiceKey& key, const Observed& have, Apply& apply);
  void remember(const SyncPlan& plan);
  void forget(const std::string& owner);
  bool excluded(const net::IPAddress& ip) const;
  std::chrono::steady_clock::time_point now() const;

  ipvs::Ipvs& ipvs_;
  VirtualServersConfig config_;
  bool synced_once_ = false;
  bool force_full_ = true;
  std::map<std::string, std::set<ServiceKey>> applied_;  // owner -> its keys, last sync
  std::map<ServiceKey, std::string> owner_of_;           // the reverse
  std::set<ServiceKey> contested_;                       // keys claimed by more than one owner
  std::map<std::string, size_t> owner_objects_;          // owner -> virtual + real servers
  size_t objects_ = 0;
  std::map<DestKey, std::chrono::steady_clock::time_point> draining_;  // since
};

}  // namespace knode::ipvs_proxy
