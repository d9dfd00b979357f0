#include "ipvs/vips.h"

#include <cerrno>

#include "knode/dataplane/link.h"

namespace knode::ipvs_proxy {

bool VipRefs::set_owner(const std::string& name, const std::set<net::IPAddress>& now) {
  bool changed = false;
  auto& had = by_owner_[name];
  for (const auto& ip : had) {
    if (!now.count(ip) && --refs_[ip] == 0) {
      refs_.erase(ip);
      changed = true;
    }
  }
  for (const auto& ip : now) {
    if (!had.count(ip) && refs_[ip]++ == 0) changed = true;
  }
  if (now.empty()) {
    by_owner_.erase(name);
  } else {
    had = now;
  }
  return changed;
}

bool VipRefs::update(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full) {
  bool vips_changed = full;
  auto count = [&](const proxy::ServicePort& sp) {
    std::set<net::IPAddress> mine(sp.external_ips.begin(), sp.external_ips.end());
    mine.insert(sp.load_balancer_ips.begin(), sp.load_balancer_ips.end());
    if (sp.cluster_ip.valid()) mine.insert(sp.cluster_ip);
    vips_changed |= set_owner(sp.name, mine);
  };
  if (full) {
    clear();
    for (const auto& sp : state.services) count(sp);
    return vips_changed;
  }
  std::set<std::string> gone = changed;  // the changed names the state no longer has
  for (const auto* sp : proxy::find_ports(state, changed)) {
    count(*sp);
    gone.erase(sp->name);
  }
  for (const auto& name : gone) vips_changed |= set_owner(name, {});
  return vips_changed;
}

std::set<net::IPAddress> VipRefs::vips() const {
  std::set<net::IPAddress> out;
  for (const auto& [ip, n] : refs_) out.insert(ip);
  return out;
}

void VipRefs::clear() {
  by_owner_.clear();
  refs_.clear();
}


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

}  // namespace knode::ipvs_proxy
