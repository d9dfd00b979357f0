// Fuzzes the decoding of IPVS generic netlink replies, as NetlinkIpvs reads them
// (dataplane/ipvs/netlink_ipvs.cc): each reply message is split into its top-level
// attributes with genlmsg_parse(..., IPVS_CMD_ATTR_MAX, codec::cmd_policy()), then
// ipvs::codec::parse_service (IPVS_CMD_ATTR_SERVICE), parse_destination
// (IPVS_CMD_ATTR_DEST, with the service's family or the input's choice when the kernel
// sends no IPVS_DEST_ATTR_ADDR_FAMILY), parse_timeouts and, inside those, parse_stats.
// A service or destination that decodes is printed and encoded again with put_service /
// put_destination (what an update sends back).
//
// Input: one byte (bit 0: the destination's fallback family is AF_INET6), then a stream
// of netlink messages (struct nlmsghdr + genlmsghdr + attributes), walked with NLMSG_OK /
// NLMSG_NEXT (nlmsg_ok / nlmsg_next) as libnl's receive loop does. Each message is copied
// so that it ends at a PROT_NONE page: libnl is not built with the sanitizers, and an
// attribute read past the message (nla_get_u16/u32/u64 on an attribute shorter than its
// type, which the codec's policies must refuse) faults there instead of going unseen.
// Errors travel as Result/Status.
#include <linux/genetlink.h>
#include <linux/ip_vs.h>
#include <linux/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_util.h"
#include "ipvs/codec.h"  // dataplane/ (private to knode_ipvs)

namespace {

knode::fuzz::GuardedBuffer& guarded() {
  static knode::fuzz::GuardedBuffer buf(1 << 20);
  return buf;
}

void reencode_service(const knode::ipvs::VirtualServer& vs) {
  nl_msg* msg = nlmsg_alloc();
  if (msg == nullptr) return;
  (void)knode::ipvs::codec::put_service(msg, vs, /*full=*/true);
  nlmsg_free(msg);
}

void reencode_destination(const knode::ipvs::RealServer& rs) {
  nl_msg* msg = nlmsg_alloc();
  if (msg == nullptr) return;
  (void)knode::ipvs::codec::put_destination(msg, rs, /*full=*/true);
  nlmsg_free(msg);
}

void one_message(nlmsghdr* nlh, int dest_family) {
  nlattr* tb[IPVS_CMD_ATTR_MAX + 1] = {};
  if (genlmsg_parse(nlh, 0, tb, IPVS_CMD_ATTR_MAX, knode::ipvs::codec::cmd_policy()) < 0) return;
  int af = dest_family;
  auto vs = knode::ipvs::codec::parse_service(tb[IPVS_CMD_ATTR_SERVICE]);
  if (vs.ok()) {
    (void)vs->str();
    af = knode::ipvs::codec::address_family(vs->address);
    reencode_service(*vs);
  }
  auto rs = knode::ipvs::codec::parse_destination(tb[IPVS_CMD_ATTR_DEST], af);
  if (rs.ok()) {
    (void)rs->str();
    reencode_destination(*rs);
  }
  (void)knode::ipvs::codec::parse_timeouts(tb);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int dest_family = (data[0] & 1) ? AF_INET6 : AF_INET;
  // The receive buffer, 4-byte aligned as the kernel's netlink messages are.
  std::vector<uint32_t> words((size - 1 + 3) / 4);
  std::memcpy(words.data(), data + 1, size - 1);
  auto* nlh = reinterpret_cast<nlmsghdr*>(words.data());
  int len = static_cast<int>(size - 1);
  // nlmsg_ok compares nlmsg_len with len as an int: a length over 2 GiB passes it (the
  // kernel never sends one), so it is checked as unsigned too.
  for (int n = 0; nlmsg_ok(nlh, len) && nlh->nlmsg_len <= static_cast<uint32_t>(len) && n < 64; ++n, nlh = nlmsg_next(nlh, &len)) {
    void* copy = guarded().place(nlh, nlh->nlmsg_len);
    if (copy == nullptr) continue;
    one_message(static_cast<nlmsghdr*>(copy), dest_family);
  }
  return 0;
}
