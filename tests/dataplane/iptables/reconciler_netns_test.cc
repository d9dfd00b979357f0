// The Reconciler against the real kernel of a private netns, checked with
// iptables-legacy-save.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <random>
#include <set>

#include "knode/dataplane/iptables/reconciler.h"
#include "support/netns_util.h"

namespace knode::iptables {
namespace {

using testing::run;
using testing::saved;
using Lines = std::vector<std::string>;

Rule parse(const std::string& s) {
  auto r = parse_rule(s);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : Rule{};
}

const char* kPortals = "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES";
const char* kPostrouting =
    "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING";

DesiredTable nat(const std::map<std::string, Lines>& chains) {
  DesiredTable d;
  d.table = "nat";
  d.owned_prefixes = {"KUBE-"};
  for (const auto& [c, lines] : chains) {
    auto& v = d.chains[c];
    for (const auto& l : lines) v.push_back(parse(l));
  }
  d.jumps.push_back({"PREROUTING", parse(kPortals), JumpRule::kInsertFirst});
  d.jumps.push_back({"OUTPUT", parse(kPortals), JumpRule::kInsertFirst});
  d.jumps.push_back({"POSTROUTING", parse(kPostrouting), JumpRule::kInsertFirst});
  return d;
}

std::map<std::string, Lines> two_services() {
  return {
      {"KUBE-SERVICES",
       {"-d 10.96.0.10/32 -p tcp -m comment --comment \"default/a:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-A",
        "-d 10.96.0.11/32 -p udp -m comment --comment \"default/b:dns cluster IP\" -m udp --dport 53 -j KUBE-SVC-B"}},
      {"KUBE-MARK-MASQ", {"-j MARK --set-xmark 0x4000/0x4000"}},
      {"KUBE-POSTROUTING",
       {"-m mark ! --mark 0x4000/0x4000 -j RETURN", "-j MARK --set-xmark 0x4000/0x0",
        "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"}},
      {"KUBE-SVC-A",
       {"-m comment --comment \"default/a:http -> 10.244.0.5:8080\" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A1",
        "-m comment --comment \"default/a:http -> 10.244.0.6:8080\" -j KUBE-SEP-A2"}},
      {"KUBE-SEP-A1",
       {"-s 10.244.0.5/32 -m comment --comment \"default/a:http\" -j KUBE-MARK-MASQ",
        "-p tcp -m comment --comment \"default/a:http\" -m tcp -j DNAT --to-destination 10.244.0.5:8080"}},
      {"KUBE-SEP-A2",
       {"-s 10.244.0.6/32 -m comment --comment \"default/a:http\" -j KUBE-MARK-MASQ",
        "-p tcp -m comment --comment \"default/a:http\" -m tcp -j DNAT --to-destination 10.244.0.6:8080"}},
      {"KUBE-SVC-B", {"-m comment --comment \"default/b:dns -> 10.244.0.7:53\" -j KUBE-SEP-B1"}},
      {"KUBE-SEP-B1",
       {"-s 10.244.0.7/32 -m comment --comment \"default/b:dns\" -j KUBE-MARK-MASQ",
        "-p udp -m comment --comment \"default/b:dns\" -m udp -j DNAT --to-destination 10.244.0.7:53"}},
  };
}

// What iptables-legacy-save should print for `chains` with our jumps only.
Lines expected(const std::map<std::string, Lines>& chains, const Lines& extra_builtin = {}) {
  Lines out = {":PREROUTING ACCEPT", ":INPUT ACCEPT", ":OUTPUT ACCEPT", ":POSTROUTING ACCEPT"};
  for (const auto& [c, _] : chains) out.push_back(":" + c + " -");
  out.push_back(std::string("-A PREROUTING ") + kPortals);
  out.push_back(std::string("-A OUTPUT ") + kPortals);
  out.push_back(std::string("-A POSTROUTING ") + kPostrouting);
  for (const auto& l : extra_builtin) out.push_back(l);
  for (const auto& [c, lines] : chains) {
    for (const auto& l : lines) out.push_back("-A " + c + " " + l);
  }
  return out;
}

bool contains(const Lines& lines, const std::string& l) {
  return std::find(lines.begin(), lines.end(), l) != lines.end();
}

DesiredTable streamed_some(DesiredTable d, const std::function<bool(const std::string&)>& pick,
                           std::shared_ptr<int> calls, bool tamper);

DesiredTable streamed_some(DesiredTable d, const std::function<bool(const std::string&)>& pick) {
  return streamed_some(std::move(d), pick, nullptr, false);
}

class IptablesReconciler : public ::testing::Test {
 protected:
  void SetUp() override {
    KNODE_REQUIRE_NETNS();
    testing::reset_tables();
  }
};

TEST_F(IptablesReconciler, WritesWhatIptablesSaveShows) {
  ReconcileStats st;
  ASSERT_TRUE(reconcile(nat(two_services()), {}, &st).ok());
  EXPECT_EQ(saved("nat"), expected(two_services()));
  EXPECT_TRUE(st.committed);
  EXPECT_EQ(st.chains_created, 8u);
  EXPECT_EQ(st.jumps_added, 3u);
  EXPECT_EQ(st.rules_written, 15u + 3u);
}

TEST_F(IptablesReconciler, SecondReconcileChangesNothing) {
  ASSERT_TRUE(reconcile(nat(two_services())).ok());
  auto before = run("iptables-legacy-save -t nat | grep -v '^#'");
  for (int fresh = 0; fresh < 2; ++fresh) {
    ReconcileStats st;
    Status s = fresh ? reconcile(nat(two_services()), {}, &st) : Status::Ok();
    if (!fresh) {
      Reconciler r;
      ReconcileOptions cached;
      cached.trust_cache = true;
      ASSERT_TRUE(r.reconcile(nat(two_services())).ok());
      s = r.reconcile(nat(two_services()), cached, &st);  // from its cache
    }
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_FALSE(st.committed);
    EXPECT_EQ(st.chains_created + st.chains_rewritten + st.chains_deleted + st.jumps_added +
                  st.jumps_removed + st.rules_written,
              0u);
  }
  EXPECT_EQ(run("iptables-legacy-save -t nat | grep -v '^#'"), before);
}

TEST_F(IptablesReconciler, ForeignChainsAndRulesSurvive) {
  run("iptables-legacy -t nat -N DOCKER");
  run("iptables-legacy -t nat -A DOCKER -i docker0 -j RETURN");
  run("iptables-legacy -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER");
  run("iptables-legacy -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE");
  auto check = [] {
    Lines s = saved("nat");
    EXPECT_TRUE(contains(s, ":DOCKER -"));
    EXPECT_TRUE(contains(s, "-A DOCKER -i docker0 -j RETURN"));
    EXPECT_TRUE(contains(s, "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"));
    EXPECT_TRUE(contains(s, "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"));
  };
  ASSERT_TRUE(reconcile(nat(two_services())).ok());
  check();
  // Our jump goes first, Docker's stays after it.
  Lines s = saved("nat");
  auto ours = std::find(s.begin(), s.end(), std::string("-A PREROUTING ") + kPortals);
  auto docker = std::find(s.begin(), s.end(), "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER");
  EXPECT_LT(ours, docker);
  auto fewer = two_services();
  fewer.erase("KUBE-SVC-B");
  fewer.erase("KUBE-SEP-B1");
  fewer["KUBE-SERVICES"].pop_back();
  ASSERT_TRUE(reconcile(nat(fewer)).ok());
  check();
  ASSERT_TRUE(cleanup(nat({})).ok());
  check();
}

TEST_F(IptablesReconciler, RemovedChainsDisappear) {
  ASSERT_TRUE(reconcile(nat(two_services())).ok());
  auto fewer = two_services();
  fewer.erase("KUBE-SVC-B");
  fewer.erase("KUBE-SEP-B1");
  fewer["KUBE-SERVICES"].pop_back();
  ReconcileStats st;
  ASSERT_TRUE(reconcile(nat(fewer), {}, &st).ok());
  EXPECT_EQ(saved("nat"), expected(fewer));
  EXPECT_EQ(st.chains_deleted, 2u);
  EXPECT_EQ(st.chains_rewritten, 1u);
  EXPECT_EQ(st.chains_created, 0u);
  EXPECT_EQ(st.rules_written, 1u);
}

TEST_F(IptablesReconciler, PartialModeTouchesOnlyNamedChains) {
  Reconciler r;
  ASSERT_TRUE(r.reconcile(nat(two_services())).ok());
  // Endpoint 10.244.0.6 goes away; a third chain changes too but is not named.
  auto next = two_services();
  next["KUBE-SVC-A"] = {"-m comment --comment \"default/a:http -> 10.244.0.5:8080\" -j KUBE-SEP-A1"};
  next.erase("KUBE-SEP-A2");
  next["KUBE-SVC-B"] = {"-j RETURN"};  // not named: must stay as it is
  ReconcileOptions partial;
  partial.only_chains = std::set<std::string>{"KUBE-SVC-A", "KUBE-SEP-A2"};
  partial.trust_cache = true;
  ReconcileStats st;
  Status s = r.reconcile(nat(next), partial, &st);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(st.chains_rewritten, 1u);
  EXPECT_EQ(st.chains_deleted, 1u);
  EXPECT_EQ(st.rules_written, 1u);
  auto want = next;
  want["KUBE-SVC-B"] = two_services()["KUBE-SVC-B"];
  EXPECT_EQ(saved("nat"), expected(want));
  // A full sync then brings KUBE-SVC-B along.
  ASSERT_TRUE(r.reconcile(nat(next), {}, &st).ok());
  EXPECT_EQ(st.chains_rewritten, 1u);
  EXPECT_EQ(saved("nat"), expected(next));
}

TEST_F(IptablesReconciler, PartialModeRefusesToDeleteAChainStillJumpedTo) {
  ASSERT_TRUE(reconcile(nat(two_services())).ok());
  auto next = two_services();
  next.erase("KUBE-SEP-A2");  // but KUBE-SVC-A still jumps to it
  ReconcileOptions partial;
  partial.only_chains = std::set<std::string>{"KUBE-SEP-A2"};
  Status s = reconcile(nat(next), partial);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("KUBE-SVC-A still jumps to KUBE-SEP-A2"), std::string::npos) << s.message();
  EXPECT_EQ(saved("nat"), expected(two_services()));
}

TEST_F(IptablesReconciler, JumpRulesExistExactlyOnce) {
  run(std::string("iptables-legacy -t nat -N KUBE-SERVICES; iptables-legacy -t nat -N KUBE-OLD"));
  for (int i = 0; i < 2; ++i) run(std::string("iptables-legacy -t nat -A OUTPUT ") + kPortals);
  run("iptables-legacy -t nat -A PREROUTING -j KUBE-OLD");  // stale, owned
  ReconcileStats st;
  ASSERT_TRUE(reconcile(nat(two_services()), {}, &st).ok());
  EXPECT_EQ(saved("nat"), expected(two_services()));
  EXPECT_EQ(st.jumps_removed, 2u);  // the duplicate and KUBE-OLD's
  EXPECT_EQ(st.jumps_added, 2u);
  EXPECT_EQ(st.chains_deleted, 1u);
}

// The CNI's way: one pod's chains and its own jump at a time.
TEST_F(IptablesReconciler, PartialModeKeepsOtherOwnedJumps) {
  auto pod = [](const std::string& chain, int port) {
    DesiredTable d;
    d.table = "nat";
    d.owned_prefixes = {"KNODE-CNI-"};
    d.chains[chain] = {parse("-p tcp -m tcp --dport " + std::to_string(port) +
                             " -j DNAT --to-destination 10.88.0." + std::to_string(port % 200) + ":80")};
    d.jumps = {{"PREROUTING", parse("-m addrtype --dst-type LOCAL -j " + chain), JumpRule::kAppend}};
    return d;
  };
  ReconcileOptions a_only, b_only;
  a_only.only_chains = std::set<std::string>{"KNODE-CNI-A"};
  b_only.only_chains = std::set<std::string>{"KNODE-CNI-B"};
  ASSERT_TRUE(reconcile(pod("KNODE-CNI-A", 8080), a_only).ok());
  ASSERT_TRUE(reconcile(pod("KNODE-CNI-B", 8081), b_only).ok());
  Lines s = saved("nat");
  EXPECT_TRUE(contains(s, "-A PREROUTING -m addrtype --dst-type LOCAL -j KNODE-CNI-A"));
  EXPECT_TRUE(contains(s, "-A PREROUTING -m addrtype --dst-type LOCAL -j KNODE-CNI-B"));
  // Pod A goes: its chain named, absent from chains and jumps.
  DesiredTable gone;
  gone.table = "nat";
  gone.owned_prefixes = {"KNODE-CNI-"};
  ReconcileStats st;
  ASSERT_TRUE(reconcile(gone, a_only, &st).ok());
  s = saved("nat");
  EXPECT_FALSE(contains(s, ":KNODE-CNI-A -"));
  EXPECT_FALSE(contains(s, "-A PREROUTING -m addrtype --dst-type LOCAL -j KNODE-CNI-A"));
  EXPECT_TRUE(contains(s, "-A PREROUTING -m addrtype --dst-type LOCAL -j KNODE-CNI-B"));
  EXPECT_TRUE(contains(s, "-A KNODE-CNI-B -p tcp -m tcp --dport 8081 -j DNAT --to-destination 10.88.0.81:80"));
  EXPECT_EQ(st.jumps_removed, 1u);
  EXPECT_EQ(st.chains_deleted, 1u);
}

TEST_F(IptablesReconciler, AppendedJumpGoesLast) {
  run("iptables-legacy -t nat -A POSTROUTING -o eth9 -j MASQUERADE");
  auto d = nat(two_services());
  d.jumps.back().position = JumpRule::kAppend;
  ASSERT_TRUE(reconcile(d).ok());
  Lines s = saved("nat");
  auto foreign = std::find(s.begin(), s.end(), "-A POSTROUTING -o eth9 -j MASQUERADE");
  auto ours = std::find(s.begin(), s.end(), std::string("-A POSTROUTING ") + kPostrouting);
  ASSERT_NE(ours, s.end());
  EXPECT_LT(foreign, ours);
}

TEST_F(IptablesReconciler, CleanupRemovesOwnedChainsAndJumps) {
  ASSERT_TRUE(reconcile(nat(two_services())).ok());
  ReconcileStats st;
  ASSERT_TRUE(cleanup(nat({}), &st).ok());
  EXPECT_EQ(saved("nat"), (Lines{":PREROUTING ACCEPT", ":INPUT ACCEPT", ":OUTPUT ACCEPT", ":POSTROUTING ACCEPT"}));
  EXPECT_EQ(st.chains_deleted, 8u);
  EXPECT_EQ(st.jumps_removed, 3u);
  ASSERT_TRUE(cleanup(nat({}), &st).ok());  // idempotent
  EXPECT_FALSE(st.committed);
}

TEST_F(IptablesReconciler, ForeignJumpKeepsOwnedChainAliveButEmpty) {
  ASSERT_TRUE(reconcile(nat(two_services())).ok());
  run("iptables-legacy -t nat -N DOCKER; iptables-legacy -t nat -A DOCKER -j KUBE-SVC-B");
  ASSERT_TRUE(cleanup(nat({})).ok());
  Lines s = saved("nat");
  EXPECT_TRUE(contains(s, ":KUBE-SVC-B -"));
  EXPECT_TRUE(contains(s, "-A DOCKER -j KUBE-SVC-B"));
  EXPECT_FALSE(contains(s, ":KUBE-SEP-B1 -"));
}

TEST_F(IptablesReconciler, CachedReconcilerSeesForeignChanges) {
  Reconciler r;
  ASSERT_TRUE(r.reconcile(nat(two_services())).ok());
  run("iptables-legacy -t nat -N DOCKER; iptables-legacy -t nat -A DOCKER -j RETURN");
  auto next = two_services();
  next["KUBE-SVC-B"].push_back("-j RETURN");
  ASSERT_TRUE(r.reconcile(nat(next)).ok());
  Lines s = saved("nat");
  EXPECT_TRUE(contains(s, "-A DOCKER -j RETURN"));
  EXPECT_TRUE(contains(s, "-A KUBE-SVC-B -j RETURN"));
}

TEST_F(IptablesReconciler, SameShapeForeignChangeSurvivesByDefault) {
  run("iptables-legacy -t nat -N DOCKER; iptables-legacy -t nat -A DOCKER -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:80");
  Reconciler r;
  ASSERT_TRUE(r.reconcile(nat(two_services())).ok());
  // Docker moves the container: same size, same entry count.
  run("iptables-legacy -t nat -R DOCKER 1 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.3:80");
  auto next = two_services();
  next["KUBE-SVC-B"].push_back("-j RETURN");
  ASSERT_TRUE(r.reconcile(nat(next)).ok());
  Lines s = saved("nat");
  EXPECT_TRUE(contains(s, "-A DOCKER -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.3:80"));
  EXPECT_TRUE(contains(s, "-A KUBE-SVC-B -j RETURN"));
}

TEST_F(IptablesReconciler, WaitsForTheXtablesLock) {
  // iptables -w semantics: someone else holds /run/xtables.lock.
  int rc = 0;
  run("flock --version >/dev/null 2>&1", &rc);
  if (rc != 0) GTEST_SKIP() << "flock(1) is missing";
  run("(flock /run/xtables.lock sleep 0.5 >/dev/null 2>&1 &) ; sleep 0.1");
  ReconcileOptions quick;
  quick.lock_wait_ms = 100;
  Status s = reconcile(nat(two_services()), quick);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("xtables.lock"), std::string::npos) << s.message();
  ReconcileOptions patient;
  patient.lock_wait_ms = 5000;
  s = reconcile(nat(two_services()), patient);
  EXPECT_TRUE(s.ok()) << s.message();
}

// The image is edited in place: runs of unchanged chains move left and right as chains
// around them are created, deleted, grown and shrunk, and every jump in them is
// renumbered. After each of a long random sequence of syncs through one Reconciler
// (partial and full, from its cache and from the kernel), iptables-legacy-save must show
// exactly the desired chains, and the foreign chains around them intact with their
// counters.
TEST_F(IptablesReconciler, RandomEditsInPlaceKeepEveryJumpRight) {
  // Foreign chains sorting before and after ours, a fall-through rule (a rule without
  // target, which knode's Rule cannot express), a jump between them, a jump from a
  // built-in chain, counters.
  run("iptables-legacy -t nat -N DOCKER; iptables-legacy -t nat -N ZZZ-LOCAL;"
      "iptables-legacy -t nat -A DOCKER -c 5 700 -s 10.7.0.1/32 -j RETURN;"
      "iptables-legacy -t nat -A ZZZ-LOCAL -c 6 800 -d 10.7.0.2/32;"
      "iptables-legacy -t nat -A ZZZ-LOCAL -c 7 900 -j DOCKER;"
      "iptables-legacy -t nat -A PREROUTING -j ZZZ-LOCAL");
  std::mt19937 rng(20261202);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  // Chains KUBE-C<n> jump only to chains with a larger n, so there is never a loop.
  std::map<int, Lines> chains;
  int next_id = 0;
  auto chain_name = [](int id) { return "KUBE-C" + std::to_string(1000 + id); };
  auto random_rules = [&](int id) {
    Lines rules;
    const int n = pick(6);
    for (int i = 0; i < n; ++i) {
      const int shape = pick(4);
      const std::string a = std::to_string(1 + pick(250));
      std::vector<int> later;
      for (const auto& [other, _] : chains) {
        if (other > id) later.push_back(other);
      }
      if (shape == 0 && !later.empty()) {
        rules.push_back("-s 10.1.0." + a + "/32 -j " + chain_name(later[pick(static_cast<int>(later.size()))]));
      } else if (shape == 1) {
        rules.push_back("-p tcp -m tcp --dport " + a + " -j DNAT --to-destination 10.244.0." + a + ":80");
      } else if (shape == 2) {
        // A module target of the standard target's size (MARK): never taken for a jump.
        rules.push_back("-d 10.2.0." + a + "/32 -j MARK --set-xmark 0x4000/0x4000");
      } else {
        rules.push_back("-s 10.3.0." + a + "/32 -j RETURN");
      }
    }
    return rules;
  };
  auto as_desired = [&] {
    std::map<std::string, Lines> m = {{"KUBE-SERVICES", {}}, {"KUBE-POSTROUTING", {}}};  // nat()'s jumps
    for (const auto& [id, rules] : chains) m[chain_name(id)] = rules;
    return m;
  };
  Reconciler r;
  for (int step = 0; step < 60; ++step) {
    std::set<std::string> touched;
    // Some chains go (with every rule jumping to them), some come, some change.
    const int removals = step == 0 ? 0 : pick(3);
    for (int k = 0; k < removals && !chains.empty(); ++k) {
      auto it = std::next(chains.begin(), pick(static_cast<int>(chains.size())));
      const std::string gone = chain_name(it->first);
      touched.insert(gone);
      chains.erase(it);
      for (auto& [id, rules] : chains) {
        auto end = std::remove_if(rules.begin(), rules.end(), [&](const std::string& l) {
          return l.size() > gone.size() && l.compare(l.size() - gone.size(), gone.size(), gone) == 0;
        });
        if (end != rules.end()) {
          rules.erase(end, rules.end());
          touched.insert(chain_name(id));
        }
      }
    }
    const int additions = step == 0 ? 40 : pick(4);
    for (int k = 0; k < additions; ++k) {
      // New chains get ids both below and above the existing ones, so they sort into
      // the middle of the table as well as at its end.
      const int id = (k % 2 == 0 && step > 0) ? -(++next_id) : 100 + (++next_id);
      chains[id] = {};
      chains[id] = random_rules(id);
      touched.insert(chain_name(id));
    }
    const int rewrites = pick(5);
    for (int k = 0; k < rewrites && !chains.empty(); ++k) {
      auto it = std::next(chains.begin(), pick(static_cast<int>(chains.size())));
      it->second = random_rules(it->first);
      touched.insert(chain_name(it->first));
    }
    ReconcileOptions o;
    o.trust_cache = step % 7 != 3;  // now and then read the kernel instead
    if (step % 3 != 0) o.only_chains = touched;
    ReconcileStats st;
    DesiredTable d = nat(as_desired());
    if (!o.only_chains && step % 2 == 0) {
      // Full reconciles stream half the chains now and then (compared, then filled in place).
      d = streamed_some(std::move(d), [](const std::string& c) { return c.rfind("KUBE-C", 0) == 0 && c.back() % 2 == 0; });
    }
    Status s = r.reconcile(std::move(d), o, &st);
    ASSERT_TRUE(s.ok()) << "step " << step << ": " << s.message();

    Lines want = {":PREROUTING ACCEPT", ":INPUT ACCEPT", ":OUTPUT ACCEPT", ":POSTROUTING ACCEPT", ":DOCKER -"};
    const auto desired = as_desired();
    for (const auto& [c, _] : desired) want.push_back(":" + c + " -");
    want.push_back(":ZZZ-LOCAL -");
    want.push_back(std::string("-A PREROUTING ") + kPortals);
    want.push_back("-A PREROUTING -j ZZZ-LOCAL");
    want.push_back(std::string("-A OUTPUT ") + kPortals);
    want.push_back(std::string("-A POSTROUTING ") + kPostrouting);
    want.push_back("-A DOCKER -s 10.7.0.1/32 -j RETURN");
    for (const auto& [c, lines] : desired) {
      for (const auto& l : lines) want.push_back("-A " + c + " " + l);
    }
    want.push_back("-A ZZZ-LOCAL -d 10.7.0.2/32");
    want.push_back("-A ZZZ-LOCAL -j DOCKER");
    ASSERT_EQ(saved("nat"), want) << "step " << step;
    size_t rules = 0;
    for (const auto& [c, lines] : desired) rules += lines.size();
    EXPECT_EQ(st.table_rules, rules + 3 + 1 + 3) << "step " << step;  // + jumps, foreign rules
  }
  const std::string counted = run("iptables-legacy-save -c -t nat");
  EXPECT_NE(counted.find("[5:700] -A DOCKER -s 10.7.0.1/32 -j RETURN"), std::string::npos) << counted;
  EXPECT_NE(counted.find("[6:800] -A ZZZ-LOCAL -d 10.7.0.2/32"), std::string::npos) << counted;
  EXPECT_NE(counted.find("[7:900] -A ZZZ-LOCAL -j DOCKER"), std::string::npos) << counted;
}

TEST_F(IptablesReconciler, CountersOfKeptRulesSurvive) {
  run("iptables-legacy -t nat -A PREROUTING -c 5 700 -i eth7 -j RETURN");
  ASSERT_TRUE(reconcile(nat(two_services())).ok());
  auto out = run("iptables-legacy-save -c -t nat");
  EXPECT_NE(out.find("[5:700] -A PREROUTING -i eth7 -j RETURN"), std::string::npos) << out;
}

// Every kept entry's counters (rules, jumps, the built-in chains' policies) follow it
// through an edit that moves chains both ways (some removed before them, some created
// among them); new entries, and those of a chain the edit rewrote, start at zero.
TEST_F(IptablesReconciler, CountersFollowEveryKeptEntryThroughAnEdit) {
  auto services = [](const std::set<int>& ids, int short_one) {
    std::map<std::string, Lines> c;
    c["KUBE-MARK-MASQ"] = {"-j MARK --set-xmark 0x4000/0x4000"};
    c["KUBE-POSTROUTING"] = {"-m mark ! --mark 0x4000/0x4000 -j RETURN"};
    for (int i : ids) {
      const std::string n = std::to_string(i);
      c["KUBE-SERVICES"].push_back("-d 10.96.0." + n + "/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-S" + n);
      for (int e = 1; e <= 2; ++e) {
        const std::string sep = "KUBE-SEP-S" + n + "-" + std::to_string(e);
        if (i != short_one || e == 1) c["KUBE-SVC-S" + n].push_back("-j " + sep);
        c[sep] = {"-s 10.244." + n + "." + std::to_string(e) + "/32 -j KUBE-MARK-MASQ",
                  "-p tcp -m tcp -j DNAT --to-destination 10.244." + n + "." + std::to_string(e) + ":8080"};
      }
    }
    return c;
  };
  std::set<int> ids;
  for (int i = 10; i < 40; ++i) ids.insert(i);
  Status first = reconcile(nat(services(ids, -1)));
  ASSERT_TRUE(first.ok()) << first.message();
  // Distinct counters on every entry, loaded with the table as it is.
  std::string text = run("iptables-legacy-save -c -t nat");
  std::string counted;
  int next = 1;
  for (size_t at = 0, nl; at < text.size(); at = nl + 1) {
    nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(at, nl - at);
    if (auto b = line.find("[0:0]"); b != std::string::npos) {
      line.replace(b, 5, "[" + std::to_string(next) + ":" + std::to_string(next * 100) + "]");
      ++next;
    }
    counted += line + "\n";
  }
  ASSERT_GT(next, 150);
  run("printf '%s' '" + counted + "' | iptables-legacy-restore -c");
  auto by_rule = [](const std::string& save) {
    std::map<std::string, std::string> out;  // the entry (rule, or a built-in chain's policy) -> [p:b]
    for (size_t at = 0, nl; at < save.size(); at = nl + 1) {
      nl = save.find('\n', at);
      if (nl == std::string::npos) nl = save.size();
      const std::string line = save.substr(at, nl - at);
      const auto open = line.find('['), close = line.find(']');
      if (open == std::string::npos || close == std::string::npos || line.starts_with("#")) continue;
      std::string entry = line.substr(0, open) + line.substr(close + 1);
      if (entry.starts_with(" ")) entry.erase(0, 1);  // "[p:b] -A ...": the rule
      EXPECT_TRUE(out.emplace(entry, line.substr(open, close - open + 1)).second) << entry;
    }
    return out;
  };
  const auto before = by_rule(run("iptables-legacy-save -c -t nat"));
  // S12 goes (the chains after it move left), S31 loses an endpoint (a rewritten chain),
  // S250 and S5 come (their chains sort among the others: those after them move right).
  ids.erase(12);
  ids.insert(5);
  ids.insert(250);
  ReconcileStats st;
  ASSERT_TRUE(reconcile(nat(services(ids, 31)), {}, &st).ok());
  ASSERT_TRUE(st.committed);
  const auto after = by_rule(run("iptables-legacy-save -c -t nat"));
  size_t kept = 0, fresh = 0;
  for (const auto& [entry, counters] : after) {
    auto was = before.find(entry);
    // A rewritten chain's rules are new ones (as kube-proxy's iptables-restore writes a
    // chain it declares: flushed, its counters gone).
    const bool rewritten = entry.starts_with("-A KUBE-SERVICES ") || entry.starts_with("-A KUBE-SVC-S31 ");
    if (was == before.end() || rewritten) {
      EXPECT_EQ(counters, "[0:0]") << entry;
      ++fresh;
    } else {
      EXPECT_EQ(counters, was->second) << entry;
      ++kept;
    }
  }
  EXPECT_GT(kept, 150u);
  EXPECT_GT(fresh, 5u);
}

TEST_F(IptablesReconciler, MissingJumpTargetFailsAndChangesNothing) {
  ASSERT_TRUE(reconcile(nat(two_services())).ok());
  auto bad = two_services();
  bad["KUBE-SVC-B"] = {"-j KUBE-SEP-NOWHERE"};
  Status s = reconcile(nat(bad));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("KUBE-SEP-NOWHERE"), std::string::npos) << s.message();
  EXPECT_EQ(saved("nat"), expected(two_services()));
}

TEST_F(IptablesReconciler, RefusesChainsItDoesNotOwn) {
  auto d = nat(two_services());
  d.chains["DOCKER"] = {};
  EXPECT_FALSE(reconcile(d).ok());
}

TEST_F(IptablesReconciler, FilterTableWithRejects) {
  DesiredTable d;
  d.table = "filter";
  d.owned_prefixes = {"KUBE-"};
  d.chains["KUBE-SERVICES"] = {parse(
      "-d 10.96.0.12/32 -p tcp -m comment --comment \"default/c:http has no endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable")};
  d.chains["KUBE-FORWARD"] = {
      parse("-m conntrack --ctstate INVALID -j DROP"),
      parse("-m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT"),
      parse("-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")};
  Rule svc = parse("-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES");
  d.jumps = {{"FORWARD", svc}, {"OUTPUT", svc},
             {"FORWARD", parse("-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD")}};
  ReconcileStats st;
  Status s = reconcile(d, {}, &st);
  ASSERT_TRUE(s.ok()) << s.message();
  Lines got = saved("filter");
  EXPECT_TRUE(contains(got, "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"));
  EXPECT_TRUE(contains(got, "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"));
  ASSERT_TRUE(reconcile(d, {}, &st).ok());
  EXPECT_FALSE(st.committed);
  // Insert-first jumps keep the order given.
  auto a = std::find(got.begin(), got.end(), "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES");
  auto b = std::find(got.begin(), got.end(), "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD");
  EXPECT_LT(a, b);
}

}  // namespace
}  // namespace knode::iptables

namespace knode::iptables {
namespace {

// Moves every chain whose name starts with KUBE-S (SVC/SEP) from Rule values to bytes.
DesiredTable encoded_half(DesiredTable d) {
  for (auto it = d.chains.begin(); it != d.chains.end();) {
    if (it->first.rfind("KUBE-SVC-", 0) == 0 || it->first.rfind("KUBE-SEP-", 0) == 0) {
      EncodedChain& e = d.encoded[it->first];
      for (const Rule& r : it->second) e.append(r);
      it = d.chains.erase(it);
    } else {
      ++it;
    }
  }
  return d;
}

TEST_F(IptablesReconciler, EncodedChainsAreWrittenLikeRuleChains) {
  DesiredTable d = encoded_half(nat(two_services()));
  ASSERT_FALSE(d.encoded.empty());
  ReconcileStats st;
  Reconciler r;
  ASSERT_TRUE(r.reconcile(d, {}, &st).ok());
  EXPECT_EQ(saved("nat"), expected(two_services()));
  EXPECT_EQ(st.rules_written, 15u + 3u);
  // Moved in, then the same table again from the cache: nothing to do.
  DesiredTable moved = d;
  ASSERT_TRUE(r.reconcile(std::move(moved), {}, &st).ok());
  EXPECT_FALSE(st.committed);
  // A full Rule table sees the encoded chains as its own: no rewrite either.
  ASSERT_TRUE(reconcile(nat(two_services()), {}, &st).ok());
  EXPECT_FALSE(st.committed);
  EXPECT_EQ(saved("nat"), expected(two_services()));
}

TEST_F(IptablesReconciler, EncodedChainsChangeAndGoInPartialMode) {
  Reconciler r;
  ASSERT_TRUE(r.reconcile(encoded_half(nat(two_services()))).ok());
  auto chains = two_services();
  chains["KUBE-SVC-B"] = {"-m comment --comment \"default/b:dns -> 10.244.0.8:53\" -j KUBE-SEP-B2"};
  chains.erase("KUBE-SEP-B1");
  chains["KUBE-SEP-B2"] = {"-s 10.244.0.8/32 -m comment --comment \"default/b:dns\" -j KUBE-MARK-MASQ",
                           "-p udp -m comment --comment \"default/b:dns\" -m udp -j DNAT --to-destination 10.244.0.8:53"};
  ReconcileOptions partial;
  partial.only_chains = std::set<std::string>{"KUBE-SVC-B", "KUBE-SEP-B1", "KUBE-SEP-B2"};
  partial.trust_cache = true;
  ReconcileStats st;
  ASSERT_TRUE(r.reconcile(encoded_half(nat(chains)), partial, &st).ok());
  EXPECT_EQ(st.chains_created, 1u);
  EXPECT_EQ(st.chains_rewritten, 1u);
  EXPECT_EQ(st.chains_deleted, 1u);
  EXPECT_EQ(saved("nat"), expected(chains));
}

// The chains `pick` selects, streamed instead of given (the emitter holds them encoded);
// `calls` counts the emitter's passes, `tamper` changes what the second pass emits.
DesiredTable streamed_some(DesiredTable d, const std::function<bool(const std::string&)>& pick,
                           std::shared_ptr<int> calls, bool tamper) {
  auto held = std::make_shared<std::map<std::string, EncodedChain>>();
  for (auto it = d.chains.begin(); it != d.chains.end();) {
    if (pick(it->first)) {
      EncodedChain& e = (*held)[it->first];
      for (const Rule& r : it->second) e.append(r);
      it = d.chains.erase(it);
    } else {
      ++it;
    }
  }
  if (!calls) calls = std::make_shared<int>(0);
  d.streamed = [held, calls, tamper](const ChainEmitter& emit) {
    ++*calls;
    for (const auto& [name, c] : *held) {
      if (tamper && *calls == 2) {
        emit(name, c.bytes + c.bytes, c.rules * 2);  // not what the first pass saw
      } else {
        emit(name, c.bytes, c.rules);
      }
    }
    return Status::Ok();
  };
  return d;
}

bool svc_or_sep(const std::string& c) { return c.rfind("KUBE-SVC-", 0) == 0 || c.rfind("KUBE-SEP-", 0) == 0; }

TEST_F(IptablesReconciler, StreamedChainsAreWrittenLikeRuleChains) {
  auto calls = std::make_shared<int>(0);
  ReconcileStats st;
  Reconciler r;
  ASSERT_TRUE(r.reconcile(streamed_some(nat(two_services()), svc_or_sep, calls, false), {}, &st).ok());
  EXPECT_EQ(saved("nat"), expected(two_services()));
  EXPECT_EQ(st.chains_created, 8u);
  EXPECT_EQ(st.rules_written, 15u + 3u);
  EXPECT_EQ(*calls, 2);  // sizes, then the bytes
  // Again: every streamed chain compares equal, nothing is written, one pass.
  ASSERT_TRUE(r.reconcile(streamed_some(nat(two_services()), svc_or_sep, calls, false), {}, &st).ok());
  EXPECT_FALSE(st.committed);
  EXPECT_EQ(*calls, 3);
  // One streamed chain changes, one goes (with the rule jumping to it), one comes.
  auto chains = two_services();
  chains["KUBE-SVC-B"] = {"-m comment --comment \"default/b:dns -> 10.244.0.8:53\" -j KUBE-SEP-B2"};
  chains.erase("KUBE-SEP-B1");
  chains["KUBE-SEP-B2"] = {"-s 10.244.0.8/32 -m comment --comment \"default/b:dns\" -j KUBE-MARK-MASQ",
                           "-p udp -m comment --comment \"default/b:dns\" -m udp -j DNAT --to-destination 10.244.0.8:53"};
  ASSERT_TRUE(r.reconcile(streamed_some(nat(chains), svc_or_sep), {}, &st).ok());
  EXPECT_EQ(st.chains_created, 1u);
  EXPECT_EQ(st.chains_rewritten, 1u);
  EXPECT_EQ(st.chains_deleted, 1u);
  EXPECT_EQ(saved("nat"), expected(chains));
}

TEST_F(IptablesReconciler, StreamedChainsThatChangeBetweenPassesFailAndChangeNothing) {
  ASSERT_TRUE(reconcile(nat(two_services())).ok());
  auto chains = two_services();
  chains["KUBE-SEP-A1"][0] = "-s 10.244.0.9/32 -m comment --comment \"default/a:http\" -j KUBE-MARK-MASQ";
  Reconciler r;
  Status s = r.reconcile(streamed_some(nat(chains), svc_or_sep, nullptr, true));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("KUBE-SEP-A1"), std::string::npos) << s.message();
  EXPECT_EQ(saved("nat"), expected(two_services()));
  // The next reconcile starts from the kernel and works.
  ASSERT_TRUE(r.reconcile(streamed_some(nat(chains), svc_or_sep)).ok());
  EXPECT_EQ(saved("nat"), expected(chains));
}

TEST_F(IptablesReconciler, StreamedChainsAreRefusedInPartialModeTwiceOrUnowned) {
  ReconcileOptions partial;
  partial.only_chains = std::set<std::string>{"KUBE-SVC-A"};
  EXPECT_FALSE(reconcile(streamed_some(nat(two_services()), svc_or_sep), partial).ok());
  DesiredTable twice = streamed_some(nat(two_services()), svc_or_sep);
  twice.chains["KUBE-SVC-A"] = {parse("-j KUBE-SEP-A1")};
  EXPECT_FALSE(reconcile(twice).ok());
  DesiredTable foreign = streamed_some(nat(two_services()), svc_or_sep);
  auto inner = foreign.streamed;
  foreign.streamed = [inner](const ChainEmitter& emit) {
    emit("DOCKER", "", 0);
    return inner(emit);
  };
  EXPECT_FALSE(reconcile(foreign).ok());
  DesiredTable doubled = streamed_some(nat(two_services()), svc_or_sep);
  auto once = doubled.streamed;
  doubled.streamed = [once](const ChainEmitter& emit) {
    emit("KUBE-SEP-XX", "", 0);  // a new chain, twice
    emit("KUBE-SEP-XX", "", 0);
    return once(emit);
  };
  Status twice_new = reconcile(doubled);
  EXPECT_FALSE(twice_new.ok());
  EXPECT_NE(twice_new.message().find("KUBE-SEP-XX created twice"), std::string::npos) << twice_new.message();
  EXPECT_EQ(saved("nat"), (Lines{":PREROUTING ACCEPT", ":INPUT ACCEPT", ":OUTPUT ACCEPT", ":POSTROUTING ACCEPT"}));
}

TEST_F(IptablesReconciler, ChainGivenBothWaysIsRefused) {
  DesiredTable d = nat(two_services());
  d.encoded["KUBE-SVC-A"].append(parse("-j KUBE-SEP-A1"));
  EXPECT_FALSE(reconcile(d).ok());
}

}  // namespace
}  // namespace knode::iptables
