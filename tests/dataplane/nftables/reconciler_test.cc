// The nf_tables Reconciler against the in-memory fake: a partial sync removes exactly what
// its owners no longer describe (found through its owner index, not a scan of the
// record), objects that change owner are tracked under the new one, and owner names that
// come and go (one per endpoint) do not pile up.
#include <gtest/gtest.h>
#include <linux/netfilter.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <string>

#include "fakes/fake_nftables.h"
#include "knode/dataplane/nftables/exprs.h"
#include "knode/dataplane/nftables/reconciler.h"

using namespace knode;
using namespace knode::nftables;

namespace {

Element key(uint32_t n) { return key_element(host_u32(n)); }

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest() : r_(fake_, options()) {}
  static ReconcilerOptions options() {
    ReconcilerOptions o;
    o.table = "t";
    return o;
  }
  SetSpec set_spec() {
    SetSpec s;
    s.name = "s";
    s.key_type = static_cast<uint32_t>(Datatype::kInteger);
    s.key_len = 4;
    return s;
  }
  void full(const std::vector<std::pair<uint32_t, std::string>>& elements) {
    ASSERT_TRUE(r_.begin_full().ok());
    Table t;
    t.name = "t";
    r_.table(t);
    r_.set(set_spec(), true, "");
    for (const auto& [k, owner] : elements) r_.element("s", key(k), owner);
    ASSERT_TRUE(r_.commit().ok());
  }
  void partial(const std::set<std::string>& owners, const std::vector<std::pair<uint32_t, std::string>>& elements) {
    ASSERT_TRUE(r_.begin_partial(owners));
    for (const auto& [k, owner] : elements) r_.element("s", key(k), owner);
    ASSERT_TRUE(r_.commit().ok());
  }
  std::vector<uint32_t> keys() {
    std::vector<uint32_t> out;
    for (const auto& e : fake_.table(Family::kIPv4, "t")->find_set("s")->elements) {
      uint32_t v = 0;
      std::memcpy(&v, e.key.data(), 4);
      out.push_back(v);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  FakeNftables fake_;
  Reconciler r_;
};

TEST_F(ReconcilerTest, PartialSyncRemovesWhatItsOwnersNoLongerDescribe) {
  full({{1, "a"}, {2, "a"}, {3, "b"}});
  partial({"a"}, {{1, "a"}});
  EXPECT_EQ(keys(), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(fake_.last_ops, (std::vector<std::string>{"delete element s 2"}));
  // b's element is not a's to remove, even described by nobody.
  partial({"a"}, {});
  EXPECT_EQ(keys(), (std::vector<uint32_t>{3}));
}

TEST_F(ReconcilerTest, AnOwnerLosingSeveralElementsAtOnceLosesThemAll) {
  full({{1, "a"}, {2, "a"}, {3, "a"}, {4, "a"}, {5, "b"}});
  partial({"a"}, {{3, "a"}});
  EXPECT_EQ(keys(), (std::vector<uint32_t>{3, 5}));
  partial({"a"}, {});
  EXPECT_EQ(keys(), (std::vector<uint32_t>{5}));
}

TEST_F(ReconcilerTest, AChainWantedAgainWhileFlushedIsRemovedWhenDroppedAgain) {
  ReconcilerOptions o = options();
  o.stale_chain_delay = std::chrono::seconds(1);
  auto now = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  o.now = [&] { return now; };
  Reconciler r(fake_, o);
  Chain c;
  c.name = "service-x";
  std::vector<Rule> rules = {RuleBuilder().accept().build()};
  auto chains = [&] {
    std::vector<std::string> out;
    for (const auto& ch : fake_.table(Family::kIPv4, "t")->chains) {
      out.push_back(ch.chain.name + "/" + std::to_string(ch.rules.size()));
    }
    return out;
  };
  ASSERT_TRUE(r.begin_full().ok());
  Table t;
  t.name = "t";
  r.table(t);
  r.chain(c, rules, "x");
  ASSERT_TRUE(r.commit().ok());
  ASSERT_TRUE(r.begin_partial({"x"}));  // x wants nothing: flushed, deleted later
  ASSERT_TRUE(r.commit().ok());
  EXPECT_EQ(chains(), (std::vector<std::string>{"service-x/0"}));
  ASSERT_TRUE(r.begin_partial({"x"}));  // wanted again before the delay
  r.chain(c, rules, "x");
  ASSERT_TRUE(r.commit().ok());
  EXPECT_EQ(chains(), (std::vector<std::string>{"service-x/1"}));
  ASSERT_TRUE(r.begin_partial({"x"}));  // and dropped again
  ASSERT_TRUE(r.commit().ok());
  EXPECT_EQ(chains(), (std::vector<std::string>{"service-x/0"}));
  now += std::chrono::seconds(2);
  ASSERT_TRUE(r.begin_partial({}));
  ASSERT_TRUE(r.commit().ok());
  EXPECT_EQ(chains(), (std::vector<std::string>{}));
}

TEST_F(ReconcilerTest, AnElementThatChangesOwnerGoesWithItsNewOwner) {
  full({{1, "a"}});
  partial({"b"}, {{1, "b"}});  // now b's (same value: nothing to send)
  partial({"a"}, {});          // a no longer holds it
  EXPECT_EQ(keys(), (std::vector<uint32_t>{1}));
  partial({"b"}, {});
  EXPECT_EQ(keys(), (std::vector<uint32_t>{}));
  // And back: a takes it, b gives it up, a keeps it.
  partial({"a"}, {{1, "a"}});
  partial({"b"}, {{1, "b"}});
  partial({"a"}, {{1, "a"}});
  partial({"b"}, {});
  EXPECT_EQ(keys(), (std::vector<uint32_t>{1}));
}

TEST_F(ReconcilerTest, OwnersThatComeAndGoDoNotPileUp) {
  full({{0, "keep"}});
  for (uint32_t i = 1; i <= 20000; ++i) {
    const std::string owner = "hairpin " + std::to_string(i);
    partial({owner}, {{i, owner}});
    partial({owner}, {});
  }
  EXPECT_EQ(keys(), (std::vector<uint32_t>{0}));
  EXPECT_LE(r_.owners(), 8192u);
  // The surviving owner still owns its element after the ids were renumbered.
  partial({"keep"}, {});
  EXPECT_EQ(keys(), (std::vector<uint32_t>{}));
}

}  // namespace

namespace {

// A set described whole: unchanged elements send nothing, any change flushes and refills
// it, a new spec recreates and refills it, and the same elements after a recreation are
// not mistaken for what the table still holds.
TEST(ReconcilerWholeSet, RefilledWhenItsElementsOrItsSpecChange) {
  FakeNftables fake;
  ReconcilerOptions o;
  o.table = "t";
  Reconciler r(fake, o);
  auto targets = [](int n) {
    std::vector<std::pair<net::IPAddress, uint16_t>> out;
    for (int i = 0; i < n; ++i) out.emplace_back(net::IPAddress::V4(0x0a000001u + static_cast<uint32_t>(i)), 80);
    return numgen_slot_elements(out, kSlots);
  };
  auto sync = [&](const SetSpec& spec, const std::vector<Element>& elements, bool whole = true) {
    ReconcileStats st;
    EXPECT_TRUE(r.begin_full().ok());
    Table t;
    t.name = "t";
    r.table(t);
    if (whole) {
      r.set_with_elements(spec, elements, "svc");
    } else {
      r.set(spec, true, "svc");
    }
    EXPECT_TRUE(r.commit(&st).ok());
    return st;
  };
  auto held = [&] { return fake.table(Family::kIPv4, "t")->find_set("m")->elements.size(); };
  const SetSpec spec = numgen_slot_map("m", kSlots);
  auto st = sync(spec, targets(3));
  EXPECT_EQ(st.sets_added, 1u);
  EXPECT_EQ(st.sets_flushed, 0u);
  EXPECT_EQ(held(), 6u);
  st = sync(spec, targets(3));
  EXPECT_EQ(st.operations, 0u);
  st = sync(spec, targets(4));
  EXPECT_EQ(st.sets_flushed, 1u);
  EXPECT_EQ(held(), 8u);
  EXPECT_EQ(fake.last_ops.front(), "flush set m");
  // Another spec: the set is recreated and filled, not flushed.
  SetSpec other = spec;
  other.userdata.comment = "another";
  st = sync(other, targets(4));
  EXPECT_EQ(st.sets_added, 1u);
  EXPECT_EQ(st.sets_flushed, 0u);
  EXPECT_EQ(held(), 8u);
  // Recreated empty by a description without elements, then described whole again with
  // the same elements as before: they are added, the record having forgotten them.
  sync(spec, {}, /*whole=*/false);
  EXPECT_EQ(held(), 0u);
  sync(spec, targets(4));
  EXPECT_EQ(held(), 8u);
}

}  // namespace

static Rule jump_rule(const std::string& chain) { return RuleBuilder().jump(chain).build(); }
static Rule accept_rule() { return RuleBuilder().accept().build(); }

// A big first sync into a missing table: the batches ahead hold no base chain rule, and a
// base chain whose policy would drop traffic while it is empty is not created before the
// last batch; the record then matches the kernel's generation (a second full sync reads
// nothing and sends nothing).
// Batches ahead of 4 operations, into table "t".
class ReconcilerFirstSync : public ::testing::Test {
 protected:
  ReconcilerFirstSync() : r(fake, options()) {}
  static ReconcilerOptions options() {
    ReconcilerOptions o;
    o.table = "t";
    o.first_sync_batch_ops = 4;
    return o;
  }
  void table() {
    Table t;
    t.name = "t";
    r.table(t);
  }
  FakeNftables fake;
  Reconciler r;
};

TEST_F(ReconcilerFirstSync, BaseChainsLinkEverythingInTheLastBatchAndADropPolicyWaitsWhole) {
  auto describe = [&] {
    table();
    Chain in{"in", BaseChain{"filter", NF_INET_LOCAL_IN, 0, NF_DROP}};
    Chain out{"out", BaseChain{"filter", NF_INET_LOCAL_OUT, 0, NF_ACCEPT}};
    r.chain(in, {jump_rule("c0")}, "");
    r.chain(out, {jump_rule("c0")}, "");
    for (int i = 0; i < 12; ++i) {
      const std::string owner = "o" + std::to_string(i);
      r.chain(Chain{"c" + std::to_string(i)}, {accept_rule(), accept_rule()}, i == 0 ? "" : owner);
    }
  };
  struct Seen {
    bool in = false, out = false;
    size_t base_rules = 0, chains = 0;
  };
  std::vector<Seen> seen;
  fake.after_commit = [&] {
    Seen s;
    for (const auto& c : fake.table(Family::kIPv4, "t")->chains) {
      s.in |= c.chain.name == "in";
      s.out |= c.chain.name == "out";
      if (c.chain.base) s.base_rules += c.rules.size();
      ++s.chains;
    }
    seen.push_back(s);
  };
  ASSERT_TRUE(r.begin_full().ok());
  describe();
  ReconcileStats st;
  ASSERT_TRUE(r.commit(&st).ok());
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(st.batches, seen.size());
  for (size_t i = 0; i + 1 < seen.size(); ++i) {
    EXPECT_FALSE(seen[i].in) << "batch " << i + 1 << " created the drop-policy chain";
    EXPECT_TRUE(seen[i].out) << "batch " << i + 1;
    EXPECT_EQ(seen[i].base_rules, 0u) << "batch " << i + 1;
  }
  EXPECT_TRUE(seen.back().in);
  EXPECT_EQ(seen.back().base_rules, 2u);
  EXPECT_EQ(seen.back().chains, 14u);
  const int lists = fake.lists, commits = fake.commits;
  ASSERT_TRUE(r.begin_full().ok());
  describe();
  ASSERT_TRUE(r.commit(&st).ok());
  EXPECT_EQ(fake.lists, lists) << "the record did not match the generation the batches left";
  EXPECT_EQ(fake.commits, commits);
  EXPECT_EQ(st.operations, 0u);
}

// A batch ahead refused: nothing more is sent, the error is the sync's, and the next full
// sync reads the table back and completes it in one batch.
TEST_F(ReconcilerFirstSync, ARefusedBatchAheadStopsTheSyncAndTheNextCompletesIt) {
  auto describe = [&] {
    table();
    r.chain(Chain{"in", BaseChain{"filter", NF_INET_LOCAL_IN, 0, NF_ACCEPT}}, {jump_rule("c0")}, "");
    for (int i = 0; i < 12; ++i) r.chain(Chain{"c" + std::to_string(i)}, {accept_rule()}, "o" + std::to_string(i));
  };
  fake.fail_commit_after(1, Status::Error("add chain: Invalid argument", EINVAL));
  ASSERT_TRUE(r.begin_full().ok());
  describe();
  Status s = r.commit();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Invalid argument"), std::string::npos) << s.message();
  EXPECT_EQ(fake.commits, 1);
  EXPECT_EQ(fake.failed_commits, 1);
  for (const auto& c : fake.table(Family::kIPv4, "t")->chains) EXPECT_TRUE(c.rules.empty() || !c.chain.base);
  ASSERT_TRUE(r.begin_full().ok());
  describe();
  ReconcileStats st;
  ASSERT_TRUE(r.commit(&st).ok());
  EXPECT_EQ(st.batches, 1u);
  EXPECT_EQ(fake.table(Family::kIPv4, "t")->chains.size(), 13u);
}
