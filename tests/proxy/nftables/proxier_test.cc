// nftables mode's syncs against the in-memory nf_tables: the first sync writes the layout,
// partial syncs touch only the changed service's chains and elements, a full resync with
// nothing to change sends nothing, stale chains are flushed and deleted later, a failed
// batch changes nothing and the next sync repairs, drift is repaired.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "fakes/fake_nftables.h"
#include "knode/dataplane/nftables/print.h"
#include "knode/fnv.h"
#include "nftables/chain_names.h"
#include "nftables/proxier.h"
#include "nftables/service_rules.h"

using namespace knode;
using namespace knode::nftables_proxy;
using knode::nftables::Family;
using knode::nftables::FakeNftables;

namespace {

// `nft list` output as its blocks (sets, maps, chains) in name order: a table built
// incrementally lists new chains last, one built at once in creation order.
std::vector<std::string> blocks(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line, block;
  while (std::getline(in, line)) {
    if (line.rfind("\tset ", 0) == 0 || line.rfind("\tmap ", 0) == 0 || line.rfind("\tchain ", 0) == 0) block.clear();
    block += line + "\n";
    if (line == "\t}") {
      out.push_back(block);
      block.clear();
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }

class NullHost final : public proxy::Host {
 public:
  std::vector<net::IPAddress> local_ipv4_addresses(const std::string&) override { return {ip("192.168.0.2")}; }
  std::set<net::IPAddress> default_route_ipv4_addresses() override { return {ip("192.168.0.2")}; }
  bool has_sysctl(const std::string&) override { return true; }
  Status ensure_sysctl(const std::string&, const std::string&) override { return Status::Ok(); }
};

proxy::Endpoint ep(const char* addr, uint16_t port) {
  proxy::Endpoint e;
  e.ip = ip(addr);
  e.port = port;
  e.local = true;
  return e;
}

proxy::ServicePort service(const std::string& name, const char* vip, std::vector<proxy::Endpoint> eps) {
  proxy::ServicePort sp;
  sp.name = name;
  sp.cluster_ip = ip(vip);
  sp.port = 80;
  sp.cluster_endpoints = eps;
  sp.local_endpoints = eps;
  sp.has_any_endpoint = !eps.empty();
  return sp;
}

class NftablesProxierTest : public ::testing::Test {
 protected:
  NftablesProxierTest() {
    config_.cluster_cidrs = {*net::Cidr::Parse("10.0.0.0/8")};
    config_.stale_chain_delay = std::chrono::seconds(1);
    config_.now = [this] { return now_; };
    auto fake = std::make_unique<FakeNftables>();
    fake_ = fake.get();
    proxier_ = make_nftables_proxier(std::move(fake), config_, host_);
    state_.services = {service("ns1/a:http", "172.30.0.1", {ep("10.180.0.1", 80), ep("10.180.0.2", 80)}),
                       service("ns1/b:http", "172.30.0.2", {ep("10.180.1.1", 80), ep("10.180.1.2", 80)})};
  }

  Status sync(const std::set<std::string>& changed, bool full) {
    SyncStats stats;
    return proxier_->sync(state_, changed, full, &stats);
  }
  // What the table should be for the current state.
  std::string expected() {
    RulesConfig rc;
    rc.endpoint_shards = config_.endpoint_shards;
    rc.cluster_cidrs = config_.cluster_cidrs;
    rc.node_ips = {ip("192.168.0.2")};
    return nftables::print_table(generate(state_, rc));
  }
  std::string listed() { return fake_->list(Family::kIPv4, "kube-proxy"); }

  NullHost host_;
  NftablesConfig config_;
  std::chrono::steady_clock::time_point now_{std::chrono::hours(1)};
  FakeNftables* fake_;
  ProxyBackendPtr proxier_;
  proxy::ProxyState state_;
};

TEST_F(NftablesProxierTest, FirstSyncWritesTheLayoutInOneBatch) {
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_EQ(fake_->commits, 1);
  EXPECT_EQ(listed(), expected());  // line by line: a sync into an empty table
}

// A first sync bigger than first_sync_batch_ops: batches ahead, with the base chains
// empty (so nothing is reachable), then the base chains' rules alone.
class NftablesFirstSyncTest : public NftablesProxierTest {
 protected:
  NftablesFirstSyncTest() {
    config_.first_sync_batch_ops = 8;
    auto fake = std::make_unique<FakeNftables>();
    fake_ = fake.get();
    proxier_ = make_nftables_proxier(std::move(fake), config_, host_);
    for (int i = 1; i <= 6; ++i) {
      const std::string n = std::to_string(i);
      state_.services.push_back(service("ns2/s" + n + ":http", ("172.30.1." + n).c_str(), {ep(("10.180.2." + n).c_str(), 80)}));
    }
  }
  std::set<std::string> base_chains() {
    std::set<std::string> out;
    if (const auto* t = fake_->table(Family::kIPv4, "kube-proxy")) {
      for (const auto& c : t->chains) {
        if (c.chain.base) out.insert(c.chain.name);
      }
    }
    return out;
  }
  size_t base_chain_rules() {
    size_t n = 0;
    if (const auto* t = fake_->table(Family::kIPv4, "kube-proxy")) {
      for (const auto& c : t->chains) {
        if (c.chain.base) n += c.rules.size();
      }
    }
    return n;
  }
};

TEST_F(NftablesFirstSyncTest, GoesAheadInBatchesAndTheBaseChainsRulesComeLastAlone) {
  std::vector<std::pair<size_t, size_t>> seen;  // after each commit: chains, rules in base chains
  fake_->after_commit = [&] {
    const auto* t = fake_->table(Family::kIPv4, "kube-proxy");
    seen.emplace_back(t ? t->chains.size() : 0, base_chain_rules());
  };
  ASSERT_TRUE(sync({}, true).ok());
  ASSERT_GE(seen.size(), 3u);
  for (size_t i = 0; i + 1 < seen.size(); ++i) EXPECT_EQ(seen[i].second, 0u) << "batch " << i + 1;
  EXPECT_LT(seen.front().first, seen[seen.size() - 2].first);  // the chains arrive batch by batch
  const auto base = base_chains();
  EXPECT_GT(base.size(), 0u);
  ASSERT_FALSE(fake_->last_ops.empty());
  for (const auto& op : fake_->last_ops) {
    EXPECT_TRUE(std::any_of(base.begin(), base.end(),
                            [&](const std::string& c) { return op.starts_with("add rule " + c + ":"); }))
        << "the last batch holds more than the base chains' rules: " << op;
  }
  EXPECT_EQ(listed(), expected());  // line by line: the chains in the order of one batch
  const int commits = fake_->commits, lists = fake_->lists;
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_EQ(fake_->commits, commits);  // nothing left to do
  EXPECT_EQ(fake_->lists, lists);      // and the record matched the generation the batches left
}

TEST_F(NftablesFirstSyncTest, CutShortItLeavesNothingReachableAndTheNextSyncCompletesIt) {
  fake_->fail_commit_after(1, Status::Error("add rule: Invalid argument", EINVAL));
  Status s = sync({}, true);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Invalid argument"), std::string::npos) << s.message();
  EXPECT_EQ(fake_->commits, 1);
  EXPECT_EQ(fake_->failed_commits, 1);  // nothing sent after the refusal
  ASSERT_NE(fake_->table(Family::kIPv4, "kube-proxy"), nullptr);  // the first batch ahead stays
  EXPECT_EQ(base_chain_rules(), 0u);
  ASSERT_TRUE(sync({}, true).ok());  // reads the table back and completes it
  EXPECT_EQ(blocks(listed()), blocks(expected()));
  EXPECT_GT(base_chain_rules(), 0u);
}

TEST_F(NftablesProxierTest, PartialSyncTouchesOnlyTheChangedService) {
  ASSERT_TRUE(sync({}, true).ok());
  const std::string a_base = "ns1/a/tcp/http", b_base = "ns1/b/tcp/http";
  state_.services[1].cluster_endpoints.push_back(ep("10.180.1.3", 80));
  state_.services[1].local_endpoints = state_.services[1].cluster_endpoints;
  ASSERT_TRUE(sync({"ns1/b:http"}, false).ok());
  EXPECT_EQ(blocks(listed()), blocks(expected()));
  ASSERT_FALSE(fake_->last_ops.empty());
  // (a's and b's slots are in different shard maps.)
  ASSERT_NE(endpoint_shard("ns1/a:http", RulesConfig{}), endpoint_shard("ns1/b:http", RulesConfig{}));
  const std::string b_map = endpoint_shard_map(endpoint_shard("ns1/b:http", RulesConfig{}));
  for (const auto& op : fake_->last_ops) {
    EXPECT_TRUE(op.find(b_map) != std::string::npos ||
                op == "add element hairpin-connections 10.180.1.3 . 10.180.1.3 . tcp . 80")
        << "a partial sync of b touched: " << op;
    EXPECT_EQ(op.find(a_base), std::string::npos) << op;
  }
  // b's shard map refilled (flushed, its three ranges added: a start and an end
  // element each), the new endpoint's hairpin element added; no rule written (the rule
  // names the map, not the endpoints), no chain added, no service-ips element changed.
  auto count = [&](const std::string& prefix) {
    return std::count_if(fake_->last_ops.begin(), fake_->last_ops.end(),
                         [&](const std::string& op) { return op.rfind(prefix, 0) == 0; });
  };
  EXPECT_EQ(count("add chain "), 0);
  EXPECT_EQ(count("flush chain "), 0);
  EXPECT_EQ(count("add rule "), 0);
  EXPECT_EQ(count("flush set " + b_map), 1);
  EXPECT_EQ(count("add element " + b_map + " "), 6);
  EXPECT_EQ(count("add element hairpin-connections "), 1);
  EXPECT_EQ(count("delete element "), 0);
  (void)b_base;
}

TEST_F(NftablesProxierTest, AnEndpointOfTwoServicePortsStaysInTheHairpinSetWhileOneUsesIt) {
  state_.services[1].cluster_endpoints.push_back(ep("10.180.0.1", 80));  // a's endpoint too
  state_.services[1].local_endpoints = state_.services[1].cluster_endpoints;
  ASSERT_TRUE(sync({}, true).ok());
  auto hairpins = [&](const std::string& element) {
    std::vector<std::string> out;
    const auto* t = fake_->table(Family::kIPv4, "kube-proxy");
    for (const auto& e : t->find_set("hairpin-connections")->elements) {
      out.push_back(nftables::print_element(e, t->find_set("hairpin-connections")->spec));
    }
    return std::count(out.begin(), out.end(), element);
  };
  const std::string shared = "10.180.0.1 . 10.180.0.1 . tcp . 80";
  EXPECT_EQ(hairpins(shared), 1);
  // b stops using it: a still does.
  state_.services[1].cluster_endpoints.pop_back();
  state_.services[1].local_endpoints = state_.services[1].cluster_endpoints;
  ASSERT_TRUE(sync({"ns1/b:http"}, false).ok());
  EXPECT_EQ(hairpins(shared), 1);
  // Then a stops too: gone.
  state_.services[0].cluster_endpoints.erase(state_.services[0].cluster_endpoints.begin());
  state_.services[0].local_endpoints = state_.services[0].cluster_endpoints;
  ASSERT_TRUE(sync({"ns1/a:http"}, false).ok());
  EXPECT_EQ(hairpins(shared), 0);
  EXPECT_EQ(blocks(listed()), blocks(expected()));
}

TEST_F(NftablesProxierTest, FullResyncWithNothingToChangeSendsNothing) {
  ASSERT_TRUE(sync({}, true).ok());
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_EQ(fake_->commits, 1);
  EXPECT_EQ(fake_->lists, 1);  // the generation did not move: no need to read the table again
}

TEST_F(NftablesProxierTest, FullResyncOfAnUntouchedRulesetWritesOnlyWhatTheModelChanged) {
  ASSERT_TRUE(sync({}, true).ok());
  state_.services[1].cluster_endpoints.pop_back();
  state_.services[1].local_endpoints = state_.services[1].cluster_endpoints;
  // A full resync that was not told what changed: it finds b by its model, not by reading
  // the kernel (the generation did not move).
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_EQ(fake_->lists, 1);
  ASSERT_FALSE(fake_->last_ops.empty());
  const std::string b_map = endpoint_shard_map(endpoint_shard("ns1/b:http", RulesConfig{}));
  for (const auto& op : fake_->last_ops) {
    EXPECT_TRUE(op.find(b_map) != std::string::npos ||
                op == "delete element hairpin-connections 10.180.1.2 . 10.180.1.2 . tcp . 80")
        << op;
  }
  EXPECT_EQ(blocks(listed()), blocks(expected()));
  // Once someone else committed, a full resync reads the table again.
  fake_->bump_generation();
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_EQ(fake_->lists, 2);
}

TEST_F(NftablesProxierTest, RemovedEndpointChainIsFlushedThenDeletedLater) {
  state_.services[0].affinity_timeout_seconds = 10800;  // (only affinity has endpoint chains)
  ASSERT_TRUE(sync({}, true).ok());
  const std::string gone = "endpoint-" + endpoint_chain_base(state_.services[0], state_.services[0].cluster_endpoints[1]);
  state_.services[0].cluster_endpoints.pop_back();
  state_.services[0].local_endpoints = state_.services[0].cluster_endpoints;
  ASSERT_TRUE(sync({"ns1/a:http"}, false).ok());
  const auto* t = fake_->table(Family::kIPv4, "kube-proxy");
  ASSERT_NE(t->find_chain(gone), nullptr) << "deleted at once; kube-proxy flushes and deletes later";
  EXPECT_TRUE(t->find_chain(gone)->rules.empty());
  // Not yet due.
  now_ += std::chrono::milliseconds(500);
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_NE(fake_->table(Family::kIPv4, "kube-proxy")->find_chain(gone), nullptr);
  now_ += std::chrono::seconds(1);
  ASSERT_TRUE(sync({}, false).ok());
  EXPECT_EQ(fake_->table(Family::kIPv4, "kube-proxy")->find_chain(gone), nullptr);
  EXPECT_EQ(blocks(listed()), blocks(expected()));
}

TEST_F(NftablesProxierTest, DeletedServiceLeavesNothingBehind) {
  ASSERT_TRUE(sync({}, true).ok());
  state_.services.erase(state_.services.begin() + 1);
  ASSERT_TRUE(sync({"ns1/b:http"}, false).ok());
  now_ += std::chrono::seconds(2);
  ASSERT_TRUE(sync({}, false).ok());
  EXPECT_EQ(blocks(listed()), blocks(expected()));
  EXPECT_EQ(listed().find("ns1/b"), std::string::npos);
  EXPECT_EQ(listed().find("172.30.0.2"), std::string::npos);
  EXPECT_EQ(listed().find("10.180.1."), std::string::npos);  // its endpoints' hairpin elements
}

TEST_F(NftablesProxierTest, ServiceLosingItsEndpointsRejects) {
  ASSERT_TRUE(sync({}, true).ok());
  state_.services[0].cluster_endpoints.clear();
  state_.services[0].local_endpoints.clear();
  state_.services[0].has_any_endpoint = false;
  ASSERT_TRUE(sync({"ns1/a:http"}, false).ok());
  EXPECT_NE(listed().find("172.30.0.1 . tcp . 80 comment \"ns1/a:http\" : goto reject-chain"), std::string::npos)
      << listed();
  now_ += std::chrono::seconds(2);
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_EQ(blocks(listed()), blocks(expected()));
}

TEST_F(NftablesProxierTest, FailedBatchChangesNothingAndTheNextSyncRepairs) {
  ASSERT_TRUE(sync({}, true).ok());
  const std::string before = listed();
  state_.services[0].cluster_endpoints.push_back(ep("10.180.0.9", 80));
  state_.services[0].local_endpoints = state_.services[0].cluster_endpoints;
  fake_->fail_next_commit(Status::Error("add element: Invalid argument", EINVAL));
  Status s = sync({"ns1/a:http"}, false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Invalid argument"), std::string::npos) << s.message();
  EXPECT_EQ(listed(), before);
  // The proxier retries with a full sync (the scheduler makes it full); it reads the
  // kernel again since its record was dropped.
  const int lists = fake_->lists;
  ASSERT_TRUE(sync({"ns1/a:http"}, true).ok());
  EXPECT_EQ(fake_->lists, lists + 1);
  EXPECT_EQ(blocks(listed()), blocks(expected()));
}

TEST_F(NftablesProxierTest, FullSyncRepairsHandEdits) {
  ASSERT_TRUE(sync({}, true).ok());
  auto* t = fake_->table(Family::kIPv4, "kube-proxy");
  for (auto& c : t->chains) {
    if (c.chain.name == "masquerading") c.rules.pop_back();
  }
  for (auto& s : t->sets) {
    if (s.spec.name == "service-ips") s.elements.clear();
  }
  fake_->bump_generation();
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_EQ(blocks(listed()), blocks(expected()));
  // Only what was changed by hand was written back.
  for (const auto& op : fake_->last_ops) {
    EXPECT_TRUE(op.find("masquerading") != std::string::npos || op.find("service-ips") != std::string::npos) << op;
  }
}

TEST_F(NftablesProxierTest, PartialSyncAfterSomeoneElseCommittedGoesFull) {
  ASSERT_TRUE(sync({}, true).ok());
  fake_->bump_generation();
  state_.services[1].cluster_endpoints.pop_back();
  state_.services[1].local_endpoints = state_.services[1].cluster_endpoints;
  const int lists = fake_->lists;
  ASSERT_TRUE(sync({"ns1/b:http"}, false).ok());
  EXPECT_EQ(fake_->lists, lists + 1);
  EXPECT_EQ(fake_->failed_commits, 1);  // ERESTART, then the full sync
}

TEST_F(NftablesProxierTest, RestartAdoptsTheTable) {
  ASSERT_TRUE(sync({}, true).ok());
  // A new proxier on the same kernel state: reads it, changes nothing.
  auto fake = std::make_unique<FakeNftables>(*fake_);
  FakeNftables* second = fake.get();
  second->commits = 0;
  auto again = make_nftables_proxier(std::move(fake), config_, host_);
  SyncStats stats;
  ASSERT_TRUE(again->sync(state_, {}, true, &stats).ok());
  EXPECT_EQ(second->commits, 0) << "an adopting sync wrote: " << (second->last_ops.empty() ? "" : second->last_ops[0]);
  EXPECT_EQ(second->lists, fake_->lists + 1);
}

TEST_F(NftablesProxierTest, ServicePortsShareShardMapsAndAChangeRewritesOnlyItsShard) {
  config_.endpoint_shards = 4;
  auto fake = std::make_unique<FakeNftables>();
  fake_ = fake.get();
  proxier_ = make_nftables_proxier(std::move(fake), config_, host_);
  RulesConfig rc;
  rc.endpoint_shards = 4;
  auto name = [](size_t i) {
    char n[32];
    std::snprintf(n, sizeof n, "ns/s%02zu:http", i);
    return std::string(n);
  };
  // 40 service ports with two endpoints each, in 4 maps.
  state_.services.clear();
  for (size_t i = 0; i < 40; ++i) {
    char vip[32], a[32], b[32];
    std::snprintf(vip, sizeof vip, "172.30.0.%zu", i + 1);
    std::snprintf(a, sizeof a, "10.100.%zu.1", i);
    std::snprintf(b, sizeof b, "10.100.%zu.2", i);
    state_.services.push_back(service(name(i), vip, {ep(a, 80), ep(b, 80)}));
  }
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_EQ(listed(), expected());
  std::map<uint32_t, std::vector<size_t>> members;
  for (size_t i = 0; i < 40; ++i) members[endpoint_shard(name(i), rc)].push_back(i);
  ASSERT_EQ(members.size(), 4u);
  for (const auto& [shard, ms] : members) {
    ASSERT_NE(fake_->table(Family::kIPv4, "kube-proxy")->find_set(endpoint_shard_map(shard)), nullptr);
  }
  auto count = [&](const std::string& prefix) {
    return std::count_if(fake_->last_ops.begin(), fake_->last_ops.end(),
                         [&](const std::string& op) { return op.rfind(prefix, 0) == 0; });
  };

  // One endpoint less in s07: its shard map is refilled (every member's ranges), no rule
  // is written and no other map is touched.
  const size_t seven = 7;
  const std::string map = endpoint_shard_map(endpoint_shard(name(seven), rc));
  state_.services[seven].cluster_endpoints.pop_back();
  state_.services[seven].local_endpoints = state_.services[seven].cluster_endpoints;
  ASSERT_TRUE(sync({name(seven)}, false).ok());
  EXPECT_EQ(blocks(listed()), blocks(expected()));
  const size_t in_shard = members[endpoint_shard(name(seven), rc)].size();
  EXPECT_EQ(count("flush set " + map), 1);
  EXPECT_EQ(count("add element " + map + " "), static_cast<long>(4 * in_shard - 2));  // 2 ranges each, s07 1
  EXPECT_EQ(count("add rule "), 0);
  EXPECT_EQ(count("flush chain "), 0);
  for (const auto& op : fake_->last_ops) {
    EXPECT_TRUE(op.find(map) != std::string::npos || op.rfind("delete element hairpin-connections ", 0) == 0) << op;
  }

  // Every service port of one shard gone: their chains are flushed and the map deleted
  // in the same sync; the chains go a sync after the delay.
  const uint32_t gone_shard = members.begin()->first;
  std::set<std::string> changed;
  std::vector<proxy::ServicePort> kept;
  for (auto& sp : state_.services) {
    if (endpoint_shard(sp.name, rc) == gone_shard) {
      changed.insert(sp.name);
    } else {
      kept.push_back(sp);
    }
  }
  state_.services = kept;
  ASSERT_TRUE(sync(changed, false).ok());
  EXPECT_EQ(fake_->table(Family::kIPv4, "kube-proxy")->find_set(endpoint_shard_map(gone_shard)), nullptr);
  EXPECT_EQ(count("delete set " + endpoint_shard_map(gone_shard)), 1);
  now_ += std::chrono::seconds(5);
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_EQ(blocks(listed()), blocks(expected()));

  // A new service port in an empty shard creates it again; a restarted proxier finds the
  // same layout and writes nothing.
  const std::string back = name(*members.begin()->second.begin());
  state_.services.push_back(service(back, "172.30.1.1", {ep("10.101.0.1", 80)}));
  std::sort(state_.services.begin(), state_.services.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  ASSERT_TRUE(sync({back}, false).ok());
  EXPECT_NE(fake_->table(Family::kIPv4, "kube-proxy")->find_set(endpoint_shard_map(gone_shard)), nullptr);
  EXPECT_EQ(blocks(listed()), blocks(expected()));
  auto copy = std::make_unique<FakeNftables>(*fake_);
  FakeNftables* second = copy.get();
  second->commits = 0;
  auto again = make_nftables_proxier(std::move(copy), config_, host_);
  SyncStats stats;
  ASSERT_TRUE(again->sync(state_, {}, true, &stats).ok());
  EXPECT_EQ(second->commits, 0) << "a restarted proxier wrote: " << (second->last_ops.empty() ? "" : second->last_ops[0]);
}

TEST_F(NftablesProxierTest, AMemberWhoseSlotsMoveIsRewrittenWithItsShard) {
  config_.endpoint_shards = 1;
  auto fake = std::make_unique<FakeNftables>();
  fake_ = fake.get();
  proxier_ = make_nftables_proxier(std::move(fake), config_, host_);
  // Two names whose slots prefer the same index: the first by name takes it, the other
  // the next one; with the first gone, the other's slots move to the preferred index.
  std::map<uint32_t, std::string> seen;
  std::string first, second;
  uint32_t pref = 0;
  for (int i = 0; first.empty(); ++i) {
    const std::string n = "ns/c" + std::to_string(i) + ":http";
    pref = static_cast<uint32_t>(fnv1a64(n) % kSlotIndexes);  // as the layout hashes a name
    auto [it, fresh] = seen.emplace(pref, n);
    if (!fresh) std::tie(first, second) = std::minmax(it->second, n);
  }
  ASSERT_LT(pref + 1, kSlotIndexes);
  state_.services = {service(first, "172.30.0.1", {ep("10.180.0.1", 80)}),
                     service(second, "172.30.0.2", {ep("10.180.0.2", 80)})};
  ASSERT_TRUE(sync({}, true).ok());
  const std::string second_chain = "service-" + service_chain_base(state_.services[1]);
  auto rule_of = [&]() {
    const auto* c = fake_->table(Family::kIPv4, "kube-proxy")->find_chain(second_chain);
    return c && c->rules.size() > 1 ? nftables::print_rule(c->rules[1]) : std::string();
  };
  auto offset = [](uint64_t index) { return " offset " + std::to_string(index * nftables::kSlots) + " "; };
  EXPECT_NE(rule_of().find(offset(pref + 1)), std::string::npos) << rule_of();
  // The first goes: only it changed, yet the second's rule follows its slots.
  state_.services.erase(state_.services.begin());
  ASSERT_TRUE(sync({first}, false).ok());
  EXPECT_NE(rule_of().find(offset(pref)), std::string::npos) << rule_of();
  now_ += std::chrono::seconds(5);  // (the first's flushed chain goes a sync later)
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_EQ(blocks(listed()), blocks(expected()));
  // And back.
  state_.services.insert(state_.services.begin(), service(first, "172.30.0.1", {ep("10.180.0.1", 80)}));
  ASSERT_TRUE(sync({first}, false).ok());
  EXPECT_NE(rule_of().find(offset(pref + 1)), std::string::npos) << rule_of();
  EXPECT_EQ(blocks(listed()), blocks(expected()));
}

TEST_F(NftablesProxierTest, CleanupRemovesTheTableAndIsSafeTwice) {
  ASSERT_TRUE(sync({}, true).ok());
  ASSERT_TRUE(proxier_->cleanup().ok());
  EXPECT_EQ(fake_->table(Family::kIPv4, "kube-proxy"), nullptr);
  ASSERT_TRUE(proxier_->cleanup().ok());
  // And a sync after it starts from scratch.
  ASSERT_TRUE(sync({}, true).ok());
  EXPECT_EQ(blocks(listed()), blocks(expected()));
}

}  // namespace
