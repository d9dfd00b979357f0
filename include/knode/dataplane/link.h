// Links, addresses and routes over rtnetlink (libnl-route). Every kernel action is a
// named, idempotent function: asking for what already holds succeeds. A Socket talks
// to the network namespace that was current when it was opened.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "knode/net.h"
#include "knode/status.h"

struct nl_sock;

namespace knode::link {

// An interface address: the host address with its prefix length (10.22.0.5/24).
struct IpNet {
  net::IPAddress ip;
  int prefix = 0;

  static std::optional<IpNet> Parse(std::string_view text);
  net::Cidr network() const { return net::Cidr(ip, prefix); }
  std::string str() const;
  auto operator<=>(const IpNet&) const = default;
};

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;  // "bridge", "veth", "dummy", "" for devices without a kind
  std::string mac;   // aa:bb:cc:dd:ee:ff
  unsigned mtu = 0;
  unsigned flags = 0;  // IFF_*
  int master_index = 0;
  bool up() const;
  bool promisc() const;
};

struct Route {
  net::Cidr dst;            // 0.0.0.0/0 for the default route
  net::IPAddress gateway;   // invalid for a link-scope route
  int ifindex = 0;          // 0: let the kernel pick by the gateway
  uint32_t table = 254;     // RT_TABLE_MAIN
  std::string str() const;
  bool operator==(const Route&) const = default;
};

// An rtnetlink socket bound to the namespace current at Open().
class Socket {
 public:
  static Result<Socket> Open();
  Socket(Socket&& other) noexcept : sock_(std::exchange(other.sock_, nullptr)) {}
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  nl_sock* raw() const { return sock_; }

 private:
  explicit Socket(nl_sock* s) : sock_(s) {}
  nl_sock* sock_ = nullptr;
};

// Lookups fail with ENODEV when the link does not exist.
Result<LinkInfo> get_link(Socket& s, std::string_view name);
Result<LinkInfo> get_link(Socket& s, int index);
bool link_exists(Socket& s, std::string_view name);

struct BridgeOptions {
  std::string name = "cni0";
  unsigned mtu = 0;  // 0: kernel default
  bool promisc = false;
};
// Creates the bridge if missing (tolerating a concurrent creator), sets mtu/promisc,
// brings it up. Its MAC is fixed: a new bridge gets a random locally administered one,
// an existing one whose MAC the kernel still picks is pinned to the MAC it has. (Left to
// the kernel, a bridge takes the lowest MAC of its ports, so it changes when that port
// goes: every attached host's neighbour entry for the bridge goes stale, and the bridge's
// own neighbour table is flushed.)
Result<LinkInfo> ensure_bridge(Socket& s, const BridgeOptions& opts);
// Waits until the bridge port `port` forwards (the kernel enables a port once its link
// watcher has seen the carrier, asynchronously), at most `max`. False when it did not, or
// when sysfs here does not show the port (mounted for another namespace).
bool wait_port_forwarding(std::string_view port, std::chrono::milliseconds max);
// A dummy device, created if missing and left down (local routes to its addresses work
// without carrier).
Result<LinkInfo> ensure_dummy(Socket& s, std::string_view name);

struct VethOptions {
  std::string host_name;
  std::string peer_name;
  unsigned mtu = 0;
  int peer_netns_fd = -1;  // create the peer directly in this namespace
  int master_index = 0;    // enslave the host end at creation (e.g. to a bridge)
  bool up = false;         // bring the host end up at creation
  bool peer_up = false;    // bring the peer up at creation
};
// One RTM_NEWLINK. Fails with EEXIST when either name is taken: a veth pair is never
// silently reused.
Status create_veth(Socket& s, const VethOptions& opts);

Status delete_link(Socket& s, std::string_view name);  // a missing link is success
Status set_up(Socket& s, std::string_view name);
Status set_down(Socket& s, std::string_view name);
Status set_mtu(Socket& s, std::string_view name, unsigned mtu);
Status set_promisc(Socket& s, std::string_view name, bool on);
Status set_master(Socket& s, std::string_view name, std::string_view master);
Status set_hairpin(Socket& s, std::string_view bridge_port, bool on);
Status set_hairpin(Socket& s, int port_index, bool on);
Status move_to_netns(Socket& s, std::string_view name, int netns_fd);

Status add_address(Socket& s, std::string_view name, const IpNet& addr);  // present: success
Status add_address(Socket& s, int ifindex, const IpNet& addr);
Status del_address(Socket& s, std::string_view name, const IpNet& addr);  // absent: success
Result<std::vector<IpNet>> list_addresses(Socket& s, std::string_view name, int family = 0);

Status add_route(Socket& s, const Route& r);  // present: success
Status del_route(Socket& s, const Route& r);  // absent: success
// Unicast routes of the main table (family AF_INET, AF_INET6 or 0 for both).
Result<std::vector<Route>> list_routes(Socket& s, int family = 0);

// The addresses (of `family`) of the interface holding the main table's default route:
// the ones this namespace's traffic leaves from. Empty when there is no default route.
std::vector<net::IPAddress> default_route_addresses(Socket& s, int family);

// Tells the link's segment that `ip` is at this interface's MAC now: a gratuitous ARP
// request (sender = target = ip, broadcast) from the kernel, repeated twice a second
// apart, so neighbours that knew the address at another MAC (whoever had it before)
// update their entry at once instead of after their reachability timeouts. `s` must be
// in the interface's namespace; `ip` must be one of its addresses. IPv4 only.
Status announce_ipv4(Socket& s, int ifindex, const net::IPAddress& ip);

}  // namespace knode::link
