// One generic netlink socket with RAII and a request/reply loop that returns the
// kernel's errno. The only place in dataplane/ipvs/ that holds a raw nl_sock*.
#pragma once

#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include <functional>
#include <memory>
#include <string>

#include "knode/status.h"

namespace knode::ipvs {

struct NlMsgDeleter {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using NlMsgPtr = std::unique_ptr<nl_msg, NlMsgDeleter>;

class GenlSocket {
 public:
  // Opens and connects a NETLINK_GENERIC socket in the caller's network namespace.
  static Result<std::unique_ptr<GenlSocket>> open();
  ~GenlSocket();
  GenlSocket(const GenlSocket&) = delete;
  GenlSocket& operator=(const GenlSocket&) = delete;

  // The numeric id of a generic netlink family, or a negative errno.
  int resolve_family(const std::string& name);

  // A new message for `family`/`cmd`, `flags` like NLM_F_DUMP.
  static NlMsgPtr new_message(int family, uint8_t cmd, uint8_t version, int flags);

  // Sends `msg` and reads replies until the kernel's ACK, NLMSG_DONE or an error;
  // each data message goes to `on_reply`, which returns 0 or a negative errno that
  // aborts. Returns 0 or a negative errno.
  using ReplyFn = std::function<int(nl_msg*)>;
  int transact(nl_msg* msg, const ReplyFn& on_reply);

 private:
  explicit GenlSocket(nl_sock* sock) : sock_(sock) {}
  nl_sock* sock_;
};

}  // namespace knode::ipvs
