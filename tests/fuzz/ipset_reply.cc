// Fuzzes the decoding of ipset nfnetlink replies, as NetlinkIpset reads them
// (dataplane/ipset/netlink_ipset.cc): ipset::codec::parse_list_reply on every data
// message of a dump (IPSET_CMD_LIST / IPSET_CMD_HEADER answers: set name, type name,
// family, revision, the DATA header nest, the ADT nest of entries), carrying the set's
// type from the first message's header to the next ones as list_set() does, and
// ipset::codec::parse_type_reply (IPSET_CMD_TYPE answers); entries that decode are
// printed, and put back into a request with Request::put_entries (what a sync sends).
// codec::error_text runs on the code in each NLMSG_ERROR message.
//
// Input: one byte (the type the first message is assumed to have when it has no header:
// 0 none, else one of SetType), then a stream of netlink messages (nlmsghdr + nfgenmsg +
// attributes) walked with mnl_nlmsg_ok / mnl_nlmsg_next as mnl_cb_run2 does; control
// messages (type < NLMSG_MIN_TYPE) go where the socket sends them (only NLMSG_ERROR is
// read). Each message is copied so that it ends at a PROT_NONE page: libmnl is not built
// with the sanitizers, and mnl_attr_get_u32/u16/u8/str on an attribute nobody validated
// read past it there instead of unseen. Errors travel as Result/Status.
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/ipset/ip_set.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "fuzz_util.h"
#include "ipset/codec.h"  // dataplane/ (private to knode_ipset)

namespace {

using knode::ipset::SetType;

knode::fuzz::GuardedBuffer& guarded() {
  static knode::fuzz::GuardedBuffer buf(1 << 20);
  return buf;
}

void one_message(const nlmsghdr* nlh, std::optional<SetType>& type) {
  namespace codec = knode::ipset::codec;
  if (nlh->nlmsg_type == NLMSG_ERROR) {
    if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(nlmsgerr)) {
      nlmsgerr err;
      std::memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof err);
      const int code = err.error == INT32_MIN ? 0 : (err.error < 0 ? -err.error : err.error);
      for (uint8_t cmd : {uint8_t(IPSET_CMD_CREATE), uint8_t(IPSET_CMD_ADD), uint8_t(IPSET_CMD_DEL)}) {
        (void)codec::error_text(code, cmd, type);
      }
    }
    return;
  }
  if (nlh->nlmsg_type < NLMSG_MIN_TYPE) return;
  auto chunk = codec::parse_list_reply(nlh, type);
  if (chunk.ok()) {
    if (chunk->header) {
      type = chunk->header->type;
      (void)knode::ipset::to_string(*type);
    }
    if (type && !chunk->entries.empty()) {
      for (const auto& e : chunk->entries) (void)e.str(*type);
      // In batches, a request each, as NetlinkIpset::change_entries sends them (smaller
      // batches here, so that several are needed).
      size_t next = 0;
      for (int rounds = 0; next < chunk->entries.size() && rounds < 64; ++rounds) {
        codec::Request req(IPSET_CMD_ADD, 0, NFPROTO_UNSPEC, 2048);
        req.put_setname(chunk->name.substr(0, knode::ipset::kMaxNameLength));
        auto put = req.put_entries(*type, chunk->entries, next);
        if (!put.ok()) break;
        if (*put == 0) knode::fuzz::fail("put_entries put no entry into an empty request");
        next += *put;
      }
    }
  }
  auto rev = codec::parse_type_reply(nlh);
  if (rev.ok()) (void)(rev->min + rev->max);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::optional<SetType> type;
  if (data[0] % 7 != 0) type = static_cast<SetType>(data[0] % 7 - 1);
  std::vector<uint32_t> words((size - 1 + 3) / 4);  // 4-byte aligned, as a receive buffer
  if (size > 1) std::memcpy(words.data(), data + 1, size - 1);
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(words.data());
  int len = static_cast<int>(size - 1);
  // mnl_nlmsg_ok compares nlmsg_len with len as an int: a length over 2 GiB passes it (the
  // kernel never sends one), so it is checked as unsigned too.
  for (int n = 0; mnl_nlmsg_ok(nlh, len) && nlh->nlmsg_len <= static_cast<uint32_t>(len) && n < 64; ++n, nlh = mnl_nlmsg_next(nlh, &len)) {
    const void* copy = guarded().place(nlh, nlh->nlmsg_len);
    if (copy == nullptr) continue;
    one_message(static_cast<const nlmsghdr*>(copy), type);
  }
  return 0;
}
