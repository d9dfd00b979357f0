// Building and parsing ipset nfnetlink messages (NFNL_SUBSYS_IPSET) with libmnl. Pure
// functions over byte buffers: no socket, no kernel, so they are unit-tested alone.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "knode/dataplane/ipset.h"

namespace knode::ipset::codec {

// One request: a netlink header, the nfgenmsg and the protocol attribute.
class Request {
 public:
  // `cmd` is an IPSET_CMD_*; `nl_flags` adds to NLM_F_REQUEST (NLM_F_ACK, NLM_F_DUMP,
  // NLM_F_EXCL); `family` is an NFPROTO_* value.
  Request(uint8_t cmd, uint16_t nl_flags, uint8_t family, size_t capacity = 1024);
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  const nlmsghdr* header() const { return reinterpret_cast<const nlmsghdr*>(buf_.data()); }
  size_t size() const { return header()->nlmsg_len; }
  uint8_t cmd() const { return cmd_; }

  void put_setname(const std::string& name);
  void put_typename(SetType type);
  void put_family(uint8_t nfproto);
  void put_flags(uint32_t ipset_flags);  // IPSET_ATTR_FLAGS, e.g. IPSET_FLAG_LIST_SETNAME
  // IPSET_CMD_CREATE: type name, revision, family and the DATA nest of options.
  Status put_create(const SetSpec& spec, uint8_t revision);
  // IPSET_CMD_ADD/DEL/TEST: the DATA nest with the entry's fields for `type`.
  Status put_entry(SetType type, const Entry& e);
  // IPSET_CMD_ADD/DEL of many: IPSET_ATTR_LINENO plus an ADT nest of entries
  // [begin, end), each numbered with its index + 1 so the kernel can say which failed.
  // Returns how many were put (stops when the next would not fit).
  Result<size_t> put_entries(SetType type, const std::vector<Entry>& entries, size_t begin);

 private:
  Status put_data(SetType type, const Entry& e, uint32_t lineno);
  bool room_for(size_t bytes) const { return size() + bytes <= buf_.size(); }
  std::vector<char> buf_;
  uint8_t cmd_;
  bool lineno_ = false;
};

uint8_t nfproto_of(const SetSpec& spec);  // NFPROTO_IPV4 / _IPV6 / _UNSPEC

// What one IPSET_CMD_LIST reply message says. A large set spans several messages:
// the first carries the header, all carry entries.
struct ListChunk {
  std::string name;
  std::optional<SetSpec> header;  // with the kernel's type, family, sizes
  uint8_t revision = 0;
  uint32_t references = 0;
  uint32_t elements = 0;
  std::vector<Entry> entries;
};
// `type_hint`: the set's type when this message has no header (not the first one).
Result<ListChunk> parse_list_reply(const nlmsghdr* nlh, std::optional<SetType> type_hint);

// The revisions of a type the kernel supports, from an IPSET_CMD_TYPE reply.
struct TypeRevisions {
  uint8_t min = 0;
  uint8_t max = 0;
};
Result<TypeRevisions> parse_type_reply(const nlmsghdr* nlh);

// Text for an errno or an ipset error code (IPSET_ERR_*, 4096 and up), worded as the
// ipset tool words it for that command.
std::string error_text(int code, uint8_t cmd, std::optional<SetType> type);

}  // namespace knode::ipset::codec
