// Announcing an address without a packet socket: a neighbour entry for the interface's
// own address, created with NTF_USE, makes the kernel resolve it at once, and its
// solicitation for an address that is the sender's own is a gratuitous ARP request
// (sender = target), broadcast, sent again every retrans_time (1 s) until mcast_solicit
// (3) tries went unanswered; the entry then fails and is collected. A packet socket would
// cost its close, which waits for an RCU grace period (7-13 ms here), on every call.
#include <linux/neighbour.h>
#include <netlink/route/neighbour.h>
#include <sys/socket.h>

#include <cerrno>

#include "knode/dataplane/link.h"
#include "nl_util.h"

namespace knode::link {

Status announce_ipv4(Socket& s, int ifindex, const net::IPAddress& ip) {
  const std::string what = "announce " + ip.str();
  if (!ip.is_v4()) return Status::Error(what + ": not an IPv4 address", EINVAL);
  rtnl_neigh* n = rtnl_neigh_alloc();
  if (n == nullptr) return Status::Error(what + ": out of memory", ENOMEM);
  nl_addr* dst = nl_addr_build(AF_INET, ip.bytes().data(), 4);
  if (dst == nullptr) {
    rtnl_neigh_put(n);
    return Status::Error(what + ": out of memory", ENOMEM);
  }
  rtnl_neigh_set_ifindex(n, ifindex);
  rtnl_neigh_set_family(n, AF_INET);
  rtnl_neigh_set_dst(n, dst);
  rtnl_neigh_set_state(n, NUD_NONE);
  rtnl_neigh_set_flags(n, NTF_USE);
  int err = rtnl_neigh_add(s.raw(), n, NLM_F_CREATE | NLM_F_REPLACE);
  nl_addr_put(dst);
  rtnl_neigh_put(n);
  if (err < 0) return detail::nl_error(what, err);
  return Status::Ok();
}

}  // namespace knode::link
