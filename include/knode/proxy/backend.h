// The seam between the proxier and a proxy mode: one implementation per mode
// (proxy/iptables, proxy/ipvs, proxy/nftables), each programming the kernel through
// dataplane/ clients.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "knode/proxy/model.h"
#include "knode/status.h"

namespace knode {

struct SyncStats {
  size_t rules_written = 0;   // rules (or IPVS objects) in the programmed state
  size_t changes = 0;         // kernel objects added, changed or removed by this sync
  std::map<std::string, size_t> rules_by_table;  // "nat" -> rules, for the iptables metrics
  // The mode has deferred work (nftables: chains to delete once nothing can point at
  // them) and wants another sync, even with nothing changed, this soon; 0: no.
  std::chrono::milliseconds resync_after{0};
};

class ProxyBackend {
 public:
  virtual ~ProxyBackend() = default;
  // "iptables", "ipvs", "nftables".
  virtual std::string mode() const = 0;
  // Programs the kernel so it matches `state`. `changed` names the service ports
  // (ServicePort::name) changed since the last successful sync; a backend may use it to
  // touch only those, and must do a full reconcile when `full` is true.
  virtual Status sync(const proxy::ProxyState& state, const std::set<std::string>& changed,
                      bool full, SyncStats* stats) = 0;
  // Asked on the sync thread before a periodic resync (the sync period ran out, nothing
  // forces a full sync): true when the mode can tell cheaply that the kernel still holds
  // what its last sync wrote and no full resync of its own is due. The resync is then a
  // partial one (of what changed, often nothing). Modes that cannot tell say false.
  virtual bool kernel_as_left() { return false; }
  // Removes everything this backend ever created, in any table; idempotent.
  virtual Status cleanup() = 0;
};

using ProxyBackendPtr = std::unique_ptr<ProxyBackend>;

}  // namespace knode
