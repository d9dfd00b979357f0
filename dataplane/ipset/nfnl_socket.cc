#include "ipset/nfnl_socket.h"

#include <libmnl/libmnl.h>
#include <linux/netfilter/ipset/ip_set.h>
#include <linux/netfilter/nfnetlink.h>

#include <cerrno>
#include <ctime>
#include <vector>

namespace knode::ipset {

namespace {

// Dumps fill what the reader offers (up to 32 KiB per message in 6.x kernels).
constexpr size_t kReceiveBuffer = 64 * 1024;

struct Exchange {
  const NfnlSocket::ReplyFn* on_reply;
  int error = 0;
  uint32_t lineno = 0;
};

// NLMSG_ERROR: an ACK (error 0) or the kernel's refusal, maybe with the batch line.
int on_error(const nlmsghdr* nlh, void* arg) {
  auto* ex = static_cast<Exchange*>(arg);
  if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) {
    errno = EBADMSG;
    return MNL_CB_ERROR;
  }
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  if (err->error == 0) return MNL_CB_STOP;
  const nlmsghdr* echoed = &err->msg;
  const size_t have = nlh->nlmsg_len - NLMSG_HDRLEN - offsetof(nlmsgerr, msg);
  if (echoed->nlmsg_len <= have &&
      echoed->nlmsg_len > mnl_nlmsg_size(sizeof(nfgenmsg))) {
    const auto* end = static_cast<const char*>(mnl_nlmsg_get_payload_tail(echoed));
    for (auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(echoed, sizeof(nfgenmsg)));
         mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char*>(a)));
         a = mnl_attr_next(a)) {
      if (mnl_attr_get_type(a) == IPSET_ATTR_LINENO && mnl_attr_get_payload_len(a) == 4) {
        ex->lineno = mnl_attr_get_u32(a);
      }
    }
  }
  errno = -err->error;
  return MNL_CB_ERROR;
}

int on_data(const nlmsghdr* nlh, void* arg) {
  auto* ex = static_cast<Exchange*>(arg);
  if (ex->on_reply != nullptr && *ex->on_reply) {
    int rc = (*ex->on_reply)(nlh);
    if (rc < 0 && ex->error == 0) ex->error = rc;  // keep draining the dump
  }
  return MNL_CB_OK;
}

}  // namespace

NfnlSocket::NfnlSocket(mnl_socket* sock)
    : sock_(sock), port_id_(mnl_socket_get_portid(sock)), seq_(static_cast<unsigned>(time(nullptr))) {}

Result<std::unique_ptr<NfnlSocket>> NfnlSocket::open() {
  mnl_socket* sock = mnl_socket_open(NETLINK_NETFILTER);
  if (sock == nullptr) return Status::FromErrno("open netfilter netlink socket", errno);
  if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(sock);
    return Status::FromErrno("bind netfilter netlink socket", err);
  }
  return std::unique_ptr<NfnlSocket>(new NfnlSocket(sock));
}

NfnlSocket::~NfnlSocket() { mnl_socket_close(sock_); }

int NfnlSocket::transact(nlmsghdr* nlh, const ReplyFn& on_reply, uint32_t* error_lineno) {
  nlh->nlmsg_seq = ++seq_;
  nlh->nlmsg_flags |= NLM_F_ACK;
  if (mnl_socket_sendto(sock_, nlh, nlh->nlmsg_len) < 0) return -errno;
  std::vector<char> buf(kReceiveBuffer);
  Exchange ex{&on_reply};
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_, buf.data(), buf.size());
    if (n < 0) return -errno;
    // With a control array libmnl uses no defaults for the types it covers.
    mnl_cb_t ctl[NLMSG_MIN_TYPE] = {};
    ctl[NLMSG_NOOP] = [](const nlmsghdr*, void*) { return int(MNL_CB_OK); };
    ctl[NLMSG_ERROR] = on_error;
    ctl[NLMSG_DONE] = [](const nlmsghdr*, void*) { return int(MNL_CB_STOP); };
    ctl[NLMSG_OVERRUN] = [](const nlmsghdr*, void*) {
      errno = ENOSPC;
      return int(MNL_CB_ERROR);
    };
    int rc = mnl_cb_run2(buf.data(), static_cast<size_t>(n), nlh->nlmsg_seq, port_id_, on_data,
                         &ex, ctl, NLMSG_MIN_TYPE);
    if (rc == MNL_CB_ERROR) {
      if (error_lineno != nullptr) *error_lineno = ex.lineno;
      return -errno;  // the kernel's answer wins over a parse error of ours
    }
    if (rc == MNL_CB_STOP) break;
  }
  return ex.error;
}

}  // namespace knode::ipset
