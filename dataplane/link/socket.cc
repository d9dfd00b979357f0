#include <netlink/netlink.h>
#include <netlink/socket.h>

#include <arpa/inet.h>

#include <cerrno>

#include "knode/dataplane/link.h"
#include "nl_util.h"

namespace knode::link {

namespace detail {

int nl_to_errno(int nlerr) {
  switch (nlerr < 0 ? -nlerr : nlerr) {
    case NLE_EXIST: return EEXIST;
    case NLE_NODEV: return ENODEV;
    case NLE_OBJ_NOTFOUND: return ENOENT;
    case NLE_NOADDR: return EADDRNOTAVAIL;
    case NLE_PERM: return EPERM;
    case NLE_NOACCESS: return EACCES;
    case NLE_BUSY: return EBUSY;
    case NLE_INVAL: return EINVAL;
    case NLE_RANGE: return ERANGE;
    case NLE_NOMEM: return ENOMEM;
    case NLE_OPNOTSUPP: return EOPNOTSUPP;
    case NLE_AGAIN: return EAGAIN;
    case NLE_AF_NOSUPPORT: return EAFNOSUPPORT;
    default: return EIO;
  }
}

Status nl_error(const std::string& what, int nlerr) {
  return Status::Error(what + ": " + nl_geterror(nlerr), nl_to_errno(nlerr));
}

NlAddrPtr to_nl_addr(const net::IPAddress& ip, int prefix) {
  int family = ip.is_v4() ? AF_INET : AF_INET6;
  nl_addr* a = nl_addr_build(family, ip.bytes().data(), ip.is_v4() ? 4 : 16);
  if (a != nullptr) nl_addr_set_prefixlen(a, prefix);
  return NlAddrPtr(a);
}

net::IPAddress from_nl_addr(const nl_addr* a) {
  if (a == nullptr) return {};
  auto* mut = const_cast<nl_addr*>(a);  // libnl's getters are not const-correct
  int family = nl_addr_get_family(mut);
  unsigned len = nl_addr_get_len(mut);
  const auto* b = static_cast<const uint8_t*>(nl_addr_get_binary_addr(mut));
  if (family == AF_INET) {
    if (len < 4) return *net::IPAddress::Parse("0.0.0.0");
    return net::IPAddress::V4((uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
                              (uint32_t{b[2]} << 8) | uint32_t{b[3]});
  }
  if (family == AF_INET6) {
    char buf[INET6_ADDRSTRLEN];
    if (len < 16) return *net::IPAddress::Parse("::");
    inet_ntop(AF_INET6, b, buf, sizeof(buf));
    auto ip = net::IPAddress::Parse(buf);
    return ip ? *ip : net::IPAddress{};
  }
  return {};
}

}  // namespace detail

Result<Socket> Socket::Open() {
  nl_sock* s = nl_socket_alloc();
  if (s == nullptr) return Status::Error("allocate netlink socket", ENOMEM);
  int err = nl_connect(s, NETLINK_ROUTE);
  if (err < 0) {
    nl_socket_free(s);
    return detail::nl_error("connect rtnetlink", err);
  }
  return Socket(s);
}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (sock_ != nullptr) nl_socket_free(sock_);
    sock_ = std::exchange(other.sock_, nullptr);
  }
  return *this;
}

Socket::~Socket() {
  if (sock_ != nullptr) nl_socket_free(sock_);
}

}  // namespace knode::link
