#include "commands.h"
#include "knode/cni/ipam_store.h"
#include "nat.h"
#include "pod_network.h"

namespace knode::cni {

// Releases everything the attachment holds; whatever is already gone counts as done,
// so DEL can be repeated and works after the pod's netns was removed.
Status cmd_del(const Request& req, const NetConf& conf) {
  const Attachment att = req.attachment();
  // Runtimes pass the portMappings capability on DEL as on ADD; without it there is
  // nothing of this attachment in the nat table (GC sweeps anything left over), and
  // not reading the table keeps DEL off x_tables entirely.
  if (!conf.port_mappings.empty()) {
    if (auto d = remove_port_mappings(conf, att); !d.ok()) return d;
  }
  if (auto d = teardown_pod_network(conf, att); !d.ok()) return d;
  auto store = IpamStore::Open(conf.ipam.data_dir, conf.name);
  if (!store.ok()) return store.status();
  auto released = store->release_owner(att);
  if (!released.ok()) return released.status();
  return Status::Ok();
}

}  // namespace knode::cni
