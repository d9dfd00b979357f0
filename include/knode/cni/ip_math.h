// Address arithmetic for IPAM: an address as a 128-bit offset, for v4 and v6 alike.
#pragma once

#include "knode/net.h"

namespace knode::cni {

__extension__ typedef unsigned __int128 Uint128;

Uint128 to_int(const net::IPAddress& ip);
net::IPAddress from_int(int family, Uint128 v);
net::IPAddress next_ip(const net::IPAddress& ip);  // wraps within the family
net::IPAddress network_address(const net::Cidr& c);
net::IPAddress broadcast_address(const net::Cidr& c);  // the last address of the subnet

}  // namespace knode::cni
