// One NETLINK_NETFILTER socket (libmnl) with RAII and a request/reply loop that returns
// the kernel's error code. The only place in dataplane/ipset/ holding a raw mnl_socket.
#pragma once

#include <linux/netlink.h>

#include <functional>
#include <memory>

#include "knode/status.h"

struct mnl_socket;

namespace knode::ipset {

class NfnlSocket {
 public:
  // Opens and binds a NETLINK_NETFILTER socket in the caller's network namespace.
  static Result<std::unique_ptr<NfnlSocket>> open();
  ~NfnlSocket();
  NfnlSocket(const NfnlSocket&) = delete;
  NfnlSocket& operator=(const NfnlSocket&) = delete;

  // Sends `nlh` (asking for an ACK) and reads replies until the ACK, NLMSG_DONE or an
  // error; each data message goes to `on_reply`, which returns 0 or a negative code.
  // Returns 0 or the negated kernel code (an errno, or an IPSET_ERR_* above 4096).
  // When the kernel refuses one entry of a batch it echoes the request with
  // IPSET_ATTR_LINENO set to that entry's number: that goes to *error_lineno.
  using ReplyFn = std::function<int(const nlmsghdr*)>;
  int transact(nlmsghdr* nlh, const ReplyFn& on_reply = nullptr,
               uint32_t* error_lineno = nullptr);

 private:
  explicit NfnlSocket(mnl_socket* sock);
  mnl_socket* sock_;
  unsigned port_id_;
  unsigned seq_;
};

}  // namespace knode::ipset
