#include <linux/rtnetlink.h>
#include <netlink/cache.h>
#include <netlink/route/route.h>

#include <cerrno>

#include <algorithm>

#include "knode/dataplane/link.h"
#include "nl_util.h"

namespace knode::link {

using detail::nl_error;

std::string Route::str() const {
  std::string s = dst.str();
  if (gateway.valid()) s += " via " + gateway.str();
  if (ifindex != 0) s += " dev #" + std::to_string(ifindex);
  if (table != RT_TABLE_MAIN) s += " table " + std::to_string(table);
  return s;
}

namespace {

struct RouteDeleter {
  void operator()(rtnl_route* r) const { rtnl_route_put(r); }
};
using RoutePtr = std::unique_ptr<rtnl_route, RouteDeleter>;

struct CacheDeleter {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};

Result<RoutePtr> build(const Route& r) {
  const net::IPAddress& base = r.dst.address();
  int family = base.is_v4() ? AF_INET : AF_INET6;
  RoutePtr route(rtnl_route_alloc());
  auto dst = detail::to_nl_addr(base, r.dst.prefix());
  if (!route || !dst) return Status::Error("allocate route", ENOMEM);
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(family));
  rtnl_route_set_dst(route.get(), dst.get());
  rtnl_route_set_table(route.get(), r.table);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
  rtnl_route_set_scope(route.get(), r.gateway.valid() ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (nh == nullptr) return Status::Error("allocate nexthop", ENOMEM);
  if (r.gateway.valid()) {
    auto gw = detail::to_nl_addr(r.gateway, r.gateway.is_v4() ? 32 : 128);
    rtnl_route_nh_set_gateway(nh, gw.get());
  }
  if (r.ifindex != 0) rtnl_route_nh_set_ifindex(nh, r.ifindex);
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh now
  return route;
}

}  // namespace

Status add_route(Socket& s, const Route& r) {
  auto route = build(r);
  if (!route.ok()) return route.status();
  int err = rtnl_route_add(s.raw(), route->get(), NLM_F_EXCL);
  if (err < 0 && detail::nl_to_errno(err) != EEXIST) return nl_error("add route " + r.str(), err);
  return Status::Ok();
}

Status del_route(Socket& s, const Route& r) {
  auto route = build(r);
  if (!route.ok()) return route.status();
  rtnl_route_set_scope(route->get(), RT_SCOPE_NOWHERE);  // match any scope
  int err = rtnl_route_delete(s.raw(), route->get(), 0);
  if (err < 0) {
    int e = detail::nl_to_errno(err);  // ESRCH arrives as NLE_OBJ_NOTFOUND (ENOENT)
    if (e == ENOENT || e == ENODEV || e == EADDRNOTAVAIL) return Status::Ok();
    return nl_error("delete route " + r.str(), err);
  }
  return Status::Ok();
}

Result<std::vector<Route>> list_routes(Socket& s, int family) {
  nl_cache* raw = nullptr;
  int err = rtnl_route_alloc_cache(s.raw(), family == 0 ? AF_UNSPEC : family, 0, &raw);
  if (err < 0) return nl_error("list routes", err);
  std::unique_ptr<nl_cache, CacheDeleter> cache(raw);
  std::vector<Route> out;
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST) continue;
    int fam = rtnl_route_get_family(r);
    if (fam != AF_INET && fam != AF_INET6) continue;
    Route route;
    nl_addr* dst = rtnl_route_get_dst(r);
    net::IPAddress base = detail::from_nl_addr(dst);
    if (!base.valid()) base = *net::IPAddress::Parse(fam == AF_INET ? "0.0.0.0" : "::");
    route.dst = net::Cidr(base, dst != nullptr ? static_cast<int>(nl_addr_get_prefixlen(dst)) : 0);
    if (rtnl_route_get_nnexthops(r) > 0) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
      route.gateway = detail::from_nl_addr(rtnl_route_nh_get_gateway(nh));
      route.ifindex = rtnl_route_nh_get_ifindex(nh);
    }
    out.push_back(route);
  }
  return out;
}

std::vector<net::IPAddress> default_route_addresses(Socket& s, int family) {
  std::vector<net::IPAddress> out;
  auto routes = list_routes(s, family);
  if (!routes.ok()) return out;
  constexpr uint32_t kMainTable = 254;
  for (const auto& r : *routes) {
    if (r.dst.prefix() != 0 || r.table != kMainTable || r.ifindex == 0) continue;
    auto l = get_link(s, r.ifindex);
    if (!l.ok()) continue;
    auto addrs = list_addresses(s, l->name, family);
    if (!addrs.ok()) continue;
    for (const auto& a : *addrs) {
      if (std::find(out.begin(), out.end(), a.ip) == out.end()) out.push_back(a.ip);
    }
  }
  return out;
}

}  // namespace knode::link
