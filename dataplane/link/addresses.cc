#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#include <cerrno>
#include <charconv>

#include "knode/dataplane/link.h"
#include "nl_util.h"

namespace knode::link {

using detail::nl_error;

std::optional<IpNet> IpNet::Parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = net::IPAddress::Parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  int prefix = -1;
  auto digits = text.substr(slash + 1);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || digits.empty()) return std::nullopt;
  if (prefix < 0 || prefix > (ip->is_v4() ? 32 : 128)) return std::nullopt;
  return IpNet{*ip, prefix};
}

std::string IpNet::str() const { return ip.str() + "/" + std::to_string(prefix); }

namespace {

struct AddrDeleter {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
using AddrPtr = std::unique_ptr<rtnl_addr, AddrDeleter>;

struct CacheDeleter {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};

Result<AddrPtr> build(int ifindex, const IpNet& addr) {
  AddrPtr a(rtnl_addr_alloc());
  auto local = detail::to_nl_addr(addr.ip, addr.prefix);
  if (!a || !local) return Status::Error("allocate address", ENOMEM);
  rtnl_addr_set_ifindex(a.get(), ifindex);
  rtnl_addr_set_family(a.get(), addr.ip.is_v4() ? AF_INET : AF_INET6);
  rtnl_addr_set_local(a.get(), local.get());
  rtnl_addr_set_prefixlen(a.get(), addr.prefix);
  return a;
}

Result<AddrPtr> build(Socket& s, std::string_view name, const IpNet& addr) {
  auto l = get_link(s, name);
  if (!l.ok()) return l.status();
  return build(l->index, addr);
}

}  // namespace

Status add_address(Socket& s, std::string_view name, const IpNet& addr) {
  auto l = get_link(s, name);
  if (!l.ok()) return l.status().Wrap("add address " + addr.str() + " to " + std::string(name));
  return add_address(s, l->index, addr);
}

Status add_address(Socket& s, int ifindex, const IpNet& addr) {
  std::string what = "add address " + addr.str() + " to link #" + std::to_string(ifindex);
  auto a = build(ifindex, addr);
  if (!a.ok()) return a.status().Wrap(what);
  int err = rtnl_addr_add(s.raw(), a->get(), 0);
  if (err < 0 && detail::nl_to_errno(err) != EEXIST) return nl_error(what, err);
  return Status::Ok();
}

Status del_address(Socket& s, std::string_view name, const IpNet& addr) {
  std::string what = "delete address " + addr.str() + " from " + std::string(name);
  auto a = build(s, name, addr);
  if (!a.ok()) {
    if (a.status().error_number() == ENODEV) return Status::Ok();
    return a.status().Wrap(what);
  }
  int err = rtnl_addr_delete(s.raw(), a->get(), 0);
  if (err < 0) {
    int e = detail::nl_to_errno(err);
    if (e == EADDRNOTAVAIL || e == ENOENT || e == ENODEV) return Status::Ok();
    return nl_error(what, err);
  }
  return Status::Ok();
}

Result<std::vector<IpNet>> list_addresses(Socket& s, std::string_view name, int family) {
  auto l = get_link(s, name);
  if (!l.ok()) return l.status();
  nl_cache* raw = nullptr;
  int err = rtnl_addr_alloc_cache(s.raw(), &raw);
  if (err < 0) return nl_error("list addresses", err);
  std::unique_ptr<nl_cache, CacheDeleter> cache(raw);
  std::vector<IpNet> out;
  for (nl_object* o = nl_cache_get_first(raw); o != nullptr; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_ifindex(a) != l->index) continue;
    if (family != 0 && rtnl_addr_get_family(a) != family) continue;
    net::IPAddress ip = detail::from_nl_addr(rtnl_addr_get_local(a));
    if (!ip.valid()) continue;
    out.push_back(IpNet{ip, static_cast<int>(rtnl_addr_get_prefixlen(a))});
  }
  return out;
}

}  // namespace knode::link
