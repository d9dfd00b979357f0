#include "knode/dataplane/iptables/set_index.h"

#include <linux/netfilter/ipset/ip_set.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

namespace knode::iptables {

Result<uint16_t> ipset_index(const std::string& name) {
  if (name.empty() || name.size() >= IPSET_MAXNAMELEN) {
    return Status::Error("ipset name \"" + name + "\" must have 1..31 bytes", EINVAL);
  }
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) return Status::FromErrno("look up ipset " + name + ": socket", errno);
  ip_set_req_get_set req{};
  req.op = IP_SET_OP_GET_BYNAME;
  req.version = IPSET_PROTOCOL;
  std::memcpy(req.set.name, name.data(), name.size());
  socklen_t len = sizeof req;
  int rc = getsockopt(fd, SOL_IP, SO_IP_SET, &req, &len);
  int err = errno;
  close(fd);
  if (rc != 0) return Status::FromErrno("look up ipset " + name + " (is ip_set loaded?)", err);
  if (req.set.index == IPSET_INVALID_ID) {
    return Status::Error("ipset " + name + " does not exist", ENOENT);
  }
  return static_cast<uint16_t>(req.set.index);
}

Status resolve_set_indexes(std::vector<Rule>& rules) {
  std::map<std::string, uint16_t> known;
  for (Rule& r : rules) {
    for (Match& m : r.matches) {
      auto* s = std::get_if<SetMatch>(&m);
      if (!s) continue;
      auto it = known.find(s->name);
      if (it == known.end()) {
        auto idx = ipset_index(s->name);
        if (!idx.ok()) return idx.status();
        it = known.emplace(s->name, *idx).first;
      }
      s->index = it->second;
    }
  }
  return Status::Ok();
}

}  // namespace knode::iptables
