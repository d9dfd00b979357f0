#include "nftables/decode.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <cstring>
#include <memory>

#include "nftables/udata.h"

namespace knode::nftables::decode {
namespace {

template <typename T, void (*Free)(const T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using TablePtr = std::unique_ptr<nftnl_table, Deleter<nftnl_table, nftnl_table_free>>;
using ChainPtr = std::unique_ptr<nftnl_chain, Deleter<nftnl_chain, nftnl_chain_free>>;
using SetPtr = std::unique_ptr<nftnl_set, Deleter<nftnl_set, nftnl_set_free>>;
using RulePtr = std::unique_ptr<nftnl_rule, Deleter<nftnl_rule, nftnl_rule_free>>;

std::string_view data_of(const void* p, uint32_t len) { return {static_cast<const char*>(p), len}; }

uint32_t u32(const nftnl_expr* e, uint16_t attr) {
  return nftnl_expr_is_set(e, attr) ? nftnl_expr_get_u32(e, attr) : 0;
}

Bytes bytes(const nftnl_expr* e, uint16_t attr) {
  if (!nftnl_expr_is_set(e, attr)) return {};
  uint32_t len = 0;
  const void* p = nftnl_expr_get(e, attr, &len);
  return Bytes(data_of(p, len));
}

Verdict verdict_of(int32_t code, const char* chain) {
  Verdict v;
  v.code = static_cast<Verdict::Code>(code);
  if (chain) v.chain = chain;
  return v;
}

bool expr(const nftnl_expr* e, Expr* out) {
  std::string_view name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
  if (name == "payload") {
    *out = Payload{u32(e, NFTNL_EXPR_PAYLOAD_BASE), u32(e, NFTNL_EXPR_PAYLOAD_OFFSET), u32(e, NFTNL_EXPR_PAYLOAD_LEN),
                   u32(e, NFTNL_EXPR_PAYLOAD_DREG)};
  } else if (name == "meta") {
    *out = Meta{u32(e, NFTNL_EXPR_META_KEY), u32(e, NFTNL_EXPR_META_DREG), u32(e, NFTNL_EXPR_META_SREG)};
  } else if (name == "cmp") {
    *out = Cmp{u32(e, NFTNL_EXPR_CMP_SREG), u32(e, NFTNL_EXPR_CMP_OP), bytes(e, NFTNL_EXPR_CMP_DATA)};
  } else if (name == "bitwise") {
    *out = Bitwise{u32(e, NFTNL_EXPR_BITWISE_SREG), u32(e, NFTNL_EXPR_BITWISE_DREG), u32(e, NFTNL_EXPR_BITWISE_LEN),
                   bytes(e, NFTNL_EXPR_BITWISE_MASK), bytes(e, NFTNL_EXPR_BITWISE_XOR)};
  } else if (name == "ct") {
    *out = Ct{u32(e, NFTNL_EXPR_CT_KEY), u32(e, NFTNL_EXPR_CT_DREG)};
  } else if (name == "fib") {
    *out = Fib{u32(e, NFTNL_EXPR_FIB_FLAGS), u32(e, NFTNL_EXPR_FIB_RESULT), u32(e, NFTNL_EXPR_FIB_DREG)};
  } else if (name == "numgen") {
    *out = Numgen{u32(e, NFTNL_EXPR_NG_DREG), u32(e, NFTNL_EXPR_NG_MODULUS), u32(e, NFTNL_EXPR_NG_TYPE),
                  u32(e, NFTNL_EXPR_NG_OFFSET)};
  } else if (name == "immediate") {
    Immediate i;
    i.dreg = u32(e, NFTNL_EXPR_IMM_DREG);
    if (i.dreg == reg::kVerdict) {
      const char* chain = nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN) ? nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN)
                                                                      : nullptr;
      i.verdict = verdict_of(static_cast<int32_t>(u32(e, NFTNL_EXPR_IMM_VERDICT)), chain);
    } else {
      i.data = bytes(e, NFTNL_EXPR_IMM_DATA);
    }
    *out = std::move(i);
  } else if (name == "lookup") {
    Lookup l;
    l.sreg = u32(e, NFTNL_EXPR_LOOKUP_SREG);
    if (nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_DREG)) l.dreg = u32(e, NFTNL_EXPR_LOOKUP_DREG);
    l.invert = (u32(e, NFTNL_EXPR_LOOKUP_FLAGS) & NFT_LOOKUP_F_INV) != 0;
    l.set = nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET);
    *out = std::move(l);
  } else if (name == "dynset") {
    Dynset d;
    d.op = u32(e, NFTNL_EXPR_DYNSET_OP);
    d.sreg_key = u32(e, NFTNL_EXPR_DYNSET_SREG_KEY);
    d.set = nftnl_expr_get_str(e, NFTNL_EXPR_DYNSET_SET_NAME);
    if (nftnl_expr_is_set(e, NFTNL_EXPR_DYNSET_TIMEOUT)) d.timeout_ms = nftnl_expr_get_u64(e, NFTNL_EXPR_DYNSET_TIMEOUT);
    *out = std::move(d);
  } else if (name == "nat") {
    *out = Nat{u32(e, NFTNL_EXPR_NAT_TYPE),          u32(e, NFTNL_EXPR_NAT_FAMILY),
               u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN),  u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX),
               u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN), u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX),
               u32(e, NFTNL_EXPR_NAT_FLAGS)};
  } else if (name == "masq") {
    *out = Masq{u32(e, NFTNL_EXPR_MASQ_FLAGS)};
  } else if (name == "reject") {
    Reject r;
    r.type = u32(e, NFTNL_EXPR_REJECT_TYPE);
    r.code = nftnl_expr_is_set(e, NFTNL_EXPR_REJECT_CODE) ? nftnl_expr_get_u8(e, NFTNL_EXPR_REJECT_CODE) : 0;
    *out = r;
  } else if (name == "counter") {
    Counter c;
    if (nftnl_expr_is_set(e, NFTNL_EXPR_CTR_PACKETS)) c.packets = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
    if (nftnl_expr_is_set(e, NFTNL_EXPR_CTR_BYTES)) c.bytes = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
    *out = c;
  } else {
    return false;  // an expression knode does not write
  }
  return true;
}

struct RuleWalk {
  Rule* rule;
  bool ok = true;
};

int on_expr(nftnl_expr* e, void* data) {
  auto* w = static_cast<RuleWalk*>(data);
  Expr x;
  if (!expr(e, &x)) {
    w->ok = false;
    return -1;
  }
  w->rule->exprs.push_back(std::move(x));
  return 0;
}

}  // namespace

bool table(const nlmsghdr* nlh, Table* out) {
  TablePtr t(nftnl_table_alloc());
  if (!t || nftnl_table_nlmsg_parse(nlh, t.get()) < 0) return false;
  out->name = nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME);
  out->family = static_cast<Family>(nftnl_table_get_u32(t.get(), NFTNL_TABLE_FAMILY));
  out->flags = nftnl_table_get_u32(t.get(), NFTNL_TABLE_FLAGS);
  if (nftnl_table_is_set(t.get(), NFTNL_TABLE_USERDATA)) {
    uint32_t len = 0;
    const void* p = nftnl_table_get_data(t.get(), NFTNL_TABLE_USERDATA, &len);
    out->comment = udata::comment_of(data_of(p, len));
  }
  return true;
}

bool chain(const nlmsghdr* nlh, std::string* table, Chain* out) {
  ChainPtr c(nftnl_chain_alloc());
  if (!c || nftnl_chain_nlmsg_parse(nlh, c.get()) < 0) return false;
  *table = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE);
  out->name = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME);
  if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HANDLE)) out->handle = nftnl_chain_get_u64(c.get(), NFTNL_CHAIN_HANDLE);
  if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM)) {
    BaseChain b;
    b.hook = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM);
    b.priority = nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO);
    if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_TYPE)) b.type = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TYPE);
    if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_POLICY)) b.policy = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_POLICY);
    out->base = b;
  }
  if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_USERDATA)) {
    uint32_t len = 0;
    const void* p = nftnl_chain_get_data(c.get(), NFTNL_CHAIN_USERDATA, &len);
    out->comment = udata::comment_of(data_of(p, len));
  }
  return true;
}

bool set(const nlmsghdr* nlh, std::string* table, SetSpec* out) {
  SetPtr s(nftnl_set_alloc());
  if (!s || nftnl_set_nlmsg_parse(nlh, s.get()) < 0) return false;
  auto u32_or0 = [&](uint16_t attr) { return nftnl_set_is_set(s.get(), attr) ? nftnl_set_get_u32(s.get(), attr) : 0; };
  *table = nftnl_set_get_str(s.get(), NFTNL_SET_TABLE);
  out->name = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
  out->flags = u32_or0(NFTNL_SET_FLAGS);
  out->key_type = u32_or0(NFTNL_SET_KEY_TYPE);
  out->key_len = u32_or0(NFTNL_SET_KEY_LEN);
  out->data_type = u32_or0(NFTNL_SET_DATA_TYPE);
  out->data_len = u32_or0(NFTNL_SET_DATA_LEN);
  out->size = u32_or0(NFTNL_SET_DESC_SIZE);
  if (nftnl_set_is_set(s.get(), NFTNL_SET_TIMEOUT)) out->timeout_ms = nftnl_set_get_u64(s.get(), NFTNL_SET_TIMEOUT);
  if (nftnl_set_is_set(s.get(), NFTNL_SET_USERDATA)) {
    uint32_t len = 0;
    const void* p = nftnl_set_get_data(s.get(), NFTNL_SET_USERDATA, &len);
    out->userdata = udata::parse_set_note(data_of(p, len));
  }
  return true;
}

bool elements(const nlmsghdr* nlh, std::string* set_name, std::vector<Element>* out) {
  SetPtr s(nftnl_set_alloc());
  if (!s || nftnl_set_elems_nlmsg_parse(nlh, s.get()) < 0) return false;
  if (nftnl_set_is_set(s.get(), NFTNL_SET_NAME)) *set_name = nftnl_set_get_str(s.get(), NFTNL_SET_NAME);
  struct Walk {
    std::vector<Element>* out;
  } walk{out};
  nftnl_set_elem_foreach(
      s.get(),
      [](nftnl_set_elem* e, void* data) {
        Element el;
        uint32_t len = 0;
        if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_KEY)) {
          const void* p = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
          el.key = Bytes(data_of(p, len));
        }
        if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS)) el.flags = nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS);
        if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT)) {
          const char* chain = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN)
                                  ? nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN)
                                  : nullptr;
          el.verdict = verdict_of(static_cast<int32_t>(nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT)), chain);
        } else if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA)) {
          const void* p = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &len);
          el.data = Bytes(data_of(p, len));
        }
        if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_USERDATA)) {
          const void* p = nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &len);
          udata::parse_element_note(data_of(p, len), &el);
        }
        static_cast<Walk*>(data)->out->push_back(std::move(el));
        return 0;
      },
      &walk);
  return true;
}

bool rule(const nlmsghdr* nlh, std::string* table, std::string* chain, Rule* out) {
  RulePtr r(nftnl_rule_alloc());
  if (!r || nftnl_rule_nlmsg_parse(nlh, r.get()) < 0) return false;
  *table = nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE);
  *chain = nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN);
  if (nftnl_rule_is_set(r.get(), NFTNL_RULE_HANDLE)) out->handle = nftnl_rule_get_u64(r.get(), NFTNL_RULE_HANDLE);
  if (nftnl_rule_is_set(r.get(), NFTNL_RULE_USERDATA)) {
    uint32_t len = 0;
    const void* p = nftnl_rule_get_data(r.get(), NFTNL_RULE_USERDATA, &len);
    out->comment = udata::comment_of(data_of(p, len));
  }
  RuleWalk w{out};
  nftnl_expr_foreach(r.get(), on_expr, &w);
  return w.ok;
}

uint32_t generation(const nlmsghdr* nlh) {
  uint32_t gen = 0;
  mnl_attr_parse(
      nlh, sizeof(nfgenmsg),
      [](const nlattr* a, void* data) {
        if (mnl_attr_get_type(a) == NFTA_GEN_ID && mnl_attr_get_payload_len(a) == 4) {
          *static_cast<uint32_t*>(data) = ntohl(mnl_attr_get_u32(a));
        }
        return int(MNL_CB_OK);
      },
      &gen);
  return gen;
}

}  // namespace knode::nftables::decode
