#include "nftables/codec.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "nftables/udata.h"

namespace knode::nftables::codec {
namespace {

void u32(nlmsghdr* nlh, uint16_t type, uint32_t v) { mnl_attr_put_u32(nlh, type, htonl(v)); }
void u64(nlmsghdr* nlh, uint16_t type, uint64_t v) { mnl_attr_put_u64(nlh, type, htobe64(v)); }
void str(nlmsghdr* nlh, uint16_t type, std::string_view s) {
  // A NUL-terminated string attribute, written in place (names need no copy).
  auto* attr = static_cast<nlattr*>(mnl_nlmsg_get_payload_tail(nlh));
  const size_t len = MNL_ATTR_HDRLEN + s.size() + 1;
  attr->nla_type = type;
  attr->nla_len = static_cast<uint16_t>(len);
  auto* payload = static_cast<char*>(mnl_attr_get_payload(attr));
  std::memcpy(payload, s.data(), s.size());
  std::memset(payload + s.size(), 0, MNL_ALIGN(len) - len + 1);
  nlh->nlmsg_len += static_cast<uint32_t>(MNL_ALIGN(len));
}
void bytes(nlmsghdr* nlh, uint16_t type, std::string_view b) {
  mnl_attr_put(nlh, type, b.size(), b.data());
}

void put_value(nlmsghdr* nlh, uint16_t type, std::string_view b) {
  nlattr* nest = mnl_attr_nest_start(nlh, type);
  bytes(nlh, NFTA_DATA_VALUE, b);
  mnl_attr_nest_end(nlh, nest);
}

void put_verdict(nlmsghdr* nlh, uint16_t type, const Verdict& v) {
  nlattr* data = mnl_attr_nest_start(nlh, type);
  nlattr* verdict = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
  u32(nlh, NFTA_VERDICT_CODE, static_cast<uint32_t>(static_cast<int32_t>(v.code)));
  if (!v.chain.empty()) str(nlh, NFTA_VERDICT_CHAIN, v.chain);
  mnl_attr_nest_end(nlh, verdict);
  mnl_attr_nest_end(nlh, data);
}

struct ExprWriter {
  nlmsghdr* nlh;
  std::span<const AnonymousRef> anonymous;
  size_t next_anonymous = 0;

  void operator()(const Payload& e) {
    u32(nlh, NFTA_PAYLOAD_DREG, e.dreg);
    u32(nlh, NFTA_PAYLOAD_BASE, e.base);
    u32(nlh, NFTA_PAYLOAD_OFFSET, e.offset);
    u32(nlh, NFTA_PAYLOAD_LEN, e.len);
  }
  void operator()(const Meta& e) {
    u32(nlh, NFTA_META_KEY, e.key);
    if (e.sreg != 0) {
      u32(nlh, NFTA_META_SREG, e.sreg);
    } else {
      u32(nlh, NFTA_META_DREG, e.dreg);
    }
  }
  void operator()(const Cmp& e) {
    u32(nlh, NFTA_CMP_SREG, e.sreg);
    u32(nlh, NFTA_CMP_OP, e.op);
    put_value(nlh, NFTA_CMP_DATA, e.data);
  }
  void operator()(const Bitwise& e) {
    u32(nlh, NFTA_BITWISE_SREG, e.sreg);
    u32(nlh, NFTA_BITWISE_DREG, e.dreg);
    u32(nlh, NFTA_BITWISE_LEN, e.len);
    put_value(nlh, NFTA_BITWISE_MASK, e.mask);
    put_value(nlh, NFTA_BITWISE_XOR, e.xor_);
  }
  void operator()(const Ct& e) {
    u32(nlh, NFTA_CT_KEY, e.key);
    u32(nlh, NFTA_CT_DREG, e.dreg);
  }
  void operator()(const Fib& e) {
    u32(nlh, NFTA_FIB_DREG, e.dreg);
    u32(nlh, NFTA_FIB_RESULT, e.result);
    u32(nlh, NFTA_FIB_FLAGS, e.flags);
  }
  void operator()(const Numgen& e) {
    u32(nlh, NFTA_NG_DREG, e.dreg);
    u32(nlh, NFTA_NG_MODULUS, e.modulus);
    u32(nlh, NFTA_NG_TYPE, e.type);
    u32(nlh, NFTA_NG_OFFSET, e.offset);
  }
  void operator()(const Immediate& e) {
    u32(nlh, NFTA_IMMEDIATE_DREG, e.dreg);
    if (e.dreg == reg::kVerdict) {
      put_verdict(nlh, NFTA_IMMEDIATE_DATA, e.verdict);
    } else {
      put_value(nlh, NFTA_IMMEDIATE_DATA, e.data);
    }
  }
  void operator()(const Lookup& e) {
    if (e.anonymous) {
      const AnonymousRef& ref = anonymous[next_anonymous++];
      str(nlh, NFTA_LOOKUP_SET, ref.name);
      u32(nlh, NFTA_LOOKUP_SET_ID, ref.id);
    } else {
      str(nlh, NFTA_LOOKUP_SET, e.set);
    }
    u32(nlh, NFTA_LOOKUP_SREG, e.sreg);
    if (e.dreg) u32(nlh, NFTA_LOOKUP_DREG, *e.dreg);
    if (e.invert) u32(nlh, NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
  }
  void operator()(const Dynset& e) {
    str(nlh, NFTA_DYNSET_SET_NAME, e.set);
    u32(nlh, NFTA_DYNSET_OP, e.op);
    u32(nlh, NFTA_DYNSET_SREG_KEY, e.sreg_key);
    if (e.timeout_ms != 0) u64(nlh, NFTA_DYNSET_TIMEOUT, e.timeout_ms);
  }
  void operator()(const Nat& e) {
    u32(nlh, NFTA_NAT_TYPE, e.type);
    u32(nlh, NFTA_NAT_FAMILY, e.family);
    if (e.reg_addr_min) u32(nlh, NFTA_NAT_REG_ADDR_MIN, e.reg_addr_min);
    if (e.reg_addr_max) u32(nlh, NFTA_NAT_REG_ADDR_MAX, e.reg_addr_max);
    if (e.reg_proto_min) u32(nlh, NFTA_NAT_REG_PROTO_MIN, e.reg_proto_min);
    if (e.reg_proto_max) u32(nlh, NFTA_NAT_REG_PROTO_MAX, e.reg_proto_max);
    if (e.flags) u32(nlh, NFTA_NAT_FLAGS, e.flags);
  }
  void operator()(const Masq& e) {
    if (e.flags) u32(nlh, NFTA_MASQ_FLAGS, e.flags);
  }
  void operator()(const Reject& e) {
    u32(nlh, NFTA_REJECT_TYPE, e.type);
    mnl_attr_put_u8(nlh, NFTA_REJECT_ICMP_CODE, e.code);
  }
  void operator()(const Counter& e) {
    u64(nlh, NFTA_COUNTER_BYTES, e.bytes);
    u64(nlh, NFTA_COUNTER_PACKETS, e.packets);
  }
  void operator()(const Byteorder& e) {
    u32(nlh, NFTA_BYTEORDER_SREG, e.sreg);
    u32(nlh, NFTA_BYTEORDER_DREG, e.dreg);
    u32(nlh, NFTA_BYTEORDER_OP, e.op);
    u32(nlh, NFTA_BYTEORDER_LEN, e.len);
    u32(nlh, NFTA_BYTEORDER_SIZE, e.size);
  }
};

const char* expr_name(const Expr& e) {
  static constexpr const char* kNames[] = {"payload", "meta", "cmp",    "bitwise", "ct",   "fib",    "numgen",
                                           "immediate", "lookup", "dynset", "nat",    "masq", "reject", "counter", "byteorder"};
  static_assert(std::size(kNames) == std::variant_size_v<Expr>);
  return kNames[e.index()];
}

// ---------------------------------------------------------------- canonical form

struct Canon {
  Bytes& out;
  void tag(uint8_t t) { out.push_back(static_cast<char>(t)); }
  void n(uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void s(std::string_view v) {
    n(v.size());
    out.append(v);
  }
  void verdict(const Verdict& v) {
    n(static_cast<uint32_t>(static_cast<int32_t>(v.code)));
    s(v.chain);
  }
  void spec(const SetSpec& x) {
    n(x.flags);
    n(x.key_type);
    n(x.key_len);
    n(x.data_type);
    n(x.data_len);
    n(x.timeout_ms);
    n(x.size);
    s(udata::set_note(x.userdata));
  }
  void element(const Element& e) {
    s(e.key);
    n(e.flags);
    value(e);
  }
  void value(const Element& e) {
    n(e.verdict ? 1 : 0);
    if (e.verdict) verdict(*e.verdict);
    s(e.data);
    s(e.comment);
    n(e.udata_flags);
  }

  void operator()(const Payload& e) { tag(1), n(e.base), n(e.offset), n(e.len), n(e.dreg); }
  void operator()(const Meta& e) { tag(2), n(e.key), n(e.dreg), n(e.sreg); }
  void operator()(const Cmp& e) { tag(3), n(e.sreg), n(e.op), s(e.data); }
  void operator()(const Bitwise& e) { tag(4), n(e.sreg), n(e.dreg), n(e.len), s(e.mask), s(e.xor_); }
  void operator()(const Ct& e) { tag(5), n(e.key), n(e.dreg); }
  void operator()(const Fib& e) { tag(6), n(e.flags), n(e.result), n(e.dreg); }
  void operator()(const Numgen& e) { tag(7), n(e.dreg), n(e.modulus), n(e.type), n(e.offset); }
  void operator()(const Immediate& e) {
    tag(8), n(e.dreg);
    if (e.dreg == reg::kVerdict) {
      verdict(e.verdict);
    } else {
      s(e.data);
    }
  }
  void operator()(const Lookup& e) {
    tag(9), n(e.sreg), n(e.dreg ? *e.dreg + 1 : 0), n(e.invert);
    if (!e.anonymous) {
      s(e.set);
      return;
    }
    s("");
    spec(e.anonymous->spec);
    // Order-free: the elements sorted by their own canonical bytes.
    std::vector<Bytes> elems;
    elems.reserve(e.anonymous->elements.size());
    for (const auto& el : e.anonymous->elements) {
      Bytes b;
      Canon{b}.element(el);
      elems.push_back(std::move(b));
    }
    std::sort(elems.begin(), elems.end());
    n(elems.size());
    for (const auto& b : elems) s(b);
  }
  void operator()(const Dynset& e) { tag(10), n(e.op), n(e.sreg_key), s(e.set), n(e.timeout_ms); }
  void operator()(const Nat& e) {
    tag(11), n(e.type), n(e.family), n(e.reg_addr_min), n(e.reg_addr_max), n(e.reg_proto_min), n(e.reg_proto_max),
        n(e.flags);
  }
  void operator()(const Masq& e) { tag(12), n(e.flags); }
  void operator()(const Reject& e) { tag(13), n(e.type), n(e.code); }
  void operator()(const Counter&) { tag(14); }
  void operator()(const Byteorder& e) { tag(15), n(e.sreg), n(e.dreg), n(e.op), n(e.len), n(e.size); }
};

}  // namespace

void put_table(nlmsghdr* nlh, const Table& t) {
  str(nlh, NFTA_TABLE_NAME, t.name);
  u32(nlh, NFTA_TABLE_FLAGS, t.flags);
  Bytes note = udata::comment_note(t.comment);
  if (!note.empty()) bytes(nlh, NFTA_TABLE_USERDATA, note);
}

void put_chain(nlmsghdr* nlh, const std::string& table, const Chain& c) {
  str(nlh, NFTA_CHAIN_TABLE, table);
  str(nlh, NFTA_CHAIN_NAME, c.name);
  if (c.base) {
    nlattr* hook = mnl_attr_nest_start(nlh, NFTA_CHAIN_HOOK);
    u32(nlh, NFTA_HOOK_HOOKNUM, c.base->hook);
    u32(nlh, NFTA_HOOK_PRIORITY, static_cast<uint32_t>(c.base->priority));
    mnl_attr_nest_end(nlh, hook);
    u32(nlh, NFTA_CHAIN_POLICY, c.base->policy);
    str(nlh, NFTA_CHAIN_TYPE, c.base->type);
  }
  Bytes note = udata::comment_note(c.comment);
  if (!note.empty()) bytes(nlh, NFTA_CHAIN_USERDATA, note);
}

void put_rule(nlmsghdr* nlh, const std::string& table, std::string_view chain, const Rule& r,
              std::span<const AnonymousRef> anonymous) {
  str(nlh, NFTA_RULE_TABLE, table);
  str(nlh, NFTA_RULE_CHAIN, chain);
  nlattr* list = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
  ExprWriter w{nlh, anonymous};
  for (const auto& e : r.exprs) {
    nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
    str(nlh, NFTA_EXPR_NAME, expr_name(e));
    nlattr* data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
    std::visit(w, e);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, elem);
  }
  mnl_attr_nest_end(nlh, list);
  Bytes note = udata::comment_note(r.comment);
  if (!note.empty()) bytes(nlh, NFTA_RULE_USERDATA, note);
}

void put_set(nlmsghdr* nlh, const std::string& table, const SetSpec& s, const AnonymousRef* anonymous, uint32_t id) {
  str(nlh, NFTA_SET_TABLE, table);
  str(nlh, NFTA_SET_NAME, anonymous ? anonymous->name : s.name);
  u32(nlh, NFTA_SET_FLAGS, s.flags);
  u32(nlh, NFTA_SET_KEY_TYPE, s.key_type);
  u32(nlh, NFTA_SET_KEY_LEN, s.key_len);
  if (s.is_map()) {
    u32(nlh, NFTA_SET_DATA_TYPE, s.data_type);
    u32(nlh, NFTA_SET_DATA_LEN, s.data_len);
  }
  u32(nlh, NFTA_SET_ID, id);
  if (s.timeout_ms != 0) u64(nlh, NFTA_SET_TIMEOUT, s.timeout_ms);
  if (s.size != 0) {
    nlattr* desc = mnl_attr_nest_start(nlh, NFTA_SET_DESC);
    u32(nlh, NFTA_SET_DESC_SIZE, s.size);
    mnl_attr_nest_end(nlh, desc);
  }
  Bytes note = udata::set_note(s.userdata);
  if (!note.empty()) bytes(nlh, NFTA_SET_USERDATA, note);
}

size_t put_elements(nlmsghdr* nlh, const std::string& table, std::string_view set, const AnonymousRef* anonymous,
                    std::span<const Element> elements, size_t room) {
  str(nlh, NFTA_SET_ELEM_LIST_TABLE, table);
  str(nlh, NFTA_SET_ELEM_LIST_SET, anonymous ? std::string_view(anonymous->name) : set);
  if (anonymous) u32(nlh, NFTA_SET_ELEM_LIST_SET_ID, anonymous->id);
  nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
  size_t n = 0;
  for (const auto& e : elements) {
    // A nest's length is 16 bits: stop well before, and before the message fills.
    size_t need = 64 + e.key.size() + e.data.size() + e.comment.size() + (e.verdict ? e.verdict->chain.size() : 0);
    size_t used = nlh->nlmsg_len;
    size_t in_list = used - static_cast<size_t>(reinterpret_cast<char*>(list) - reinterpret_cast<char*>(nlh));
    if (n > 0 && (used + need > room || in_list + need > 60000)) break;
    nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
    put_value(nlh, NFTA_SET_ELEM_KEY, e.key);
    if (e.flags) u32(nlh, NFTA_SET_ELEM_FLAGS, e.flags);
    if (e.verdict) {
      put_verdict(nlh, NFTA_SET_ELEM_DATA, *e.verdict);
    } else if (!e.data.empty()) {
      put_value(nlh, NFTA_SET_ELEM_DATA, e.data);
    }
    Bytes note = udata::element_note(e);
    if (!note.empty()) bytes(nlh, NFTA_SET_ELEM_USERDATA, note);
    mnl_attr_nest_end(nlh, elem);
    ++n;
  }
  mnl_attr_nest_end(nlh, list);
  return n;
}

void canonical(Bytes& out, const Rule& r) {
  Canon c{out};
  c.n(r.exprs.size());
  for (const auto& e : r.exprs) std::visit(c, e);
  c.s(r.comment);
}

void canonical(Bytes& out, const Chain& ch) {
  Canon c{out};
  c.s(ch.name);
  c.n(ch.base ? 1 : 0);
  if (ch.base) {
    c.s(ch.base->type);
    c.n(ch.base->hook);
    c.n(static_cast<uint32_t>(ch.base->priority));
    c.n(ch.base->policy);
  }
  c.s(ch.comment);
}

void canonical(Bytes& out, const SetSpec& s) {
  Canon c{out};
  c.s(s.name);
  c.spec(s);
}

void canonical_value(Bytes& out, const Element& e) { Canon{out}.value(e); }

uint64_t digest(std::string_view b) { return std::hash<std::string_view>{}(b); }

}  // namespace knode::nftables::codec
