#include <set>

#include "commands.h"
#include "knode/cni/ipam.h"
#include "knode/cni/ipam_store.h"
#include "nat.h"

namespace knode::cni {

Status cmd_gc(const NetConf& conf) {
  // Without the list every reservation would look stale; refuse rather than free them all.
  if (!conf.valid_attachments) {
    return error(kInvalidConfig, "cni.dev/valid-attachments: GC needs the list of valid attachments");
  }
  const std::vector<Attachment>& valid = *conf.valid_attachments;
  std::set<Attachment> keep(valid.begin(), valid.end());
  {
    auto store = IpamStore::Open(conf.ipam.data_dir, conf.name);
    if (!store.ok()) return store.status();
    for (const auto& [ip, owner] : store->allocations()) {
      // Reservations written without an ifname match any ifname of their container.
      bool valid_owner = keep.count(owner) > 0;
      if (owner.ifname.empty()) {
        for (const auto& k : keep) valid_owner = valid_owner || k.container_id == owner.container_id;
      }
      if (!valid_owner) {
        if (auto d = store->release(ip); !d.ok()) return d;
      }
    }
  }
  return gc_port_mappings(conf, valid);
}

Status cmd_status(const NetConf& conf) {
  auto store = IpamStore::Open(conf.ipam.data_dir, conf.name);
  if (!store.ok()) return error(kPluginNotAvailable, store.error());
  for (const auto& set : conf.ipam.ranges) {
    if (ipam_free_count(*store, set, 1) == 0) {
      return error(kPluginNotAvailable, "no IP addresses available in range set " + range_set_str(set));
    }
  }
  return Status::Ok();
}

}  // namespace knode::cni
