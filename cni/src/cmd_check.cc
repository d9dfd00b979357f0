#include "commands.h"
#include "knode/cni/ipam_store.h"
#include "knode/cni/result.h"
#include "nat.h"
#include "pod_network.h"

namespace knode::cni {

Status cmd_check(const Request& req, const NetConf& conf) {
  if (!conf.prev_result) return error(kInvalidConfig, "prevResult: CHECK needs the result of the ADD");
  auto prev = parse_result(*conf.prev_result);
  if (!prev.ok()) return prev.status();
  const Attachment att = req.attachment();
  if (auto d = check_pod_network(conf, att, req.netns, *prev); !d.ok()) return d;
  {
    auto store = IpamStore::Open(conf.ipam.data_dir, conf.name);
    if (!store.ok()) return store.status();
    auto mine = store->find(att);
    for (const auto& ip : prev->ips) {
      if (std::find(mine.begin(), mine.end(), ip.address.ip) == mine.end()) {
        return error(kAllocationMissing, "IPAM holds no reservation of " + ip.address.ip.str() + " for " +
                                             att.container_id + "/" + att.ifname);
      }
    }
  }
  return check_nat(conf, att, prev->ips);
}

}  // namespace knode::cni
