#include "knode/cni/ip_math.h"

#include <arpa/inet.h>

namespace knode::cni {

Uint128 to_int(const net::IPAddress& ip) {
  Uint128 v = 0;
  size_t n = ip.is_v4() ? 4 : 16;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | ip.bytes()[i];
  return v;
}

net::IPAddress from_int(int family, Uint128 v) {
  if (family == 4) return net::IPAddress::V4(static_cast<uint32_t>(v));
  unsigned char b[16];
  for (int i = 15; i >= 0; --i) {
    b[i] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
  }
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, b, buf, sizeof(buf));
  return *net::IPAddress::Parse(buf);
}

net::IPAddress next_ip(const net::IPAddress& ip) {
  Uint128 v = to_int(ip) + 1;
  if (ip.is_v4()) v &= 0xffffffffu;
  return from_int(ip.family(), v);
}

net::IPAddress network_address(const net::Cidr& c) { return c.address(); }

net::IPAddress broadcast_address(const net::Cidr& c) {
  int bits = c.address().is_v4() ? 32 : 128;
  int host_bits = bits - c.prefix();
  Uint128 mask = host_bits >= 128 ? ~Uint128{0} : ((Uint128{1} << host_bits) - 1);
  return from_int(c.address().family(), to_int(c.address()) | mask);
}

}  // namespace knode::cni
