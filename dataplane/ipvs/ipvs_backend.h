// ProxyBackend for --proxy-mode=ipvs: programs IPVS virtual and real servers from the
// neutral model, diffing against what the kernel holds and applying only the changes.
// Real servers that leave are drained: weight 0 first, deleted once their connections
// are gone (TCP) or at once (UDP, SCTP), or when the bound passes.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "ipvs/desired.h"
#include "knode/dataplane/ipvs.h"
#include "knode/proxy_backend.h"

namespace knode::ipvs {

struct IpvsBackendConfig {
  DesiredOptions desired;
  // Kernel services inside these are not ours: never changed or deleted (--ipvs-exclude-cidrs).
  std::vector<net::Cidr> exclude_cidrs;
  // --ipvs-tcp-timeout, --ipvs-tcpfin-timeout, --ipvs-udp-timeout; 0 leaves the kernel's.
  Timeouts timeouts;
  // A draining real server is deleted after this long even with connections left.
  std::chrono::seconds graceful_termination_bound{900};
  // Injected clock (tests); default steady_clock.
  std::function<std::chrono::steady_clock::time_point()> now;
  // Makes exactly these VIPs local (kube-ipvs0); optional. Called on every sync.
  std::function<Status(const std::set<net::IPAddress>&)> sync_vips;
};

class IpvsBackend final : public ProxyBackend {
 public:
  IpvsBackend(Ipvs& ipvs, IpvsBackendConfig config);

  std::string mode() const override { return "ipvs"; }
  Status sync(const dp::ProxyState& state, const std::set<std::string>& changed, bool full,
              SyncStats* stats) override;
  Status cleanup() override;

  // Real servers weighted 0 and waiting for their connections to drain.
  size_t draining() const { return draining_.size(); }

 private:
  using DestKey = std::tuple<ServiceKey, net::IPAddress, uint16_t>;
  struct Observed {
    VirtualServer vs;
    std::vector<RealServer> dests;
  };
  struct Apply;  // one sync's bookkeeping

  bool excluded(const net::IPAddress& ip) const;
  Status observe_all(std::map<ServiceKey, Observed>* out);
  Status observe_one(const ServiceKey& key, std::map<ServiceKey, Observed>* out);
  void reconcile(const ServiceKey& key, const DesiredService* want, const Observed* have,
                 Apply& apply);
  void retire(const ServiceKey& key, const VirtualServer& vs, const RealServer& rs,
              Apply& apply);
  void recheck_draining(const ServiceKey& key, const Observed& have, Apply& apply);
  std::chrono::steady_clock::time_point now() const;

  Ipvs& ipvs_;
  IpvsBackendConfig config_;
  bool synced_once_ = false;
  bool force_full_ = true;
  std::map<std::string, std::set<ServiceKey>> applied_;  // owner -> its keys, last sync
  std::map<ServiceKey, std::string> owner_of_;           // the reverse
  std::set<ServiceKey> contested_;                       // keys claimed by more than one owner
  std::map<std::string, size_t> owner_objects_;          // owner -> virtual + real servers
  size_t objects_ = 0;
  std::map<std::string, std::set<net::IPAddress>> service_vips_;  // owner -> its VIPs
  std::map<net::IPAddress, int> vip_refs_;                        // VIP -> owners using it
  std::map<DestKey, std::chrono::steady_clock::time_point> draining_;  // since
};

}  // namespace knode::ipvs
