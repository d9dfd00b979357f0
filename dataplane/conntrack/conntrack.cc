#include "knode/dataplane/conntrack.h"

#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace knode::conntrack {
namespace {

struct HandleCloser {
  void operator()(nfct_handle* h) const { nfct_close(h); }
};
struct CtDeleter {
  void operator()(nf_conntrack* ct) const { nfct_destroy(ct); }
};
using Handle = std::unique_ptr<nfct_handle, HandleCloser>;
using Ct = std::unique_ptr<nf_conntrack, CtDeleter>;


bool addr_equals(const nf_conntrack* ct, int family, nf_conntrack_attr v4, nf_conntrack_attr v6,
                 const net::IPAddress& ip) {
  if (family == AF_INET) {
    return ip.is_v4() && nfct_attr_is_set(ct, v4) > 0 && nfct_get_attr_u32(ct, v4) == ip.v4_be();
  }
  if (!ip.is_v6() || nfct_attr_is_set(ct, v6) <= 0) return false;
  const void* a = nfct_get_attr(ct, v6);
  return a && std::memcmp(a, ip.bytes().data(), 16) == 0;
}

struct DumpState {
  const Filter* filter;
  int family;
  std::vector<Ct> matches;
};

int on_entry(enum nf_conntrack_msg_type, struct nf_conntrack* ct, void* data) {
  auto* st = static_cast<DumpState*>(data);
  const Filter& f = *st->filter;
  if (f.protocol && nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != f.protocol) return NFCT_CB_CONTINUE;
  if (f.orig_dst &&
      !addr_equals(ct, st->family, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST, *f.orig_dst)) {
    return NFCT_CB_CONTINUE;
  }
  if (f.orig_dst_port && (nfct_attr_is_set(ct, ATTR_ORIG_PORT_DST) <= 0 ||
                          ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST)) != f.orig_dst_port)) {
    return NFCT_CB_CONTINUE;
  }
  if (f.reply_src &&
      !addr_equals(ct, st->family, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC, *f.reply_src)) {
    return NFCT_CB_CONTINUE;
  }
  if (nf_conntrack* copy = nfct_clone(ct)) st->matches.emplace_back(copy);
  return NFCT_CB_CONTINUE;
}

std::string describe(const Filter& f) {
  std::string s = "conntrack -D";
  if (f.protocol) s += " -p " + std::to_string(f.protocol);
  if (f.orig_dst) s += " --orig-dst " + f.orig_dst->str();
  if (f.orig_dst_port) s += " --orig-port-dst " + std::to_string(f.orig_dst_port);
  if (f.reply_src) s += " --reply-src " + f.reply_src->str();
  return s;
}

}  // namespace

Result<size_t> delete_entries(const Filter& filter) {
  const std::string what = describe(filter);
  int family = AF_INET;
  if ((filter.orig_dst && filter.orig_dst->is_v6()) || (filter.reply_src && filter.reply_src->is_v6())) {
    family = AF_INET6;
  }
  if (filter.orig_dst && filter.reply_src && filter.orig_dst->family() != filter.reply_src->family()) {
    return Status::Error(what + ": mixed address families", EINVAL);
  }

  // Dump, then delete on a second handle: a handle cannot be queried from its own
  // callback.
  Handle dump(nfct_open(CONNTRACK, 0));
  if (!dump) return Status::FromErrno(what + ": open conntrack netlink socket", errno);
  DumpState st{&filter, family, {}};
  nfct_callback_register(dump.get(), NFCT_T_ALL, on_entry, &st);
  uint32_t fam = static_cast<uint32_t>(family);
  if (nfct_query(dump.get(), NFCT_Q_DUMP, &fam) < 0) {
    return Status::FromErrno(what + ": dump conntrack table", errno);
  }

  Handle del(nfct_open(CONNTRACK, 0));
  if (!del) return Status::FromErrno(what + ": open conntrack netlink socket", errno);
  size_t deleted = 0;
  for (const Ct& ct : st.matches) {
    if (nfct_query(del.get(), NFCT_Q_DESTROY, ct.get()) == 0) {
      ++deleted;
    } else if (errno != ENOENT) {
      return Status::FromErrno(what + ": delete entry", errno);
    }
  }
  return deleted;
}

}  // namespace knode::conntrack
