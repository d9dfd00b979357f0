#include "ipvs/vip_interface.h"

#include <cerrno>

#include "knode/dataplane/link.h"

namespace knode::ipvs {

Status sync_vip_interface(const std::string& name, const std::set<net::IPAddress>& vips) {
  auto sock = link::Socket::Open();
  if (!sock.ok()) return sock.status().Wrap("sync " + name);
  if (vips.empty()) return link::delete_link(*sock, name).Wrap("remove " + name);

  auto dummy = link::ensure_dummy(*sock, name);
  if (!dummy.ok()) return dummy.status().Wrap("sync " + name);
  auto have = link::list_addresses(*sock, name);
  if (!have.ok()) return have.status().Wrap("sync " + name);

  Status first;
  std::set<net::IPAddress> present;
  for (const auto& a : *have) {
    const int full = a.ip.is_v6() ? 128 : 32;
    if (a.prefix == full && vips.count(a.ip)) {
      present.insert(a.ip);
      continue;
    }
    // Link-local IPv6 and anything not a wanted VIP goes.
    Status st = link::del_address(*sock, name, a);
    if (!st.ok() && first.ok()) first = st;
  }
  for (const auto& ip : vips) {
    if (present.count(ip)) continue;
    Status st = link::add_address(*sock, name, link::IpNet{ip, ip.is_v6() ? 128 : 32});
    if (!st.ok() && first.ok()) first = st;
  }
  return first.ok() ? first : first.Wrap("sync " + name);
}

std::function<Status(const std::set<net::IPAddress>&)> vip_interface_syncer(std::string name) {
  return [name](const std::set<net::IPAddress>& vips) { return sync_vip_interface(name, vips); };
}

}  // namespace knode::ipvs
