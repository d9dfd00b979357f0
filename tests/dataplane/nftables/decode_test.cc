// nf_tables messages decoded without a kernel: what knode does with replies that lack an
// attribute or carry one of the wrong length (refused, never a crash or libnftnl's
// exit(1)); nft's userdata notes with long comments. Label: unit.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <limits>
#include <string>
#include <vector>

#include "knode/dataplane/nftables/exprs.h"
#include "knode/dataplane/nftables/print.h"
#include "nftables/codec.h"
#include "nftables/decode.h"
#include "nftables/udata.h"

namespace knode::nftables {
namespace {

// A NEW* message whose attributes `fill` writes after the nfgenmsg.
template <typename Fill>
std::vector<char> message(uint16_t msg_type, Fill&& fill) {
  std::vector<char> buf(codec::kMaxMessage);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | msg_type;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = NFPROTO_INET;
  nfg->version = NFNETLINK_V0;
  fill(nlh);
  return buf;
}
const nlmsghdr* hdr(const std::vector<char>& buf) { return reinterpret_cast<const nlmsghdr*>(buf.data()); }

TEST(NftablesDecode, ChainAsWeWriteItDecodes) {
  Chain c;
  c.name = "services";
  c.comment = "knode";
  auto buf = message(NFT_MSG_NEWCHAIN, [&](nlmsghdr* nlh) { codec::put_chain(nlh, "knode", c); });
  std::string table;
  Chain back;
  ASSERT_TRUE(decode::chain(hdr(buf), &table, &back));
  EXPECT_EQ(table, "knode");
  EXPECT_EQ(back.name, "services");
  EXPECT_EQ(back.comment, "knode");
}

// libnftnl's getters give nullptr for an attribute the message did not carry.
TEST(NftablesDecode, ObjectsWithoutTheirNamesAreRefused) {
  std::string table, chain;
  Chain c;
  auto no_name = message(NFT_MSG_NEWCHAIN, [](nlmsghdr* nlh) { mnl_attr_put_strz(nlh, NFTA_CHAIN_TABLE, "knode"); });
  EXPECT_FALSE(decode::chain(hdr(no_name), &table, &c));
  auto no_table = message(NFT_MSG_NEWCHAIN, [](nlmsghdr* nlh) { mnl_attr_put_strz(nlh, NFTA_CHAIN_NAME, "x"); });
  EXPECT_FALSE(decode::chain(hdr(no_table), &table, &c));
  Table t;
  auto empty_table = message(NFT_MSG_NEWTABLE, [](nlmsghdr*) {});
  EXPECT_FALSE(decode::table(hdr(empty_table), &t));
  SetSpec s;
  auto no_set_name = message(NFT_MSG_NEWSET, [](nlmsghdr* nlh) { mnl_attr_put_strz(nlh, NFTA_SET_TABLE, "knode"); });
  EXPECT_FALSE(decode::set(hdr(no_set_name), &table, &s));
  Rule r;
  auto no_chain = message(NFT_MSG_NEWRULE, [](nlmsghdr* nlh) { mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, "knode"); });
  EXPECT_FALSE(decode::rule(hdr(no_chain), &table, &chain, &r));
}

TEST(NftablesDecode, LookupWithoutItsSetIsRefused) {
  auto rule = [](bool with_set) {
    return message(NFT_MSG_NEWRULE, [=](nlmsghdr* nlh) {
      mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, "knode");
      mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, "services");
      nlattr* exprs = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
      nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
      mnl_attr_put_strz(nlh, NFTA_EXPR_NAME, "lookup");
      nlattr* data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
      mnl_attr_put_u32(nlh, NFTA_LOOKUP_SREG, htonl(NFT_REG32_00));
      if (with_set) mnl_attr_put_strz(nlh, NFTA_LOOKUP_SET, "allowed");
      mnl_attr_nest_end(nlh, data);
      mnl_attr_nest_end(nlh, elem);
      mnl_attr_nest_end(nlh, exprs);
    });
  };
  std::string table, chain;
  Rule r;
  EXPECT_FALSE(decode::rule(hdr(rule(false)), &table, &chain, &r));
  Rule ok;
  ASSERT_TRUE(decode::rule(hdr(rule(true)), &table, &chain, &ok));
  ASSERT_EQ(ok.exprs.size(), 1u);
  EXPECT_EQ(std::get<Lookup>(ok.exprs[0]).set, "allowed");
}

// libnftnl would print "nf_tables kernel ABI is broken" and exit(1) on these: the test
// process would end here if decode handed them over.
TEST(NftablesDecode, AttributesOfTheWrongLengthAreRefusedBeforeLibnftnl) {
  Table t;
  auto short_flags = message(NFT_MSG_NEWTABLE, [](nlmsghdr* nlh) {
    mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, "knode");
    mnl_attr_put_u8(nlh, NFTA_TABLE_FLAGS, 1);
  });
  EXPECT_FALSE(decode::table(hdr(short_flags), &t));
  std::string table, chain;
  Chain c;
  auto short_hook = message(NFT_MSG_NEWCHAIN, [](nlmsghdr* nlh) {
    mnl_attr_put_strz(nlh, NFTA_CHAIN_TABLE, "knode");
    mnl_attr_put_strz(nlh, NFTA_CHAIN_NAME, "input");
    nlattr* hook = mnl_attr_nest_start(nlh, NFTA_CHAIN_HOOK);
    mnl_attr_put_u16(nlh, NFTA_HOOK_HOOKNUM, 1);
    mnl_attr_nest_end(nlh, hook);
  });
  EXPECT_FALSE(decode::chain(hdr(short_hook), &table, &c));
  Rule r;
  auto short_expr_attr = message(NFT_MSG_NEWRULE, [](nlmsghdr* nlh) {
    mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, "knode");
    mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, "services");
    nlattr* exprs = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
    nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
    mnl_attr_put_strz(nlh, NFTA_EXPR_NAME, "meta");
    nlattr* data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
    mnl_attr_put_u8(nlh, NFTA_META_KEY, NFT_META_L4PROTO);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, elem);
    mnl_attr_nest_end(nlh, exprs);
  });
  EXPECT_FALSE(decode::rule(hdr(short_expr_attr), &table, &chain, &r));
  std::string set;
  std::vector<Element> elements;
  auto short_elem_flags = message(NFT_MSG_NEWSETELEM, [](nlmsghdr* nlh) {
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, "knode");
    mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, "allowed");
    nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
    nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
    mnl_attr_put_u64(nlh, NFTA_SET_ELEM_FLAGS, 0);
    mnl_attr_nest_end(nlh, elem);
    mnl_attr_nest_end(nlh, list);
  });
  EXPECT_FALSE(decode::elements(hdr(short_elem_flags), &set, &elements));
}

TEST(NftablesDecode, NamesWithoutTheirNulAreRefused) {
  std::string table;
  Chain c;
  auto buf = message(NFT_MSG_NEWCHAIN, [](nlmsghdr* nlh) {
    mnl_attr_put(nlh, NFTA_CHAIN_TABLE, 5, "knode");
    mnl_attr_put_strz(nlh, NFTA_CHAIN_NAME, "input");
  });
  EXPECT_FALSE(decode::chain(hdr(buf), &table, &c));
}

// libnftnl 1.2.4 parses a verdict (nftnl_parse_verdict) into an attribute table it does
// not zero: a verdict without its code, or a jump or goto without its chain, had it read
// stack garbage as an attribute (strdup() of a wild pointer: a SEGV, in a rule's immediate
// or an element's data). Cut short = the chain is written but the nest's length ends
// before it, as in tests/fuzz/regressions/nftables_decode/crash-5a5ab2b93370.
TEST(NftablesDecode, VerdictWithoutItsCodeOrJumpWithoutItsChainIsRefused) {
  enum Shape { kWhole, kNoChain, kChainCutShort, kNoCode };
  auto put_verdict = [](nlmsghdr* nlh, uint16_t type, Shape shape) {
    nlattr* data = mnl_attr_nest_start(nlh, type);
    nlattr* verdict = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
    if (shape != kNoCode) mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE, htonl(static_cast<uint32_t>(NFT_JUMP)));
    if (shape != kNoChain) mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, "service-x");
    mnl_attr_nest_end(nlh, verdict);
    if (shape == kChainCutShort) verdict->nla_len = MNL_ATTR_HDRLEN + MNL_ATTR_HDRLEN + sizeof(uint32_t);
    mnl_attr_nest_end(nlh, data);
  };
  auto rule = [&](Shape shape) {
    return message(NFT_MSG_NEWRULE, [&](nlmsghdr* nlh) {
      mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, "knode");
      mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, "services");
      nlattr* exprs = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
      nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
      mnl_attr_put_strz(nlh, NFTA_EXPR_NAME, "immediate");
      nlattr* data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
      mnl_attr_put_u32(nlh, NFTA_IMMEDIATE_DREG, htonl(NFT_REG_VERDICT));
      put_verdict(nlh, NFTA_IMMEDIATE_DATA, shape);
      mnl_attr_nest_end(nlh, data);
      mnl_attr_nest_end(nlh, elem);
      mnl_attr_nest_end(nlh, exprs);
    });
  };
  auto elements_msg = [&](Shape shape) {
    return message(NFT_MSG_NEWSETELEM, [&](nlmsghdr* nlh) {
      mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, "knode");
      mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, "vmap");
      nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
      nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
      nlattr* key = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
      mnl_attr_put_u32(nlh, NFTA_DATA_VALUE, htonl(0x0a60000a));
      mnl_attr_nest_end(nlh, key);
      put_verdict(nlh, NFTA_SET_ELEM_DATA, shape);
      mnl_attr_nest_end(nlh, elem);
      mnl_attr_nest_end(nlh, list);
    });
  };
  std::string table, chain, set;
  for (Shape shape : {kNoChain, kChainCutShort, kNoCode}) {
    SCOPED_TRACE(shape);
    Rule r;
    EXPECT_FALSE(decode::rule(hdr(rule(shape)), &table, &chain, &r));
    std::vector<Element> elements;
    EXPECT_FALSE(decode::elements(hdr(elements_msg(shape)), &set, &elements));
  }
  Rule ok;
  ASSERT_TRUE(decode::rule(hdr(rule(kWhole)), &table, &chain, &ok));
  ASSERT_EQ(ok.exprs.size(), 1u);
  EXPECT_EQ(std::get<Immediate>(ok.exprs[0]).verdict, Verdict::Jump("service-x"));
  std::vector<Element> elements;
  ASSERT_TRUE(decode::elements(hdr(elements_msg(kWhole)), &set, &elements));
  ASSERT_EQ(elements.size(), 1u);
  EXPECT_EQ(elements[0].verdict, Verdict::Jump("service-x"));
}

// NFTA_VERDICT_CHAIN_ID is one libnftnl validates too (a u32, else exit(1)).
TEST(NftablesDecode, VerdictChainIdOfTheWrongLengthIsRefused) {
  auto buf = message(NFT_MSG_NEWRULE, [](nlmsghdr* nlh) {
    mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, "knode");
    mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, "services");
    nlattr* exprs = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
    nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
    mnl_attr_put_strz(nlh, NFTA_EXPR_NAME, "immediate");
    nlattr* data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
    mnl_attr_put_u32(nlh, NFTA_IMMEDIATE_DREG, htonl(NFT_REG_VERDICT));
    nlattr* imm = mnl_attr_nest_start(nlh, NFTA_IMMEDIATE_DATA);
    nlattr* verdict = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
    mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE, htonl(static_cast<uint32_t>(NF_ACCEPT)));
    mnl_attr_put_u8(nlh, NFTA_VERDICT_CHAIN_ID, 1);
    mnl_attr_nest_end(nlh, verdict);
    mnl_attr_nest_end(nlh, imm);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, elem);
    mnl_attr_nest_end(nlh, exprs);
  });
  std::string table, chain;
  Rule r;
  EXPECT_FALSE(decode::rule(hdr(buf), &table, &chain, &r));
}

// libnftnl 1.2.4 (nftnl_expr_parse) looks an expression up by NFTA_EXPR_NAME without
// checking it is there: strcmp() of a null pointer's payload, for a set's or an
// element's expression as for a rule's (tests/fuzz/regressions/nftables_decode/
// crash-ad1e13849b4a).
TEST(NftablesDecode, ExpressionWithoutItsNameIsRefusedInSetsAndElements) {
  auto put_expr = [](nlmsghdr* nlh, uint16_t type, bool named) {
    nlattr* expr = mnl_attr_nest_start(nlh, type);
    if (named) mnl_attr_put_strz(nlh, NFTA_EXPR_NAME, "counter");
    nlattr* data = mnl_attr_nest_start(nlh, NFTA_EXPR_DATA);
    mnl_attr_put_u64(nlh, NFTA_COUNTER_PACKETS, 0);
    mnl_attr_put_u64(nlh, NFTA_COUNTER_BYTES, 0);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, expr);
  };
  auto set_msg = [&](bool named, bool list) {
    return message(NFT_MSG_NEWSET, [&](nlmsghdr* nlh) {
      mnl_attr_put_strz(nlh, NFTA_SET_TABLE, "knode");
      mnl_attr_put_strz(nlh, NFTA_SET_NAME, "service-ips");
      mnl_attr_put_u32(nlh, NFTA_SET_KEY_LEN, htonl(4));
      if (list) {
        nlattr* exprs = mnl_attr_nest_start(nlh, NFTA_SET_EXPRESSIONS);
        put_expr(nlh, NFTA_LIST_ELEM, named);
        mnl_attr_nest_end(nlh, exprs);
      } else {
        put_expr(nlh, NFTA_SET_EXPR, named);
      }
    });
  };
  auto elements_msg = [&](bool named) {
    return message(NFT_MSG_NEWSETELEM, [&](nlmsghdr* nlh) {
      mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, "knode");
      mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, "service-ips");
      nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
      nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
      nlattr* key = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
      mnl_attr_put_u32(nlh, NFTA_DATA_VALUE, htonl(0x0a60000a));
      mnl_attr_nest_end(nlh, key);
      put_expr(nlh, NFTA_SET_ELEM_EXPR, named);
      mnl_attr_nest_end(nlh, elem);
      mnl_attr_nest_end(nlh, list);
    });
  };
  std::string table, set;
  for (bool list : {false, true}) {
    SCOPED_TRACE(list);
    SetSpec s;
    EXPECT_FALSE(decode::set(hdr(set_msg(false, list)), &table, &s));
    SetSpec ok;
    ASSERT_TRUE(decode::set(hdr(set_msg(true, list)), &table, &ok));
    EXPECT_EQ(ok.name, "service-ips");
  }
  std::vector<Element> elements;
  EXPECT_FALSE(decode::elements(hdr(elements_msg(false)), &set, &elements));
  std::vector<Element> ok;
  ASSERT_TRUE(decode::elements(hdr(elements_msg(true)), &set, &ok));
  EXPECT_EQ(ok.size(), 1u);
}

// libnftnl 1.2.4 bounds an element's attribute types by NFTA_SET_MAX (18) but stores
// them in a table of NFTA_SET_ELEM_MAX + 1 (12): types 12 to 18 were written past it, over
// its stack (tests/fuzz/regressions/nftables_decode/crash-f68d6b5b57e0). Types past 18
// it skips, and so do we.
TEST(NftablesDecode, ElementAttributeLibnftnlWouldStorePastItsTableIsRefused) {
  auto elements_msg = [](uint16_t extra_type) {
    return message(NFT_MSG_NEWSETELEM, [=](nlmsghdr* nlh) {
      mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, "knode");
      mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, "service-ips");
      nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
      nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
      nlattr* key = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
      mnl_attr_put_u32(nlh, NFTA_DATA_VALUE, htonl(0x0a60000a));
      mnl_attr_nest_end(nlh, key);
      mnl_attr_put_u32(nlh, extra_type, 0);
      mnl_attr_nest_end(nlh, elem);
      mnl_attr_nest_end(nlh, list);
    });
  };
  std::string set;
  for (uint16_t type = 12; type <= 18; ++type) {
    SCOPED_TRACE(type);
    std::vector<Element> elements;
    EXPECT_FALSE(decode::elements(hdr(elements_msg(type)), &set, &elements));
  }
  std::vector<Element> ok;
  ASSERT_TRUE(decode::elements(hdr(elements_msg(19)), &set, &ok));
  EXPECT_EQ(ok.size(), 1u);
}

// A base chain's priority is any s32 the kernel holds: its distance from nft's standard
// priorities was taken in int32 and overflowed near the ends (UBSan in the fuzz target,
// tests/fuzz/regressions/nftables_decode/crash-de2d9a58d6ae).
TEST(NftablesPrint, ExtremePrioritiesPrintAsNumbers) {
  for (int32_t prio : {std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min()}) {
    TableContent t;
    t.table.name = "knode";
    ChainContent c;
    c.chain.name = "prerouting";
    c.chain.base = BaseChain{"nat", NF_INET_PRE_ROUTING, prio, NF_ACCEPT};
    t.chains.push_back(c);
    EXPECT_NE(print_table(t).find("priority " + std::to_string(prio) + ";"), std::string::npos);
  }
}

// A concatenation's part past the end of a short key is an empty view (data() null):
// memcpy from it was UB (crash-d07ab5476550).
TEST(NftablesPrint, ConcatenationKeyShorterThanItsPartsPrints) {
  SetSpec set;
  set.key_type = (static_cast<uint32_t>(Datatype::kInteger) << 6) | static_cast<uint32_t>(Datatype::kInteger);
  set.key_len = 8;
  Element e;
  EXPECT_FALSE(print_element(e, set).empty());
}

TEST(NftablesDecode, MessageShorterThanItsHeaderIsRefused) {
  auto buf = message(NFT_MSG_NEWTABLE, [](nlmsghdr* nlh) { nlh->nlmsg_len = sizeof(nlmsghdr); });
  Table t;
  EXPECT_FALSE(decode::table(hdr(buf), &t));
  EXPECT_EQ(decode::generation(hdr(buf)), 0u);
}

// The note's length is one byte: a 255+ byte comment used to wrap it, and the note read
// back as garbage.
TEST(NftablesUdata, LongCommentIsCutAndReadsBackWhole) {
  const std::string comment(300, 'x');
  const Bytes note = udata::comment_note(comment);
  EXPECT_EQ(note.size(), 2 + udata::kMaxCommentLength + 1);
  EXPECT_TRUE(udata::each(note, [](uint8_t, std::string_view) {}));
  EXPECT_EQ(udata::comment_of(note), std::string(udata::kMaxCommentLength, 'x'));

  SetUserdata u;
  u.key_byteorder = 2;
  u.comment = comment;
  const SetUserdata back = udata::parse_set_note(udata::set_note(u));
  EXPECT_EQ(back.key_byteorder, 2u);
  EXPECT_EQ(back.comment, udata::clamp_comment(comment));

  Element e;
  e.comment = comment;
  e.udata_flags = 1;
  Element eback;
  udata::parse_element_note(udata::element_note(e), &eback);
  EXPECT_EQ(eback.comment.size(), udata::kMaxCommentLength);
  EXPECT_EQ(eback.udata_flags, 1u);
}

TEST(NftablesUdata, CommentIsCutAtACharacterBoundary) {
  // "é" is two bytes; the 128-byte cut would fall between them.
  const std::string comment = std::string(127, 'a') + "\xc3\xa9" + "tail";
  EXPECT_EQ(udata::clamp_comment(comment), std::string(127, 'a'));
  EXPECT_EQ(udata::clamp_comment("short"), "short");
  EXPECT_EQ(udata::clamp_comment(std::string("a\0b", 3)), "a");
  EXPECT_EQ(udata::comment_of(udata::comment_note(comment)), std::string(127, 'a'));
}

TEST(NftablesUdata, ValueTooLongForANoteIsLeftOut) {
  Bytes out;
  EXPECT_FALSE(udata::put(out, 1, std::string(256, 'v')));
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(udata::put(out, 1, std::string(255, 'v')));
  EXPECT_EQ(out.size(), 257u);
}

TEST(NftablesUdata, MalformedNoteReadsAsNoNote) {
  // What an older knode wrote for a 300-byte comment: the length byte wrapped to 45.
  Bytes note;
  note.push_back('\0');
  note.push_back(static_cast<char>(301 & 0xff));
  note.append(std::string(300, 'x'));
  note.push_back('\0');
  EXPECT_FALSE(udata::each(note, [](uint8_t, std::string_view) {}));
  EXPECT_EQ(udata::comment_of(note), "");
  EXPECT_EQ(udata::parse_set_note(note).comment, "");
  Element e;
  e.comment = "kept";
  udata::parse_element_note(note, &e);
  EXPECT_EQ(e.comment, "kept");
}

}  // namespace
}  // namespace knode::nftables
