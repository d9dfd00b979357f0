// The nf_tables client against this machine's kernel, in a private network namespace:
// what it writes is what `nft list` shows (and what the printer prints), what it reads
// back equals what it wrote, `nft -f` of the printed script makes the very same objects,
// a refused batch changes nothing and names what was refused, and the reconciler's
// syncs change only what differs.
#include <gtest/gtest.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "knode/dataplane/nftables.h"
#include "knode/dataplane/nftables/exprs.h"
#include "knode/dataplane/nftables/print.h"
#include "knode/dataplane/nftables/reconciler.h"
#include "support/netns_util.h"

using namespace knode;
using namespace knode::nftables;
using knode::iptables::testing::run;

namespace {

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }
net::Cidr cidr(const char* s) { return *net::Cidr::Parse(s); }

const std::vector<Datatype> kAddrProtoPort = {Datatype::kIPv4Addr, Datatype::kInetProto, Datatype::kInetService};

Bytes app_key(const char* addr, uint8_t proto, uint16_t port) {
  return ipv4_key(ip(addr)) + proto_key(proto) + port_key(port);
}

// n endpoints 10.244.1.1:8080, 10.244.1.2:8080, ...
std::vector<std::pair<net::IPAddress, uint16_t>> slot_targets(int n) {
  std::vector<std::pair<net::IPAddress, uint16_t>> out;
  for (int i = 1; i <= n; ++i) out.emplace_back(net::IPAddress::V4(0x0af40100u + static_cast<uint32_t>(i)), 8080);
  return out;
}

// A table using every statement and set shape the client knows.
TableContent sample() {
  TableContent t;
  t.table = Table{Family::kIPv4, "lb", 0, "rules of a test"};
  t.sets.push_back({ipv4_addr_set("vips", "virtual addresses"), {key_element(ipv4_key(ip("10.96.0.1"))),
                                                                   key_element(ipv4_key(ip("10.96.0.20"))),
                                                                   key_element(ipv4_key(ip("10.96.0.3")))}});
  t.sets.push_back({concat_verdict_map("dispatch", kAddrProtoPort, "where traffic goes"),
                    {verdict_element(app_key("10.96.0.1", 6, 80), Verdict::Goto("pool-a")),
                     verdict_element(app_key("10.96.0.3", 17, 53), Verdict::Goto("pool-a"), "with a note"),
                     verdict_element(app_key("10.96.0.20", 6, 443), Verdict::Drop(), "dropped")}});
  t.sets.push_back({concat_verdict_map("ports", {Datatype::kInetProto, Datatype::kInetService}),
                    {verdict_element(proto_key(6) + port_key(30080), Verdict::Goto("pool-a"))}});
  t.sets.push_back({dynamic_ipv4_addr_set("sticky", 600), {}});
  t.sets.push_back({numgen_slot_map("slots", kSlots), numgen_slot_elements(slot_targets(3), kSlots)});
  auto chain = [](std::string name) {
    Chain c;
    c.name = std::move(name);
    return c;
  };
  Chain pre = chain("pre");
  pre.base = BaseChain{"nat", NF_INET_PRE_ROUTING, -100, NF_ACCEPT};
  Chain filt = chain("filt");
  filt.base = BaseChain{"filter", NF_INET_LOCAL_OUT, -110, NF_ACCEPT};
  Chain post = chain("post");
  post.base = BaseChain{"nat", NF_INET_POST_ROUTING, 100, NF_ACCEPT};
  Chain helper = chain("helper");
  helper.comment = "a helper chain";
  t.chains.push_back({chain("backend-1"),
                      {RuleBuilder().ip_saddr(net::Cidr(ip("10.244.0.5"), 32)).jump("marker").build(),
                       RuleBuilder().update_set_with_saddr("sticky").build(),
                       RuleBuilder().meta_l4proto(6).dnat_to(ip("10.244.0.5"), 8080).build()}});
  t.chains.push_back({chain("backend-2"), {RuleBuilder().meta_l4proto(17).dnat_to(ip("10.244.0.6"), 53).build()}});
  t.chains.push_back({chain("backend-slots"),
                      {RuleBuilder().meta_l4proto(6).dnat_numgen_random_slot_map("slots", kSlots).build()}});
  t.chains.push_back({chain("pool-b"),
                      {RuleBuilder().numgen_random_equals(2, 0).goto_("backend-1").build(),
                       RuleBuilder().goto_("backend-2").build()}});
  t.chains.push_back({chain("marker"), {RuleBuilder().mark_set_or(0x4000).build()}});
  t.chains.push_back({chain("pool-a"),
                      {RuleBuilder().ip_daddr(ip("10.96.0.1")).ip_saddr_in({cidr("10.244.0.0/16")}, true)
                           .jump("marker").build(),
                       RuleBuilder().ip_saddr_in_set("sticky").goto_("backend-1").build(),
                       RuleBuilder().numgen_random_vmap({Verdict::Goto("backend-1"), Verdict::Goto("backend-2"),
                                                         Verdict::Goto("backend-slots")})
                           .build()}});
  t.chains.push_back({helper,
                      {RuleBuilder().ip_saddr_in({cidr("203.0.113.0/25"), cidr("10.1.0.0/16"), cidr("10.0.0.7/32"),
                                                  cidr("255.255.255.0/24")},
                                                 true)
                           .drop().comment("only these").build(),
                       RuleBuilder().ip_saddr(cidr("10.0.0.0/23")).counter().accept().build(),
                       RuleBuilder().fib_saddr_type_local().jump("marker").comment("from this host").build(),
                       RuleBuilder().reject().build()}});
  t.chains.push_back({pre,
                      {RuleBuilder().vmap_daddr_proto_dport("dispatch").build(),
                       RuleBuilder().fib_daddr_type_local().ip_daddr(cidr("127.0.0.0/8"), true)
                           .vmap_proto_dport("ports").build()}});
  t.chains.push_back({filt,
                      {RuleBuilder().ct_state(kCtStateNew).ip_daddr_in_set("vips").jump("helper").build()}});
  t.chains.push_back({post,
                      {RuleBuilder().mark_and_equals(0x4000, 0).return_().build(),
                       RuleBuilder().mark_set_xor(0x4000).build(),
                       RuleBuilder().masquerade(true).build()}});
  return t;
}

// Writes a whole TableContent through one transaction.
Status write(Nftables& nft, const TableContent& t) {
  auto tx = nft.begin(t.table.family, t.table.name);
  tx->add_table(t.table);
  for (const auto& s : t.sets) tx->add_set(s.spec);
  for (const auto& c : t.chains) tx->add_chain(c.chain);
  for (const auto& c : t.chains) {
    for (const auto& r : c.rules) tx->add_rule(c.chain.name, r);
  }
  for (const auto& s : t.sets) {
    if (!s.elements.empty()) tx->add_elements(s.spec.name, s.elements);
  }
  return tx->commit();
}

std::string nft_list(const std::string& table) { return run("nft list table ip " + table + " 2>&1"); }

void expect_same_lines(const std::string& got, const std::string& want) {
  std::istringstream g(got), w(want);
  std::string gl, wl;
  int n = 0;
  while (true) {
    bool more_g = static_cast<bool>(std::getline(g, gl)), more_w = static_cast<bool>(std::getline(w, wl));
    if (!more_g && !more_w) break;
    ++n;
    EXPECT_EQ(more_g ? gl : "<missing>", more_w ? wl : "<extra>") << "line " << n;
  }
}

class NftablesNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    KNODE_REQUIRE_NETNS();
    auto c = open_netlink_nftables();
    ASSERT_TRUE(c.ok()) << c.error();
    nft_ = std::move(*c);
    run("nft delete table ip lb 2>/dev/null; nft delete table ip other 2>/dev/null");
  }
  NftablesPtr nft_;
};

TEST_F(NftablesNetns, NftListShowsWhatTheClientWroteAsThePrinterPrintsIt) {
  TableContent t = sample();
  {
    Status w = write(*nft_, t);
    ASSERT_TRUE(w.ok()) << w.message();
  }
  expect_same_lines(nft_list("lb"), print_table(t));
}

TEST_F(NftablesNetns, ReadingBackGivesTheValuesWritten) {
  TableContent t = sample();
  {
    Status w = write(*nft_, t);
    ASSERT_TRUE(w.ok()) << w.message();
  }
  auto back = read_table(*nft_, Family::kIPv4, "lb");
  ASSERT_TRUE(back.ok()) << back.error();
  ASSERT_TRUE(back->has_value());
  const TableContent& b = **back;
  EXPECT_EQ(b.table.comment, "rules of a test");
  ASSERT_EQ(b.sets.size(), t.sets.size());
  for (size_t i = 0; i < t.sets.size(); ++i) {
    EXPECT_EQ(b.sets[i].spec, t.sets[i].spec) << t.sets[i].spec.name;
    AnonymousSet want{t.sets[i].spec, t.sets[i].elements}, got{b.sets[i].spec, b.sets[i].elements};
    EXPECT_TRUE(want == got) << t.sets[i].spec.name;
  }
  ASSERT_EQ(b.chains.size(), t.chains.size());
  for (size_t i = 0; i < t.chains.size(); ++i) {
    EXPECT_EQ(b.chains[i].chain, t.chains[i].chain);
    ASSERT_EQ(b.chains[i].rules.size(), t.chains[i].rules.size()) << t.chains[i].chain.name;
    for (size_t j = 0; j < t.chains[i].rules.size(); ++j) {
      EXPECT_TRUE(b.chains[i].rules[j] == t.chains[i].rules[j])
          << t.chains[i].chain.name << " rule " << j << ": " << print_rule(b.chains[i].rules[j]) << " vs "
          << print_rule(t.chains[i].rules[j]);
      EXPECT_NE(b.chains[i].rules[j].handle, 0u);
    }
  }
}

TEST_F(NftablesNetns, NftLoadingThePrintedScriptMakesTheSameObjects) {
  // The program-driving-nft way (what kube-proxy does) and the client must agree
  // expression by expression: then the kernel holds the same ruleset either way.
  TableContent t = sample();
  const std::string path = "/tmp/knode-nft-script-" + std::to_string(::getpid()) + ".nft";
  {
    std::ofstream f(path);
    f << nft_script(t);
  }
  int rc = 0;
  std::string out = run("nft -f " + path + " 2>&1", &rc);
  std::remove(path.c_str());
  ASSERT_EQ(rc, 0) << out << "\n" << nft_script(t);
  auto back = read_table(*nft_, Family::kIPv4, "lb");
  ASSERT_TRUE(back.ok()) << back.error();
  ASSERT_TRUE(back->has_value());
  for (const auto& want : t.chains) {
    const ChainContent* got = (*back)->find_chain(want.chain.name);
    ASSERT_NE(got, nullptr) << want.chain.name;
    ASSERT_EQ(got->rules.size(), want.rules.size()) << want.chain.name;
    for (size_t j = 0; j < want.rules.size(); ++j) {
      EXPECT_TRUE(got->rules[j] == want.rules[j])
          << want.chain.name << " rule " << j << ":\n  nft made:    " << print_rule(got->rules[j])
          << "\n  knode makes: " << print_rule(want.rules[j]);
    }
  }
  for (const auto& want : t.sets) {
    const SetContent* got = (*back)->find_set(want.spec.name);
    ASSERT_NE(got, nullptr) << want.spec.name;
    EXPECT_EQ(got->spec, want.spec) << want.spec.name;
  }
}

TEST_F(NftablesNetns, RefusedBatchChangesNothingAndNamesWhatWasRefused) {
  TableContent t = sample();
  {
    Status w = write(*nft_, t);
    ASSERT_TRUE(w.ok()) << w.message();
  }
  const std::string before = nft_list("lb");
  auto tx = nft_->begin(Family::kIPv4, "lb");
  tx->add_chain(Chain{"fresh", {}, "", 0});
  tx->add_rule("fresh", RuleBuilder().jump("marker").build());
  Element bad = key_element("\x01\x02");  // two bytes for a four-byte key
  tx->add_elements("vips", std::span<const Element>(&bad, 1));
  Status s = tx->commit();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error_number(), EINVAL) << s.message();
  EXPECT_NE(s.message().find("add element ip lb vips"), std::string::npos) << s.message();
  EXPECT_EQ(nft_list("lb"), before);

  tx = nft_->begin(Family::kIPv4, "lb");
  tx->add_rule("helper", RuleBuilder().jump("nowhere").build());
  s = tx->commit();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "add rule ip lb helper: jump nowhere: No such file or directory");
  EXPECT_EQ(nft_list("lb"), before);
}

TEST_F(NftablesNetns, StaleGenerationIsRefused) {
  auto gen = nft_->generation();
  ASSERT_TRUE(gen.ok()) << gen.error();
  ASSERT_EQ(run("nft add table ip other; echo $?"), "0\n");
  auto tx = nft_->begin(Family::kIPv4, "lb", *gen);
  tx->add_table(Table{Family::kIPv4, "lb", 0, ""});
  Status s = tx->commit();
  EXPECT_EQ(s.error_number(), ERESTART) << s.message();
  EXPECT_NE(run("nft list tables"), "");
  EXPECT_EQ(run("nft list table ip lb 2>&1").find("table ip lb {"), std::string::npos);
}

TEST_F(NftablesNetns, ListingAMissingTableSaysSo) {
  auto back = read_table(*nft_, Family::kIPv4, "lb");
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_FALSE(back->has_value());
}

// ---------------------------------------------------------------- the reconciler

void describe(TableSink& sink, const TableContent& t, const std::string& owner_of_pool = "pool") {
  sink.table(t.table);
  for (const auto& s : t.sets) {
    if (s.spec.flags & NFT_SET_INTERVAL) {
      sink.set_with_elements(s.spec, s.elements, "");
    } else {
      sink.set(s.spec, !(s.spec.flags & NFT_SET_EVAL), "");
    }
  }
  for (const auto& c : t.chains) {
    sink.chain(c.chain, c.rules, c.chain.name.rfind("backend", 0) == 0 ? owner_of_pool : "");
  }
  for (const auto& s : t.sets) {
    if (s.spec.flags & NFT_SET_INTERVAL) continue;
    for (const auto& e : s.elements) sink.element(s.spec.name, e, "");
  }
}

std::map<std::string, std::vector<uint64_t>> handles(Nftables& nft) {
  std::map<std::string, std::vector<uint64_t>> out;
  auto t = read_table(nft, Family::kIPv4, "lb");
  if (!t.ok() || !t->has_value()) return out;
  for (const auto& c : (*t)->chains) {
    for (const auto& r : c.rules) out[c.chain.name].push_back(r.handle);
  }
  return out;
}

TEST_F(NftablesNetns, ReconcilerChangesOnlyWhatDiffers) {
  ReconcilerOptions o;
  o.table = "lb";
  o.stale_chain_delay = std::chrono::milliseconds(0);
  Reconciler r(*nft_, o);
  TableContent t = sample();
  ASSERT_TRUE(r.begin_full().ok());
  describe(r, t);
  ReconcileStats st;
  {
    Status c = r.commit(&st);
    ASSERT_TRUE(c.ok()) << c.message();
  }
  EXPECT_EQ(st.chains_added, t.chains.size());
  expect_same_lines(nft_list("lb"), print_table(t));
  auto before = handles(*nft_);
  auto gen = nft_->generation();

  // Nothing changed: nothing is sent, and the generation does not move.
  ASSERT_TRUE(r.begin_full().ok());
  describe(r, t);
  {
    Status c = r.commit(&st);
    ASSERT_TRUE(c.ok()) << c.message();
  }
  EXPECT_EQ(st.operations, 0u);
  EXPECT_FALSE(st.read_kernel);
  EXPECT_EQ(*nft_->generation(), *gen);

  // backend-2 gets a new target (a partial sync of its owner): only it is rewritten, the
  // other chains keep their rules' handles.
  t.chains[1].rules = {RuleBuilder().meta_l4proto(17).dnat_to(ip("10.244.0.7"), 53).build()};
  ASSERT_TRUE(r.begin_partial({"pool"}));
  for (const auto& c : t.chains) {
    if (c.chain.name.rfind("backend", 0) == 0) r.chain(c.chain, c.rules, "pool");
  }
  {
    Status c = r.commit(&st);
    ASSERT_TRUE(c.ok()) << c.message();
  }
  EXPECT_EQ(st.chains_rewritten, 1u);
  auto after = handles(*nft_);
  for (const auto& [chain, hs] : before) {
    if (chain == "backend-2") {
      EXPECT_NE(after[chain], hs);
    } else {
      EXPECT_EQ(after[chain], hs) << chain << " was touched by a partial sync of another chain";
    }
  }
  expect_same_lines(nft_list("lb"), print_table(t));

  // A hand edit: the generation moves, the next full sync reads the table and repairs
  // just that chain.
  ASSERT_EQ(run("nft flush chain ip lb marker; echo $?"), "0\n");
  ASSERT_TRUE(r.begin_full().ok());
  describe(r, t);
  {
    Status c = r.commit(&st);
    ASSERT_TRUE(c.ok()) << c.message();
  }
  EXPECT_TRUE(st.read_kernel);
  EXPECT_EQ(st.chains_rewritten, 1u);
  EXPECT_EQ(st.operations, 1u);  // the rule back in the (now empty) chain
  expect_same_lines(nft_list("lb"), print_table(t));

  // A chain no longer described is flushed and (with no delay) deleted in the same batch
  // that drops the last reference to it.
  t.chains.erase(t.chains.begin() + 1);
  for (auto& c : t.chains) {
    if (c.chain.name == "pool-a") c.rules.back() = RuleBuilder().numgen_random_vmap({Verdict::Goto("backend-1")}).build();
    if (c.chain.name == "pool-b") c.rules = {RuleBuilder().goto_("backend-1").build()};
  }
  ASSERT_TRUE(r.begin_full().ok());
  describe(r, t);
  {
    Status c = r.commit(&st);
    ASSERT_TRUE(c.ok()) << c.message();
  }
  EXPECT_EQ(st.chains_deleted, 1u);
  EXPECT_EQ(nft_list("lb").find("backend-2"), std::string::npos);
}

// A slot map changes by its elements alone, whatever the number of endpoints before and
// after: the kernel refuses a start element right after another, so the reconciler
// flushes the map and refills it in the same batch; the rule that reads it and every
// chain keep their handles, and nothing else is written.
TEST_F(NftablesNetns, SlotMapChangesByItsElementsAloneWithoutTouchingARule) {
  ReconcilerOptions o;
  o.table = "lb";
  Reconciler r(*nft_, o);
  TableContent t = sample();
  auto sync = [&](ReconcileStats* st) {
    EXPECT_TRUE(r.begin_full().ok());
    describe(r, t);
    Status c = r.commit(st);
    EXPECT_TRUE(c.ok()) << c.message();
  };
  ReconcileStats st;
  sync(&st);
  const auto before = handles(*nft_);
  SetContent* slots = nullptr;
  for (auto& s : t.sets) {
    if (s.spec.name == "slots") slots = &s;
  }
  ASSERT_NE(slots, nullptr);
  for (int n : {2, 7, 16, 1, 10, 3}) {
    slots->elements = numgen_slot_elements(slot_targets(n), kSlots);
    sync(&st);
    EXPECT_EQ(st.sets_flushed, 1u) << n;
    EXPECT_EQ(st.elements_added, 2u * n) << n;
    EXPECT_EQ(st.chains_rewritten + st.chains_added, 0u) << n;
    EXPECT_EQ(st.operations, 2u) << n << ": a flush and one add of the elements";
    EXPECT_EQ(handles(*nft_), before) << n << " endpoints: a rule was rewritten";
    expect_same_lines(nft_list("lb"), print_table(t));
  }
  // The same endpoints again: nothing is sent.
  sync(&st);
  EXPECT_EQ(st.operations, 0u);
  // Each range as nft lists it: 720720 slots over 7 endpoints, 102960 each.
  slots->elements = numgen_slot_elements(slot_targets(7), kSlots);
  sync(&st);
  EXPECT_NE(nft_list("lb").find("0-102959 : 10.244.1.1 . 8080, 102960-205919 : 10.244.1.2 . 8080"), std::string::npos)
      << nft_list("lb");
}

TEST_F(NftablesNetns, RestartedReconcilerAdoptsTheTable) {
  ReconcilerOptions o;
  o.table = "lb";
  TableContent t = sample();
  {
    Reconciler r(*nft_, o);
    ASSERT_TRUE(r.begin_full().ok());
    describe(r, t);
    {
      Status c = r.commit();
      ASSERT_TRUE(c.ok()) << c.message();
    }
  }
  auto before = handles(*nft_);
  Reconciler fresh(*nft_, o);
  ASSERT_TRUE(fresh.begin_full().ok());
  describe(fresh, t);
  ReconcileStats st;
  ASSERT_TRUE(fresh.commit(&st).ok());
  EXPECT_TRUE(st.read_kernel);
  EXPECT_EQ(st.operations, 0u) << "adoption rewrote something";
  EXPECT_EQ(handles(*nft_), before);
}

TEST_F(NftablesNetns, RemovingTheTableTwiceIsFine) {
  {
    Status w = write(*nft_, sample());
    ASSERT_TRUE(w.ok()) << w.message();
  }
  ReconcilerOptions o;
  o.table = "lb";
  Reconciler r(*nft_, o);
  ASSERT_TRUE(r.remove_table().ok());
  EXPECT_EQ(run("nft list table ip lb 2>&1").find("table ip lb {"), std::string::npos);
  ASSERT_TRUE(r.remove_table().ok());
}

}  // namespace
