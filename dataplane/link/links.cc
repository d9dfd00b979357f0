#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <functional>

#include "knode/dataplane/link.h"
#include "nl_util.h"

namespace knode::link {

using detail::nl_error;

namespace {

struct LinkDeleter {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkDeleter>;

// Fetches one link by name or index (one RTM_GETLINK, no cache dump).
Result<LinkPtr> fetch(Socket& s, int index, std::string_view name) {
  rtnl_link* l = nullptr;
  std::string n(name);
  int err = rtnl_link_get_kernel(s.raw(), index, name.empty() ? nullptr : n.c_str(), &l);
  std::string what = "get link " + (name.empty() ? std::to_string(index) : n);
  if (err < 0) {
    int e = detail::nl_to_errno(err);
    if (e == ENOENT || e == ENODEV) return Status::Error(what + ": no such device", ENODEV);
    return nl_error(what, err);
  }
  return LinkPtr(l);
}

LinkInfo to_info(rtnl_link* l) {
  LinkInfo info;
  info.index = rtnl_link_get_ifindex(l);
  if (const char* n = rtnl_link_get_name(l)) info.name = n;
  if (const char* t = rtnl_link_get_type(l)) info.kind = t;
  if (nl_addr* a = rtnl_link_get_addr(l)) {
    char buf[64];
    info.mac = nl_addr2str(a, buf, sizeof(buf));
  }
  info.mtu = rtnl_link_get_mtu(l);
  info.flags = rtnl_link_get_flags(l);
  info.master_index = rtnl_link_get_master(l);
  return info;
}

// Applies the changes that edit() makes to a link, in one RTM_NEWLINK/SETLINK.
Status change(Socket& s, std::string_view name, const std::string& what,
              const std::function<void(rtnl_link*)>& edit) {
  auto orig = fetch(s, 0, name);
  if (!orig.ok()) return orig.status().Wrap(what);
  LinkPtr changes(rtnl_link_alloc());
  if (!changes) return Status::Error(what + ": out of memory", ENOMEM);
  edit(changes.get());
  int err = rtnl_link_change(s.raw(), orig->get(), changes.get(), 0);
  if (err < 0) return nl_error(what + " " + std::string(name), err);
  return Status::Ok();
}

// Sets a link's hardware address (aa:bb:...) on `l`, the link to add or the changes.
Status set_addr(rtnl_link* l, const std::string& mac) {
  nl_addr* a = nullptr;
  int err = nl_addr_parse(mac.c_str(), AF_LLC, &a);
  if (err < 0) return nl_error("parse MAC " + mac, err);
  rtnl_link_set_addr(l, a);  // takes its own reference
  nl_addr_put(a);
  return Status::Ok();
}

// A random unicast, locally administered MAC.
Result<std::string> random_mac() {
  uint8_t b[6];
  if (::getrandom(b, sizeof(b), 0) != static_cast<ssize_t>(sizeof(b))) {
    return Status::Error("random MAC: getrandom failed", errno ? errno : EIO);
  }
  b[0] = static_cast<uint8_t>((b[0] & 0xfe) | 0x02);
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
  return std::string(buf);
}

// Reads a small sysfs attribute of a link ("" when unreadable).
std::string sysfs_attr(const std::string& link, const char* attr) {
  std::string out;
  if (link.find('/') != std::string::npos || link == "." || link == "..") return out;
  FILE* f = std::fopen(("/sys/class/net/" + link + "/" + attr).c_str(), "re");
  if (f == nullptr) return out;
  char buf[64];
  if (std::fgets(buf, sizeof(buf), f) != nullptr) out = buf;
  std::fclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Result<LinkInfo> ensure_kind(Socket& s, std::string_view name, const char* kind, unsigned mtu,
                             const std::string& mac = "") {
  auto existing = fetch(s, 0, name);
  if (!existing.ok()) {
    if (existing.status().error_number() != ENODEV) return existing.status();
    LinkPtr l(rtnl_link_alloc());
    if (!l) return Status::Error("allocate link", ENOMEM);
    std::string n(name);
    rtnl_link_set_name(l.get(), n.c_str());
    int err = rtnl_link_set_type(l.get(), kind);
    if (err < 0) return nl_error(std::string("set link type ") + kind, err);
    if (mtu != 0) rtnl_link_set_mtu(l.get(), mtu);
    if (!mac.empty()) {
      if (Status st = set_addr(l.get(), mac); !st) return st;
    }
    err = rtnl_link_add(s.raw(), l.get(), NLM_F_CREATE | NLM_F_EXCL);
    // A concurrent creator may have won the race; what counts is that it exists now.
    if (err < 0 && detail::nl_to_errno(err) != EEXIST) {
      return nl_error(std::string("create ") + kind + " " + n, err);
    }
    existing = fetch(s, 0, name);
    if (!existing.ok()) return existing.status();
  }
  LinkInfo info = to_info(existing->get());
  if (info.kind != kind) {
    return Status::Error("link " + info.name + " exists but is a " +
                             (info.kind.empty() ? std::string("device without kind") : info.kind) +
                             ", not a " + kind,
                         EEXIST);
  }
  return info;
}

}  // namespace

bool LinkInfo::up() const { return (flags & IFF_UP) != 0; }
bool LinkInfo::promisc() const { return (flags & IFF_PROMISC) != 0; }

Result<LinkInfo> get_link(Socket& s, std::string_view name) {
  auto l = fetch(s, 0, name);
  if (!l.ok()) return l.status();
  return to_info(l->get());
}

Result<LinkInfo> get_link(Socket& s, int index) {
  auto l = fetch(s, index, {});
  if (!l.ok()) return l.status();
  return to_info(l->get());
}

bool link_exists(Socket& s, std::string_view name) { return fetch(s, 0, name).ok(); }

Result<LinkInfo> ensure_bridge(Socket& s, const BridgeOptions& opts) {
  auto mac = random_mac();
  if (!mac.ok()) return mac.status();
  auto br = ensure_kind(s, opts.name, "bridge", opts.mtu, *mac);
  if (!br.ok()) return br.status();
  bool changed = false;
  // A bridge made before (by an older knode, or by hand) may still take its ports' lowest
  // MAC: pin the one it has, once. (Setting it notifies an address change even when it is
  // the same, which flushes the bridge's neighbours: never again once pinned.) sysfs
  // shows the namespace it was mounted for: only trusted when its ifindex agrees.
  constexpr const char* kNetAddrSet = "3";
  if (!br->mac.empty() && sysfs_attr(br->name, "addr_assign_type") != kNetAddrSet &&
      sysfs_attr(br->name, "ifindex") == std::to_string(br->index)) {
    Status st = change(s, opts.name, "pin the MAC of", [&](rtnl_link* c) { (void)set_addr(c, br->mac); });
    if (!st) return st;
    changed = true;
  }
  if (opts.mtu != 0 && br->mtu != opts.mtu) {
    if (Status st = set_mtu(s, opts.name, opts.mtu); !st) return st;
    changed = true;
  }
  if (opts.promisc && !br->promisc()) {
    if (Status st = set_promisc(s, opts.name, true); !st) return st;
    changed = true;
  }
  if (!br->up()) {
    if (Status st = set_up(s, opts.name); !st) return st;
    changed = true;
  }
  return changed ? get_link(s, opts.name) : br;
}

bool wait_port_forwarding(std::string_view port, std::chrono::milliseconds max) {
  constexpr const char* kForwarding = "3";  // BR_STATE_FORWARDING
  const std::string name(port);
  const auto deadline = std::chrono::steady_clock::now() + max;
  for (;;) {
    std::string state = sysfs_attr(name, "brport/state");
    if (state.empty()) return false;  // no sysfs view of the port
    if (state == kForwarding) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    ::usleep(2000);
  }
}

Result<LinkInfo> ensure_dummy(Socket& s, std::string_view name) {
  return ensure_kind(s, name, "dummy", 0);
}

Status create_veth(Socket& s, const VethOptions& opts) {
  LinkPtr l(rtnl_link_veth_alloc());
  if (!l) return Status::Error("allocate veth", ENOMEM);
  LinkPtr peer(rtnl_link_veth_get_peer(l.get()));  // takes a reference
  rtnl_link_set_name(l.get(), opts.host_name.c_str());
  rtnl_link_set_name(peer.get(), opts.peer_name.c_str());
  if (opts.mtu != 0) {
    rtnl_link_set_mtu(l.get(), opts.mtu);
    rtnl_link_set_mtu(peer.get(), opts.mtu);
  }
  if (opts.peer_netns_fd >= 0) rtnl_link_set_ns_fd(peer.get(), opts.peer_netns_fd);
  if (opts.master_index > 0) rtnl_link_set_master(l.get(), opts.master_index);
  if (opts.up) rtnl_link_set_flags(l.get(), IFF_UP);
  if (opts.peer_up) rtnl_link_set_flags(peer.get(), IFF_UP);
  int err = rtnl_link_add(s.raw(), l.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (err < 0) return nl_error("create veth " + opts.host_name + "/" + opts.peer_name, err);
  return Status::Ok();
}

Status delete_link(Socket& s, std::string_view name) {
  LinkPtr l(rtnl_link_alloc());
  if (!l) return Status::Error("allocate link", ENOMEM);
  std::string n(name);
  rtnl_link_set_name(l.get(), n.c_str());
  int err = rtnl_link_delete(s.raw(), l.get());
  if (err < 0) {
    int e = detail::nl_to_errno(err);
    if (e == ENODEV || e == ENOENT) return Status::Ok();
    return nl_error("delete link " + n, err);
  }
  return Status::Ok();
}

Status set_up(Socket& s, std::string_view name) {
  auto l = fetch(s, 0, name);
  if (!l.ok()) return l.status().Wrap("set up");
  if ((rtnl_link_get_flags(l->get()) & IFF_UP) != 0) return Status::Ok();
  LinkPtr changes(rtnl_link_alloc());
  if (!changes) return Status::Error("set up: out of memory", ENOMEM);
  rtnl_link_set_flags(changes.get(), IFF_UP);
  int err = rtnl_link_change(s.raw(), l->get(), changes.get(), 0);
  if (err < 0) return nl_error("set up " + std::string(name), err);
  return Status::Ok();
}

Status set_down(Socket& s, std::string_view name) {
  return change(s, name, "set down", [](rtnl_link* c) { rtnl_link_unset_flags(c, IFF_UP); });
}

Status set_mtu(Socket& s, std::string_view name, unsigned mtu) {
  return change(s, name, "set mtu", [mtu](rtnl_link* c) { rtnl_link_set_mtu(c, mtu); });
}

Status set_promisc(Socket& s, std::string_view name, bool on) {
  return change(s, name, "set promisc", [on](rtnl_link* c) {
    if (on) {
      rtnl_link_set_flags(c, IFF_PROMISC);
    } else {
      rtnl_link_unset_flags(c, IFF_PROMISC);
    }
  });
}

Status set_master(Socket& s, std::string_view name, std::string_view master) {
  auto m = fetch(s, 0, master);
  if (!m.ok()) return m.status().Wrap("set master of " + std::string(name));
  int idx = rtnl_link_get_ifindex(m->get());
  return change(s, name, "set master " + std::string(master),
                [idx](rtnl_link* c) { rtnl_link_set_master(c, idx); });
}

Status move_to_netns(Socket& s, std::string_view name, int netns_fd) {
  return change(s, name, "move to netns",
                [netns_fd](rtnl_link* c) { rtnl_link_set_ns_fd(c, netns_fd); });
}

Status set_hairpin(Socket& s, std::string_view bridge_port, bool on) {
  auto port = fetch(s, 0, bridge_port);
  if (!port.ok()) return port.status().Wrap("set hairpin");
  return set_hairpin(s, rtnl_link_get_ifindex(port->get()), on);
}

Status set_hairpin(Socket& s, int port_index, bool on) {
  // Bridge port flags travel as IFLA_PROTINFO of an AF_BRIDGE RTM_SETLINK; libnl's
  // object API does not build that message for ports, so it is built here.
  nl_msg* msg = nlmsg_alloc_simple(RTM_SETLINK, 0);
  if (msg == nullptr) return Status::Error("set hairpin: out of memory", ENOMEM);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_BRIDGE;
  ifi.ifi_index = port_index;
  nlattr* nest = nullptr;
  if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
      (nest = nla_nest_start(msg, IFLA_PROTINFO | NLA_F_NESTED)) == nullptr ||
      nla_put_u8(msg, IFLA_BRPORT_MODE, on ? 1 : 0) < 0) {
    nlmsg_free(msg);
    return Status::Error("set hairpin: message too large", ENOMEM);
  }
  nla_nest_end(msg, nest);
  int err = nl_send_sync(s.raw(), msg);  // frees msg
  if (err < 0) return nl_error("set hairpin on link #" + std::to_string(port_index), err);
  return Status::Ok();
}

}  // namespace knode::link
