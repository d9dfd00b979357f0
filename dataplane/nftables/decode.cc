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
#include <span>
#include <string_view>

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

// A string attribute libnftnl gives back, or false when the message had none (its
// getters return nullptr then, which std::string would not survive).
bool str(const char* p, std::string* out) {
  if (p == nullptr) return false;
  *out = p;
  return true;
}

// --- checking a message before libnftnl parses it ---
//
// libnftnl's nlmsg parsers check each attribute's length against its type with
// mnl_attr_validate and, when one does not match, print "nf_tables kernel ABI is broken"
// and call exit(1) (abi_breakage()): a malformed reply would end the daemon. So every
// attribute those parsers validate (libnftnl 1.2.x: tables, chains, sets, set elements,
// rules, and the data of each expression knode maps) is checked here first, with the
// same libmnl type, and a message that fails is refused by us. Strings are held to a NUL
// inside the attribute (libnftnl only wants them non-empty, then strdup()s them); the
// kernel always sends them so.
struct Check {
  enum Inner : uint8_t {
    kNone,
    kAttrs,      // a nest of `attrs`
    kList,       // a nest of NFTA_LIST_ELEM, each a nest of `attrs`
    kExpr,       // one expression: NFTA_EXPR_NAME, NFTA_EXPR_DATA as that expression's
    kExprs,      // a nest of NFTA_LIST_ELEM expressions
    kRuleExprs,  // kExprs, refusing expressions knode does not map (decode::rule would)
    kStrings,    // a nest of NUL-terminated strings (NFTA_HOOK_DEVS)
    kVerdict,    // NFTA_DATA_VERDICT: a nest of `attrs`, holding what libnftnl reads unchecked
    kRefused,    // an attribute libnftnl must not be given at all
  };
  uint16_t type;
  mnl_attr_data_type kind;
  Inner inner = kNone;
  std::span<const Check> attrs = {};
};
using Checks = std::span<const Check>;

constexpr Check kVerdictChecks[] = {{NFTA_VERDICT_CODE, MNL_TYPE_U32},
                                    {NFTA_VERDICT_CHAIN, MNL_TYPE_NUL_STRING},
                                    {NFTA_VERDICT_CHAIN_ID, MNL_TYPE_U32}};
constexpr Check kDataChecks[] = {{NFTA_DATA_VALUE, MNL_TYPE_BINARY},
                                 {NFTA_DATA_VERDICT, MNL_TYPE_NESTED, Check::kVerdict, kVerdictChecks}};

constexpr Check kPayloadChecks[] = {
    {NFTA_PAYLOAD_DREG, MNL_TYPE_U32},        {NFTA_PAYLOAD_BASE, MNL_TYPE_U32},
    {NFTA_PAYLOAD_OFFSET, MNL_TYPE_U32},      {NFTA_PAYLOAD_LEN, MNL_TYPE_U32},
    {NFTA_PAYLOAD_SREG, MNL_TYPE_U32},        {NFTA_PAYLOAD_CSUM_TYPE, MNL_TYPE_U32},
    {NFTA_PAYLOAD_CSUM_OFFSET, MNL_TYPE_U32}, {NFTA_PAYLOAD_CSUM_FLAGS, MNL_TYPE_U32}};
constexpr Check kMetaChecks[] = {
    {NFTA_META_KEY, MNL_TYPE_U32}, {NFTA_META_DREG, MNL_TYPE_U32}, {NFTA_META_SREG, MNL_TYPE_U32}};
constexpr Check kCmpChecks[] = {{NFTA_CMP_SREG, MNL_TYPE_U32},
                                {NFTA_CMP_OP, MNL_TYPE_U32},
                                {NFTA_CMP_DATA, MNL_TYPE_NESTED, Check::kAttrs, kDataChecks}};
constexpr Check kBitwiseChecks[] = {{NFTA_BITWISE_SREG, MNL_TYPE_U32},
                                    {NFTA_BITWISE_DREG, MNL_TYPE_U32},
                                    {NFTA_BITWISE_OP, MNL_TYPE_U32},
                                    {NFTA_BITWISE_LEN, MNL_TYPE_U32},
                                    {NFTA_BITWISE_MASK, MNL_TYPE_NESTED, Check::kAttrs, kDataChecks},
                                    {NFTA_BITWISE_XOR, MNL_TYPE_NESTED, Check::kAttrs, kDataChecks},
                                    {NFTA_BITWISE_DATA, MNL_TYPE_NESTED, Check::kAttrs, kDataChecks}};
constexpr Check kCtChecks[] = {{NFTA_CT_KEY, MNL_TYPE_U32},
                               {NFTA_CT_DREG, MNL_TYPE_U32},
                               {NFTA_CT_SREG, MNL_TYPE_U32},
                               {NFTA_CT_DIRECTION, MNL_TYPE_U8}};
constexpr Check kFibChecks[] = {
    {NFTA_FIB_RESULT, MNL_TYPE_U32}, {NFTA_FIB_DREG, MNL_TYPE_U32}, {NFTA_FIB_FLAGS, MNL_TYPE_U32}};
constexpr Check kNumgenChecks[] = {{NFTA_NG_DREG, MNL_TYPE_U32},
                                   {NFTA_NG_MODULUS, MNL_TYPE_U32},
                                   {NFTA_NG_TYPE, MNL_TYPE_U32},
                                   {NFTA_NG_OFFSET, MNL_TYPE_U32}};
constexpr Check kImmediateChecks[] = {{NFTA_IMMEDIATE_DREG, MNL_TYPE_U32},
                                      {NFTA_IMMEDIATE_DATA, MNL_TYPE_NESTED, Check::kAttrs, kDataChecks}};
constexpr Check kLookupChecks[] = {{NFTA_LOOKUP_SREG, MNL_TYPE_U32},
                                   {NFTA_LOOKUP_DREG, MNL_TYPE_U32},
                                   {NFTA_LOOKUP_SET_ID, MNL_TYPE_U32},
                                   {NFTA_LOOKUP_FLAGS, MNL_TYPE_U32},
                                   {NFTA_LOOKUP_SET, MNL_TYPE_NUL_STRING}};
constexpr Check kDynsetChecks[] = {{NFTA_DYNSET_SREG_KEY, MNL_TYPE_U32},
                                   {NFTA_DYNSET_SREG_DATA, MNL_TYPE_U32},
                                   {NFTA_DYNSET_SET_ID, MNL_TYPE_U32},
                                   {NFTA_DYNSET_OP, MNL_TYPE_U32},
                                   {NFTA_DYNSET_FLAGS, MNL_TYPE_U32},
                                   {NFTA_DYNSET_TIMEOUT, MNL_TYPE_U64},
                                   {NFTA_DYNSET_SET_NAME, MNL_TYPE_NUL_STRING},
                                   {NFTA_DYNSET_EXPR, MNL_TYPE_NESTED, Check::kExpr},
                                   {NFTA_DYNSET_EXPRESSIONS, MNL_TYPE_NESTED, Check::kExprs}};
constexpr Check kNatChecks[] = {
    {NFTA_NAT_TYPE, MNL_TYPE_U32},          {NFTA_NAT_FAMILY, MNL_TYPE_U32},
    {NFTA_NAT_REG_ADDR_MIN, MNL_TYPE_U32},  {NFTA_NAT_REG_ADDR_MAX, MNL_TYPE_U32},
    {NFTA_NAT_REG_PROTO_MIN, MNL_TYPE_U32}, {NFTA_NAT_REG_PROTO_MAX, MNL_TYPE_U32},
    {NFTA_NAT_FLAGS, MNL_TYPE_U32}};
constexpr Check kMasqChecks[] = {{NFTA_MASQ_FLAGS, MNL_TYPE_U32},
                                 {NFTA_MASQ_REG_PROTO_MIN, MNL_TYPE_U32},
                                 {NFTA_MASQ_REG_PROTO_MAX, MNL_TYPE_U32}};
constexpr Check kRejectChecks[] = {{NFTA_REJECT_TYPE, MNL_TYPE_U32}, {NFTA_REJECT_ICMP_CODE, MNL_TYPE_U8}};
constexpr Check kCounterChecks[] = {{NFTA_COUNTER_BYTES, MNL_TYPE_U64}, {NFTA_COUNTER_PACKETS, MNL_TYPE_U64}};
constexpr Check kByteorderChecks[] = {{NFTA_BYTEORDER_SREG, MNL_TYPE_U32},
                                      {NFTA_BYTEORDER_DREG, MNL_TYPE_U32},
                                      {NFTA_BYTEORDER_OP, MNL_TYPE_U32},
                                      {NFTA_BYTEORDER_LEN, MNL_TYPE_U32},
                                      {NFTA_BYTEORDER_SIZE, MNL_TYPE_U32}};

// The data checks of an expression knode maps (expr() below), or false for any other.
bool expr_checks(std::string_view name, Checks* out) {
  static constexpr struct {
    std::string_view name;
    Checks checks;
  } kExprs[] = {{"payload", kPayloadChecks}, {"meta", kMetaChecks},           {"cmp", kCmpChecks},
                {"bitwise", kBitwiseChecks}, {"ct", kCtChecks},               {"fib", kFibChecks},
                {"numgen", kNumgenChecks},   {"immediate", kImmediateChecks}, {"lookup", kLookupChecks},
                {"dynset", kDynsetChecks},   {"nat", kNatChecks},             {"masq", kMasqChecks},
                {"reject", kRejectChecks},   {"counter", kCounterChecks},         {"byteorder", kByteorderChecks}};
  for (const auto& e : kExprs) {
    if (e.name == name) {
      *out = e.checks;
      return true;
    }
  }
  return false;
}

constexpr Check kTableChecks[] = {{NFTA_TABLE_NAME, MNL_TYPE_NUL_STRING}, {NFTA_TABLE_HANDLE, MNL_TYPE_U64},
                                  {NFTA_TABLE_FLAGS, MNL_TYPE_U32},       {NFTA_TABLE_USE, MNL_TYPE_U32},
                                  {NFTA_TABLE_USERDATA, MNL_TYPE_BINARY}, {NFTA_TABLE_OWNER, MNL_TYPE_U32}};

constexpr Check kHookChecks[] = {{NFTA_HOOK_HOOKNUM, MNL_TYPE_U32},
                                 {NFTA_HOOK_PRIORITY, MNL_TYPE_U32},
                                 {NFTA_HOOK_DEV, MNL_TYPE_NUL_STRING},
                                 {NFTA_HOOK_DEVS, MNL_TYPE_NESTED, Check::kStrings}};
constexpr Check kChainChecks[] = {{NFTA_CHAIN_NAME, MNL_TYPE_NUL_STRING},
                                  {NFTA_CHAIN_TABLE, MNL_TYPE_NUL_STRING},
                                  {NFTA_CHAIN_TYPE, MNL_TYPE_NUL_STRING},
                                  {NFTA_CHAIN_HOOK, MNL_TYPE_NESTED, Check::kAttrs, kHookChecks},
                                  {NFTA_CHAIN_POLICY, MNL_TYPE_U32},
                                  {NFTA_CHAIN_USE, MNL_TYPE_U32},
                                  {NFTA_CHAIN_FLAGS, MNL_TYPE_U32},
                                  {NFTA_CHAIN_ID, MNL_TYPE_U32},
                                  {NFTA_CHAIN_HANDLE, MNL_TYPE_U64},
                                  {NFTA_CHAIN_COUNTERS, MNL_TYPE_NESTED, Check::kAttrs, kCounterChecks},
                                  {NFTA_CHAIN_USERDATA, MNL_TYPE_BINARY}};

constexpr Check kFieldChecks[] = {{NFTA_SET_FIELD_LEN, MNL_TYPE_U32}};
constexpr Check kSetDescChecks[] = {{NFTA_SET_DESC_SIZE, MNL_TYPE_U32},
                                    {NFTA_SET_DESC_CONCAT, MNL_TYPE_NESTED, Check::kList, kFieldChecks}};
constexpr Check kSetChecks[] = {{NFTA_SET_TABLE, MNL_TYPE_NUL_STRING},
                                {NFTA_SET_NAME, MNL_TYPE_NUL_STRING},
                                {NFTA_SET_HANDLE, MNL_TYPE_U64},
                                {NFTA_SET_FLAGS, MNL_TYPE_U32},
                                {NFTA_SET_KEY_TYPE, MNL_TYPE_U32},
                                {NFTA_SET_KEY_LEN, MNL_TYPE_U32},
                                {NFTA_SET_DATA_TYPE, MNL_TYPE_U32},
                                {NFTA_SET_DATA_LEN, MNL_TYPE_U32},
                                {NFTA_SET_ID, MNL_TYPE_U32},
                                {NFTA_SET_POLICY, MNL_TYPE_U32},
                                {NFTA_SET_GC_INTERVAL, MNL_TYPE_U32},
                                {NFTA_SET_OBJ_TYPE, MNL_TYPE_U32},
                                {NFTA_SET_USERDATA, MNL_TYPE_BINARY},
                                {NFTA_SET_TIMEOUT, MNL_TYPE_U64},
                                {NFTA_SET_DESC, MNL_TYPE_NESTED, Check::kAttrs, kSetDescChecks},
                                {NFTA_SET_EXPR, MNL_TYPE_NESTED, Check::kExpr},
                                {NFTA_SET_EXPRESSIONS, MNL_TYPE_NESTED, Check::kExprs}};

constexpr Check kElemChecks[] = {{NFTA_SET_ELEM_FLAGS, MNL_TYPE_U32},
                                 {NFTA_SET_ELEM_TIMEOUT, MNL_TYPE_U64},
                                 {NFTA_SET_ELEM_EXPIRATION, MNL_TYPE_U64},
                                 {NFTA_SET_ELEM_KEY, MNL_TYPE_NESTED, Check::kAttrs, kDataChecks},
                                 {NFTA_SET_ELEM_KEY_END, MNL_TYPE_NESTED, Check::kAttrs, kDataChecks},
                                 {NFTA_SET_ELEM_DATA, MNL_TYPE_NESTED, Check::kAttrs, kDataChecks},
                                 {NFTA_SET_ELEM_EXPR, MNL_TYPE_NESTED, Check::kExpr},
                                 {NFTA_SET_ELEM_EXPRESSIONS, MNL_TYPE_NESTED, Check::kExprs},
                                 {NFTA_SET_ELEM_USERDATA, MNL_TYPE_BINARY},
                                 {NFTA_SET_ELEM_OBJREF, MNL_TYPE_NUL_STRING},
                                 // libnftnl 1.2.4's element callback (nftnl_set_elem_parse_attr_cb)
                                 // bounds types by NFTA_SET_MAX (18), not NFTA_SET_ELEM_MAX (11), and
                                 // stores each into a table of NFTA_SET_ELEM_MAX + 1: a type from 12
                                 // to 18 is written past it, over the stack. No kernel sends one.
                                 {NFTA_SET_ELEM_EXPRESSIONS + 1, MNL_TYPE_UNSPEC, Check::kRefused},
                                 {NFTA_SET_ELEM_EXPRESSIONS + 2, MNL_TYPE_UNSPEC, Check::kRefused},
                                 {NFTA_SET_ELEM_EXPRESSIONS + 3, MNL_TYPE_UNSPEC, Check::kRefused},
                                 {NFTA_SET_ELEM_EXPRESSIONS + 4, MNL_TYPE_UNSPEC, Check::kRefused},
                                 {NFTA_SET_ELEM_EXPRESSIONS + 5, MNL_TYPE_UNSPEC, Check::kRefused},
                                 {NFTA_SET_ELEM_EXPRESSIONS + 6, MNL_TYPE_UNSPEC, Check::kRefused},
                                 {NFTA_SET_ELEM_EXPRESSIONS + 7, MNL_TYPE_UNSPEC, Check::kRefused}};
static_assert(NFTA_SET_ELEM_EXPRESSIONS == 11 && NFTA_SET_EXPRESSIONS == 18,
              "the refused element types above are libnftnl 1.2.4's 12..18");
constexpr Check kElemListChecks[] = {{NFTA_SET_ELEM_LIST_TABLE, MNL_TYPE_NUL_STRING},
                                     {NFTA_SET_ELEM_LIST_SET, MNL_TYPE_NUL_STRING},
                                     {NFTA_SET_ELEM_LIST_SET_ID, MNL_TYPE_U32},
                                     {NFTA_SET_ELEM_LIST_ELEMENTS, MNL_TYPE_NESTED, Check::kList, kElemChecks}};

constexpr Check kCompatChecks[] = {{NFTA_RULE_COMPAT_PROTO, MNL_TYPE_U32}, {NFTA_RULE_COMPAT_FLAGS, MNL_TYPE_U32}};
constexpr Check kRuleChecks[] = {{NFTA_RULE_TABLE, MNL_TYPE_NUL_STRING},
                                 {NFTA_RULE_CHAIN, MNL_TYPE_NUL_STRING},
                                 {NFTA_RULE_HANDLE, MNL_TYPE_U64},
                                 {NFTA_RULE_COMPAT, MNL_TYPE_NESTED, Check::kAttrs, kCompatChecks},
                                 {NFTA_RULE_POSITION, MNL_TYPE_U64},
                                 {NFTA_RULE_USERDATA, MNL_TYPE_BINARY},
                                 {NFTA_RULE_ID, MNL_TYPE_U32},
                                 {NFTA_RULE_POSITION_ID, MNL_TYPE_U32},
                                 {NFTA_RULE_EXPRESSIONS, MNL_TYPE_NESTED, Check::kRuleExprs}};

bool valid_attrs(const void* start, int len, Checks checks);

// The attributes inside the nest `a`, or its NFTA_LIST_ELEM children, each as `fn`.
template <typename Fn>
bool each_in(const nlattr* a, Fn&& fn) {
  int len = static_cast<int>(mnl_attr_get_payload_len(a));
  for (auto* c = static_cast<const nlattr*>(mnl_attr_get_payload(a)); mnl_attr_ok(c, len); c = mnl_attr_next(c)) {
    len -= static_cast<int>(MNL_ALIGN(c->nla_len));
    if (!fn(c)) return false;
  }
  return true;
}

bool valid_expr(const nlattr* a, bool strict) {
  const nlattr* name = nullptr;
  const nlattr* data = nullptr;
  if (!each_in(a, [&](const nlattr* c) {
        const int type = mnl_attr_get_type(c);
        if (type == NFTA_EXPR_NAME) {
          if (mnl_attr_validate(c, MNL_TYPE_NUL_STRING) < 0) return false;
          name = c;
        } else if (type == NFTA_EXPR_DATA) {
          if (mnl_attr_validate(c, MNL_TYPE_NESTED) < 0) return false;
          data = c;
        }
        return true;
      })) {
    return false;
  }
  // libnftnl 1.2.4 (nftnl_expr_parse) hands tb[NFTA_EXPR_NAME] to nftnl_expr_alloc
  // without looking: an expression without its name is strcmp() of a null pointer's
  // payload, in a set, element or dynset as in a rule.
  if (name == nullptr) return false;
  Checks checks;
  // An expression knode does not map: a rule with one is refused anyway (expr()); in a
  // set, element or dynset, where knode ignores them, libnftnl's own parse is left to it.
  if (!expr_checks(mnl_attr_get_str(name), &checks)) return !strict;
  return data == nullptr ||
         valid_attrs(mnl_attr_get_payload(data), static_cast<int>(mnl_attr_get_payload_len(data)), checks);
}

// A verdict nest libnftnl can read (nftnl_parse_verdict, from nftnl_parse_data). Its
// attribute table there is not zeroed (libnftnl 1.2.4: `struct nlattr *tb[...]` with no
// initializer): what the nest does not carry is stack garbage, which it then reads —
// NFTA_VERDICT_CODE always, NFTA_VERDICT_CHAIN (strdup()) for a jump or goto. So both must
// be there, as the kernel always sends them. As in its table, the last of a type counts.
bool valid_verdict(const nlattr* a) {
  const nlattr* code = nullptr;
  const nlattr* chain = nullptr;
  each_in(a, [&](const nlattr* c) {
    const int type = mnl_attr_get_type(c);
    if (type == NFTA_VERDICT_CODE) code = c;
    if (type == NFTA_VERDICT_CHAIN) chain = c;
    return true;
  });
  if (code == nullptr) return false;
  const auto verdict = static_cast<int32_t>(ntohl(mnl_attr_get_u32(code)));
  return (verdict != NFT_JUMP && verdict != NFT_GOTO) || chain != nullptr;
}

bool valid_attr(const nlattr* a, const Check& check) {
  if (mnl_attr_validate(a, check.kind) < 0) return false;
  auto list_elems = [&](auto&& fn) {
    // Children other than NFTA_LIST_ELEM make libnftnl fail the parse, not exit.
    return each_in(a, [&](const nlattr* c) {
      return mnl_attr_get_type(c) != NFTA_LIST_ELEM || (mnl_attr_validate(c, MNL_TYPE_NESTED) >= 0 && fn(c));
    });
  };
  switch (check.inner) {
    case Check::kNone: return true;
    case Check::kAttrs:
      return valid_attrs(mnl_attr_get_payload(a), static_cast<int>(mnl_attr_get_payload_len(a)), check.attrs);
    case Check::kList:
      return list_elems([&](const nlattr* c) {
        return valid_attrs(mnl_attr_get_payload(c), static_cast<int>(mnl_attr_get_payload_len(c)), check.attrs);
      });
    case Check::kExpr: return valid_expr(a, false);
    case Check::kExprs: return list_elems([](const nlattr* c) { return valid_expr(c, false); });
    case Check::kRuleExprs: return list_elems([](const nlattr* c) { return valid_expr(c, true); });
    case Check::kStrings:
      return each_in(a, [](const nlattr* c) { return mnl_attr_validate(c, MNL_TYPE_NUL_STRING) >= 0; });
    case Check::kRefused: return false;
    case Check::kVerdict:
      return valid_attrs(mnl_attr_get_payload(a), static_cast<int>(mnl_attr_get_payload_len(a)), check.attrs) &&
             valid_verdict(a);
  }
  return false;
}

bool valid_attrs(const void* start, int len, Checks checks) {
  for (auto* a = static_cast<const nlattr*>(start); mnl_attr_ok(a, len); a = mnl_attr_next(a)) {
    len -= static_cast<int>(MNL_ALIGN(a->nla_len));
    const int type = mnl_attr_get_type(a);
    for (const Check& c : checks) {
      if (c.type == type && !valid_attr(a, c)) return false;
    }
  }
  return true;
}

// Whether libnftnl can be given `nlh` without reading past it or exiting.
bool valid_message(const nlmsghdr* nlh, Checks checks) {
  if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nfgenmsg))) return false;  // it reads the nfgenmsg
  const auto* start = static_cast<const char*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
  const auto* end = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  return valid_attrs(start, static_cast<int>(end - start), checks);
}

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
  const char* name_str = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
  if (name_str == nullptr) return false;
  std::string_view name = name_str;
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
    if (!str(nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET), &l.set)) return false;  // a lookup names its set
    *out = std::move(l);
  } else if (name == "dynset") {
    Dynset d;
    d.op = u32(e, NFTNL_EXPR_DYNSET_OP);
    d.sreg_key = u32(e, NFTNL_EXPR_DYNSET_SREG_KEY);
    if (!str(nftnl_expr_get_str(e, NFTNL_EXPR_DYNSET_SET_NAME), &d.set)) return false;
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
  } else if (name == "byteorder") {
    *out = Byteorder{u32(e, NFTNL_EXPR_BYTEORDER_SREG), u32(e, NFTNL_EXPR_BYTEORDER_DREG),
                     u32(e, NFTNL_EXPR_BYTEORDER_OP), u32(e, NFTNL_EXPR_BYTEORDER_LEN),
                     u32(e, NFTNL_EXPR_BYTEORDER_SIZE)};
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
  if (!valid_message(nlh, kTableChecks)) return false;
  TablePtr t(nftnl_table_alloc());
  if (!t || nftnl_table_nlmsg_parse(nlh, t.get()) < 0) return false;
  if (!str(nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME), &out->name)) return false;
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
  if (!valid_message(nlh, kChainChecks)) return false;
  ChainPtr c(nftnl_chain_alloc());
  if (!c || nftnl_chain_nlmsg_parse(nlh, c.get()) < 0) return false;
  if (!str(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE), table) ||
      !str(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME), &out->name)) {
    return false;
  }
  if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HANDLE)) out->handle = nftnl_chain_get_u64(c.get(), NFTNL_CHAIN_HANDLE);
  if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM)) {
    BaseChain b;
    b.hook = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM);
    b.priority = nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO);
    if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_TYPE)) str(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TYPE), &b.type);
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
  if (!valid_message(nlh, kSetChecks)) return false;
  SetPtr s(nftnl_set_alloc());
  if (!s || nftnl_set_nlmsg_parse(nlh, s.get()) < 0) return false;
  auto u32_or0 = [&](uint16_t attr) { return nftnl_set_is_set(s.get(), attr) ? nftnl_set_get_u32(s.get(), attr) : 0; };
  if (!str(nftnl_set_get_str(s.get(), NFTNL_SET_TABLE), table) ||
      !str(nftnl_set_get_str(s.get(), NFTNL_SET_NAME), &out->name)) {
    return false;
  }
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
  if (!valid_message(nlh, kElemListChecks)) return false;
  SetPtr s(nftnl_set_alloc());
  if (!s || nftnl_set_elems_nlmsg_parse(nlh, s.get()) < 0) return false;
  if (nftnl_set_is_set(s.get(), NFTNL_SET_NAME)) str(nftnl_set_get_str(s.get(), NFTNL_SET_NAME), set_name);
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
  if (!valid_message(nlh, kRuleChecks)) return false;
  RulePtr r(nftnl_rule_alloc());
  if (!r || nftnl_rule_nlmsg_parse(nlh, r.get()) < 0) return false;
  if (!str(nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE), table) ||
      !str(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN), chain)) {
    return false;
  }
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
  if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nfgenmsg))) return 0;
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
