// Helpers shared by the libnl-route wrappers; private to dataplane/link.
#pragma once

#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>

#include <memory>
#include <string>

#include "knode/dataplane/link.h"
#include "knode/status.h"

namespace knode::link::detail {

// libnl answers with negative NLE_* codes; callers match on errno values.
int nl_to_errno(int nlerr);
Status nl_error(const std::string& what, int nlerr);

struct NlAddrDeleter {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
using NlAddrPtr = std::unique_ptr<nl_addr, NlAddrDeleter>;

NlAddrPtr to_nl_addr(const net::IPAddress& ip, int prefix);
net::IPAddress from_nl_addr(const nl_addr* a);

}  // namespace knode::link::detail
