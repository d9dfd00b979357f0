#include "ipset/codec.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/ipset/ip_set.h>
#include <linux/netfilter/ipset/ip_set_bitmap.h>
#include <linux/netfilter/ipset/ip_set_hash.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

namespace knode::ipset::codec {

namespace {

constexpr size_t kRequestSize = 1024;  // one set or one entry: a few hundred bytes at most



// ipset wants numbers in network order and says so with NLA_F_NET_BYTEORDER.
void put_be32(nlmsghdr* nlh, uint16_t type, uint32_t v) {
  mnl_attr_put_u32(nlh, type | NLA_F_NET_BYTEORDER, htonl(v));
}
void put_be16(nlmsghdr* nlh, uint16_t type, uint16_t v) {
  mnl_attr_put_u16(nlh, type | NLA_F_NET_BYTEORDER, htons(v));
}

void put_ip(nlmsghdr* nlh, uint16_t type, const net::IPAddress& ip) {
  nlattr* nest = mnl_attr_nest_start(nlh, type);
  if (ip.is_v4()) {
    mnl_attr_put_u32(nlh, IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER, ip.v4_be());
  } else {
    mnl_attr_put(nlh, IPSET_ATTR_IPADDR_IPV6 | NLA_F_NET_BYTEORDER, 16, ip.bytes().data());
  }
  mnl_attr_nest_end(nlh, nest);
}

// The libmnl type of each attribute we read, by level (the kernel's ip_set_*_policy):
// MNL_TYPE_UNSPEC for those left unchecked. mnl_attr_get_u8/u16/u32 and mnl_attr_get_str
// do not look at an attribute's length; checked, an integer is exactly its size and a
// string ends in its NUL inside the attribute, so they never read past it.
using Policy = mnl_attr_data_type (*)(int type);

mnl_attr_data_type cmd_type(int type) {
  switch (type) {
    case IPSET_ATTR_SETNAME:
    case IPSET_ATTR_TYPENAME: return MNL_TYPE_NUL_STRING;
    case IPSET_ATTR_REVISION:
    case IPSET_ATTR_FAMILY:
    case IPSET_ATTR_REVISION_MIN: return MNL_TYPE_U8;
    case IPSET_ATTR_DATA:
    case IPSET_ATTR_ADT: return MNL_TYPE_NESTED;
    default: return MNL_TYPE_UNSPEC;
  }
}

mnl_attr_data_type create_type(int type) {  // a set's header (list reply DATA)
  switch (type) {
    case IPSET_ATTR_HASHSIZE:
    case IPSET_ATTR_MAXELEM:
    case IPSET_ATTR_REFERENCES:
    case IPSET_ATTR_ELEMENTS: return MNL_TYPE_U32;
    case IPSET_ATTR_PORT:
    case IPSET_ATTR_PORT_TO: return MNL_TYPE_U16;
    default: return MNL_TYPE_UNSPEC;
  }
}

mnl_attr_data_type adt_type(int type) {  // one entry
  switch (type) {
    case IPSET_ATTR_IP:
    case IPSET_ATTR_IP2: return MNL_TYPE_NESTED;
    case IPSET_ATTR_PORT: return MNL_TYPE_U16;
    case IPSET_ATTR_PROTO:
    case IPSET_ATTR_CIDR:
    case IPSET_ATTR_CIDR2: return MNL_TYPE_U8;
    default: return MNL_TYPE_UNSPEC;
  }
}

mnl_attr_data_type ipaddr_type(int type) {
  // IPV6 is binary; parse_ip wants its 16 bytes.
  return type == IPSET_ATTR_IPADDR_IPV4 ? MNL_TYPE_U32 : MNL_TYPE_UNSPEC;
}

// Collects attributes by type into a table of `max + 1`, refusing (MNL_CB_ERROR) one
// whose length does not fit its type.
struct Table {
  const nlattr** tb;
  int max;
  Policy policy;
};
int collect(const nlattr* attr, void* data) {
  auto* t = static_cast<Table*>(data);
  int type = mnl_attr_get_type(attr);
  if (type < 0 || type > t->max) return MNL_CB_OK;
  const mnl_attr_data_type want = t->policy(type);
  if (want != MNL_TYPE_UNSPEC && mnl_attr_validate(attr, want) < 0) return MNL_CB_ERROR;
  t->tb[type] = attr;
  return MNL_CB_OK;
}

bool parse_nested(const nlattr* nest, const nlattr** tb, int max, Policy policy) {
  Table t{tb, max, policy};
  return mnl_attr_parse_nested(nest, collect, &t) >= 0;
}

uint32_t be32(const nlattr* a) { return a ? ntohl(mnl_attr_get_u32(a)) : 0; }
uint16_t be16(const nlattr* a) { return a ? ntohs(mnl_attr_get_u16(a)) : 0; }

bool parse_ip(const nlattr* nest, net::IPAddress* out) {
  if (nest == nullptr) return false;
  const nlattr* tb[IPSET_ATTR_IPADDR_MAX + 1] = {};
  if (!parse_nested(nest, tb, IPSET_ATTR_IPADDR_MAX, ipaddr_type)) return false;
  if (tb[IPSET_ATTR_IPADDR_IPV4]) {
    *out = net::IPAddress::V4(ntohl(mnl_attr_get_u32(tb[IPSET_ATTR_IPADDR_IPV4])));
    return true;
  }
  if (tb[IPSET_ATTR_IPADDR_IPV6] && mnl_attr_get_payload_len(tb[IPSET_ATTR_IPADDR_IPV6]) >= 16) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, mnl_attr_get_payload(tb[IPSET_ATTR_IPADDR_IPV6]), text, sizeof(text));
    auto ip = net::IPAddress::Parse(text);
    if (!ip) return false;
    *out = *ip;
    return true;
  }
  return false;
}

// A message too short for its nfgenmsg has no attributes to parse (mnl_attr_parse would
// start past its end).
bool has_nfgenmsg(const nlmsghdr* nlh) { return nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(nfgenmsg)); }

// One entry of an ADT nest, in the canonical form for `type` (only its fields set).
bool parse_entry(const nlattr* data, SetType type, Entry* e) {
  const nlattr* tb[IPSET_ATTR_ADT_MAX + 1] = {};
  if (!parse_nested(data, tb, IPSET_ATTR_ADT_MAX, adt_type)) return false;
  net::IPAddress ip, ip2;
  // An address the kernel sent but we cannot read makes the entry malformed.
  if (tb[IPSET_ATTR_IP] && !parse_ip(tb[IPSET_ATTR_IP], &ip)) return false;
  if (tb[IPSET_ATTR_IP2] && !parse_ip(tb[IPSET_ATTR_IP2], &ip2)) return false;
  const uint16_t port = be16(tb[IPSET_ATTR_PORT]);
  net::Protocol proto = net::Protocol::kTCP;
  if (tb[IPSET_ATTR_PROTO]) net::protocol_from_number(mnl_attr_get_u8(tb[IPSET_ATTR_PROTO]), &proto);
  const int full = ip.is_v6() ? 128 : 32;
  switch (type) {
    case SetType::kHashIp: e->ip = ip; break;
    case SetType::kHashIpPort:
      e->ip = ip, e->protocol = proto, e->port = port;
      break;
    case SetType::kHashIpPortIp:
      e->ip = ip, e->protocol = proto, e->port = port, e->ip2 = ip2;
      break;
    case SetType::kHashIpPortNet: {
      int cidr = tb[IPSET_ATTR_CIDR2] ? mnl_attr_get_u8(tb[IPSET_ATTR_CIDR2]) : full;
      e->ip = ip, e->protocol = proto, e->port = port, e->net = net::Cidr(ip2, cidr);
      break;
    }
    case SetType::kHashNet: {
      int cidr = tb[IPSET_ATTR_CIDR] ? mnl_attr_get_u8(tb[IPSET_ATTR_CIDR]) : full;
      e->net = net::Cidr(ip, cidr);
      break;
    }
    case SetType::kBitmapPort: e->port = port; break;
  }
  return true;
}

}  // namespace

uint8_t nfproto_of(const SetSpec& spec) {
  if (spec.type == SetType::kBitmapPort) return NFPROTO_UNSPEC;
  return spec.family == 6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
}

Request::Request(uint8_t cmd, uint16_t nl_flags, uint8_t family, size_t capacity)
    : buf_(std::max(capacity, kRequestSize), 0), cmd_(cmd) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf_.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_IPSET << 8) | cmd;
  nlh->nlmsg_flags = NLM_F_REQUEST | nl_flags;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = family;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = htons(0);
  mnl_attr_put_u8(nlh, IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL);
}

void Request::put_setname(const std::string& name) {
  mnl_attr_put_strz(header(), IPSET_ATTR_SETNAME, name.c_str());
}

void Request::put_typename(SetType type) {
  mnl_attr_put_strz(header(), IPSET_ATTR_TYPENAME, to_string(type));
}

void Request::put_family(uint8_t nfproto) { mnl_attr_put_u8(header(), IPSET_ATTR_FAMILY, nfproto); }

void Request::put_flags(uint32_t ipset_flags) { put_be32(header(), IPSET_ATTR_FLAGS, ipset_flags); }

Status Request::put_create(const SetSpec& spec, uint8_t revision) {
  if (spec.name.empty() || spec.name.size() > kMaxNameLength) {
    return Status::Error("create ipset '" + spec.name + "': name must be 1 to " +
                             std::to_string(kMaxNameLength) + " characters",
                         EINVAL);
  }
  if (spec.type == SetType::kBitmapPort && spec.port_from > spec.port_to) {
    return Status::Error("create ipset " + spec.name + ": port range " +
                             std::to_string(spec.port_from) + "-" +
                             std::to_string(spec.port_to) + " is empty",
                         EINVAL);
  }
  nlmsghdr* nlh = header();
  put_setname(spec.name);
  put_typename(spec.type);
  mnl_attr_put_u8(nlh, IPSET_ATTR_REVISION, revision);
  put_family(nfproto_of(spec));
  nlattr* data = mnl_attr_nest_start(nlh, IPSET_ATTR_DATA);
  if (spec.type == SetType::kBitmapPort) {
    put_be16(nlh, IPSET_ATTR_PORT, spec.port_from);
    put_be16(nlh, IPSET_ATTR_PORT_TO, spec.port_to);
  } else {
    put_be32(nlh, IPSET_ATTR_HASHSIZE, spec.hash_size);
    put_be32(nlh, IPSET_ATTR_MAXELEM, spec.max_elements);
  }
  mnl_attr_nest_end(nlh, data);
  return Status::Ok();
}

Status Request::put_entry(SetType type, const Entry& e) {
  return put_data(type, e, 0);
}

Result<size_t> Request::put_entries(SetType type, const std::vector<Entry>& entries,
                                    size_t begin) {
  nlmsghdr* nlh = header();
  if (!lineno_) {
    mnl_attr_put_u32(nlh, IPSET_ATTR_LINENO, 0);
    lineno_ = true;
  }
  nlattr* adt = mnl_attr_nest_start(nlh, IPSET_ATTR_ADT);
  size_t i = begin;
  // One entry is at most ~100 bytes (two IPv6 nests, port, proto, cidr, lineno).
  constexpr size_t kMaxEntry = 128;
  for (; i < entries.size() && room_for(kMaxEntry + 16); ++i) {
    Status st = put_data(type, entries[i], static_cast<uint32_t>(i + 1));
    if (!st.ok()) return st;
  }
  mnl_attr_nest_end(nlh, adt);
  return i - begin;
}

Status Request::put_data(SetType type, const Entry& e, uint32_t lineno) {
  auto bad = [&](const char* why) {
    return Status::Error(std::string("ipset entry ") + e.str(type) + ": " + why, EINVAL);
  };
  nlmsghdr* nlh = header();
  nlattr* data = mnl_attr_nest_start(nlh, IPSET_ATTR_DATA);
  if (lineno != 0) mnl_attr_put_u32(nlh, IPSET_ATTR_LINENO, lineno);
  switch (type) {
    case SetType::kHashIp:
    case SetType::kHashIpPort:
    case SetType::kHashIpPortIp:
    case SetType::kHashIpPortNet:
      if (!e.ip.valid()) return bad("no address");
      put_ip(nlh, IPSET_ATTR_IP, e.ip);
      if (type == SetType::kHashIp) break;
      put_be16(nlh, IPSET_ATTR_PORT, e.port);
      mnl_attr_put_u8(nlh, IPSET_ATTR_PROTO, net::protocol_number(e.protocol));
      if (type == SetType::kHashIpPortIp) {
        if (!e.ip2.valid()) return bad("no second address");
        put_ip(nlh, IPSET_ATTR_IP2, e.ip2);
      } else if (type == SetType::kHashIpPortNet) {
        if (!e.net.address().valid()) return bad("no network");
        put_ip(nlh, IPSET_ATTR_IP2, e.net.address());
        mnl_attr_put_u8(nlh, IPSET_ATTR_CIDR2, static_cast<uint8_t>(e.net.prefix()));
      }
      break;
    case SetType::kHashNet:
      if (!e.net.address().valid()) return bad("no network");
      put_ip(nlh, IPSET_ATTR_IP, e.net.address());
      mnl_attr_put_u8(nlh, IPSET_ATTR_CIDR, static_cast<uint8_t>(e.net.prefix()));
      break;
    case SetType::kBitmapPort:
      put_be16(nlh, IPSET_ATTR_PORT, e.port);
      break;
  }
  mnl_attr_nest_end(nlh, data);
  return Status::Ok();
}

Result<ListChunk> parse_list_reply(const nlmsghdr* nlh, std::optional<SetType> type_hint) {
  const nlattr* tb[IPSET_ATTR_CMD_MAX + 1] = {};
  Table t{tb, IPSET_ATTR_CMD_MAX, cmd_type};
  if (!has_nfgenmsg(nlh) || mnl_attr_parse(nlh, sizeof(nfgenmsg), collect, &t) < 0) {
    return Status::Error("parse ipset list reply: malformed attributes", EPROTO);
  }
  if (!tb[IPSET_ATTR_SETNAME]) return Status::Error("parse ipset list reply: no set name", EPROTO);
  ListChunk c;
  c.name = mnl_attr_get_str(tb[IPSET_ATTR_SETNAME]);
  std::optional<SetType> type = type_hint;
  if (tb[IPSET_ATTR_TYPENAME]) {
    const std::string tname = mnl_attr_get_str(tb[IPSET_ATTR_TYPENAME]);
    type = parse_set_type(tname);
    if (!type) {
      return Status::Error("ipset " + c.name + ": unsupported type " + tname, EOPNOTSUPP);
    }
    SetSpec spec;
    spec.name = c.name;
    spec.type = *type;
    uint8_t fam = tb[IPSET_ATTR_FAMILY] ? mnl_attr_get_u8(tb[IPSET_ATTR_FAMILY]) : 0;
    spec.family = fam == NFPROTO_IPV6 ? 6 : 4;
    if (tb[IPSET_ATTR_REVISION]) c.revision = mnl_attr_get_u8(tb[IPSET_ATTR_REVISION]);
    if (tb[IPSET_ATTR_DATA]) {
      const nlattr* d[IPSET_ATTR_CREATE_MAX + 1] = {};
      if (!parse_nested(tb[IPSET_ATTR_DATA], d, IPSET_ATTR_CREATE_MAX, create_type)) {
        return Status::Error("parse ipset " + c.name + " header: malformed", EPROTO);
      }
      if (d[IPSET_ATTR_HASHSIZE]) spec.hash_size = be32(d[IPSET_ATTR_HASHSIZE]);
      if (d[IPSET_ATTR_MAXELEM]) spec.max_elements = be32(d[IPSET_ATTR_MAXELEM]);
      if (*type == SetType::kBitmapPort) {
        spec.port_from = be16(d[IPSET_ATTR_PORT]);
        spec.port_to = be16(d[IPSET_ATTR_PORT_TO]);
      }
      c.references = be32(d[IPSET_ATTR_REFERENCES]);
      c.elements = be32(d[IPSET_ATTR_ELEMENTS]);
    }
    c.header = spec;
  }
  if (tb[IPSET_ATTR_ADT]) {
    if (!type) return Status::Error("ipset " + c.name + ": entries before the header", EPROTO);
    // mnl_attr_for_each_nested is C (void* arithmetic); walk the nest by hand.
    const nlattr* adt = tb[IPSET_ATTR_ADT];
    const auto* entry = static_cast<const nlattr*>(mnl_attr_get_payload(adt));
    int left = static_cast<int>(mnl_attr_get_payload_len(adt));
    while (mnl_attr_ok(entry, left)) {
      Entry e;
      if (!parse_entry(entry, *type, &e)) {
        return Status::Error("parse ipset " + c.name + ": malformed entry", EPROTO);
      }
      c.entries.push_back(e);
      left -= static_cast<int>(MNL_ALIGN(entry->nla_len));
      entry = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(entry) +
                                              MNL_ALIGN(entry->nla_len));
    }
  }
  return c;
}

Result<TypeRevisions> parse_type_reply(const nlmsghdr* nlh) {
  const nlattr* tb[IPSET_ATTR_CMD_MAX + 1] = {};
  Table t{tb, IPSET_ATTR_CMD_MAX, cmd_type};
  if (!has_nfgenmsg(nlh) || mnl_attr_parse(nlh, sizeof(nfgenmsg), collect, &t) < 0 || !tb[IPSET_ATTR_REVISION]) {
    return Status::Error("parse ipset type reply: no revision", EPROTO);
  }
  TypeRevisions r;
  r.max = mnl_attr_get_u8(tb[IPSET_ATTR_REVISION]);
  r.min = tb[IPSET_ATTR_REVISION_MIN] ? mnl_attr_get_u8(tb[IPSET_ATTR_REVISION_MIN]) : r.max;
  return r;
}

std::string error_text(int code, uint8_t cmd, std::optional<SetType> type) {
  if (code < IPSET_ERR_PRIVATE) {
    if (code == EEXIST && cmd == IPSET_CMD_CREATE) {
      return "Set cannot be created: set with the same name already exists";
    }
    if (code == ENOENT) return "The set with the given name does not exist";
    return std::strerror(code);
  }
  if (code >= IPSET_ERR_TYPE_SPECIFIC && type) {
    if (*type == SetType::kBitmapPort) {
      if (code == IPSET_ERR_BITMAP_RANGE) return "Element is out of the range of the set";
      if (code == IPSET_ERR_BITMAP_RANGE_SIZE) return "The range exceeds the size limit of the set type";
    } else {
      switch (code) {
        case IPSET_ERR_HASH_FULL: return "Hash is full, cannot add more elements";
        case IPSET_ERR_HASH_ELEM: return "Null-valued element, cannot be stored in a hash type of set";
        case IPSET_ERR_INVALID_PROTO: return "Invalid protocol specified";
        case IPSET_ERR_MISSING_PROTO: return "Protocol missing, but must be specified";
        case IPSET_ERR_HASH_RANGE_UNSUPPORTED: return "Range is not supported in the \"net\" component of the element";
        case IPSET_ERR_HASH_RANGE: return "Invalid range, covers the whole address space";
        default: break;
      }
    }
  }
  switch (code) {
    case IPSET_ERR_PROTOCOL: return "Kernel error received: ipset protocol error";
    case IPSET_ERR_FIND_TYPE: return "Kernel error received: set type not supported";
    case IPSET_ERR_MAX_SETS: return "Kernel error received: maximal number of sets reached";
    case IPSET_ERR_BUSY: return "Set cannot be destroyed: it is in use by a kernel component";
    case IPSET_ERR_EXIST:
      if (cmd == IPSET_CMD_DEL) return "Element cannot be deleted from the set: it's not added";
      if (cmd == IPSET_CMD_TEST) return "Element is missing from the set";
      return "Element cannot be added to the set: it's already added";
    case IPSET_ERR_INVALID_CIDR: return "The value of the CIDR parameter of the IP address is invalid";
    case IPSET_ERR_INVALID_FAMILY: return "Protocol family not supported by the set type";
    case IPSET_ERR_REFERENCED: return "Set cannot be destroyed: it is in use by a kernel component";
    case IPSET_ERR_IPADDR_IPV4: return "An IPv4 address is expected, but not received";
    case IPSET_ERR_IPADDR_IPV6: return "An IPv6 address is expected, but not received";
    default: return "ipset error " + std::to_string(code);
  }
}

}  // namespace knode::ipset::codec
