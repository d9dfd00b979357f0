// The nf_tables Reconciler against the in-memory fake: a partial sync removes exactly what
// its owners no longer describe (found through its owner index, not a scan of the
// record), objects that change owner are tracked under the new one, and owner names that
// come and go (one per endpoint) do not pile up.
#include <gtest/gtest.h>

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
