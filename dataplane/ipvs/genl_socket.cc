#include "ipvs/genl_socket.h"

#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/socket.h>

#include <cerrno>

namespace knode::ipvs {

namespace {

struct Exchange {
  const GenlSocket::ReplyFn* on_reply = nullptr;
  int error = 0;  // negative errno
  bool done = false;
};

int on_valid(nl_msg* msg, void* arg) {
  auto* ex = static_cast<Exchange*>(arg);
  if (ex->on_reply != nullptr && *ex->on_reply) {
    int rc = (*ex->on_reply)(msg);
    if (rc < 0) {
      ex->error = rc;
      // Keep reading so the dump is drained; the error is reported at the end.
    }
  }
  return NL_OK;
}

int on_finish(nl_msg*, void* arg) {
  static_cast<Exchange*>(arg)->done = true;
  return NL_STOP;
}

int on_ack(nl_msg*, void* arg) {
  static_cast<Exchange*>(arg)->done = true;
  return NL_STOP;
}

int on_error(sockaddr_nl*, nlmsgerr* err, void* arg) {
  auto* ex = static_cast<Exchange*>(arg);
  if (ex->error == 0) ex->error = err->error;  // already negative
  ex->done = true;
  return NL_STOP;
}

// libnl's own error codes lose errno; map the few that matter back.
int nl_to_errno(int nlerr) {
  switch (-nlerr) {
    case NLE_NOMEM: return -ENOMEM;
    case NLE_OBJ_NOTFOUND: return -ENOENT;
    case NLE_EXIST: return -EEXIST;
    case NLE_PERM: return -EPERM;
    case NLE_NOACCESS: return -EACCES;
    case NLE_INVAL: return -EINVAL;
    case NLE_AGAIN: return -EAGAIN;
    case NLE_OPNOTSUPP: return -EOPNOTSUPP;
    case NLE_BUSY: return -EBUSY;
    default: return -EIO;
  }
}

}  // namespace

Result<std::unique_ptr<GenlSocket>> GenlSocket::open() {
  nl_sock* sock = nl_socket_alloc();
  if (sock == nullptr) return Status::Error("allocate netlink socket", ENOMEM);
  int rc = genl_connect(sock);
  if (rc < 0) {
    nl_socket_free(sock);
    return Status::Error(std::string("connect generic netlink socket: ") + nl_geterror(rc),
                         -nl_to_errno(rc));
  }
  // Large dumps (thousands of services) arrive faster than we parse them.
  nl_socket_set_buffer_size(sock, 4 << 20, 4 << 20);
  return std::unique_ptr<GenlSocket>(new GenlSocket(sock));
}

GenlSocket::~GenlSocket() { nl_socket_free(sock_); }

int GenlSocket::resolve_family(const std::string& name) {
  int id = genl_ctrl_resolve(sock_, name.c_str());
  return id >= 0 ? id : nl_to_errno(id);
}

NlMsgPtr GenlSocket::new_message(int family, uint8_t cmd, uint8_t version, int flags) {
  NlMsgPtr msg(nlmsg_alloc());
  if (msg && genlmsg_put(msg.get(), NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, flags, cmd,
                         version) == nullptr) {
    msg.reset();
  }
  return msg;
}

int GenlSocket::transact(nl_msg* msg, const ReplyFn& on_reply) {
  std::unique_ptr<nl_cb, void (*)(nl_cb*)> cb(nl_cb_alloc(NL_CB_DEFAULT), nl_cb_put);
  if (!cb) return -ENOMEM;
  Exchange ex;
  ex.on_reply = &on_reply;
  nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_valid, &ex);
  nl_cb_set(cb.get(), NL_CB_FINISH, NL_CB_CUSTOM, on_finish, &ex);
  nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, on_ack, &ex);
  nl_cb_err(cb.get(), NL_CB_CUSTOM, on_error, &ex);

  int rc = nl_send_auto(sock_, msg);
  if (rc < 0) return nl_to_errno(rc);
  while (!ex.done) {
    rc = nl_recvmsgs(sock_, cb.get());
    if (rc < 0 && !ex.done) return ex.error ? ex.error : nl_to_errno(rc);
  }
  return ex.error;
}

}  // namespace knode::ipvs
