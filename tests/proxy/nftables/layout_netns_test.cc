// nftables mode on this machine's kernel, in a private network namespace: after a sync,
// `nft list table ip kube-proxy` is the expected layout line by line; a partial sync
// leaves the other services' rules (their handles) alone; a refused batch leaves the old
// ruleset and the next sync repairs; a restart adopts the table without writing; cleanup
// removes the table, twice; the host's own tables are never touched.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "knode/dataplane/nftables.h"
#include "knode/dataplane/nftables/exprs.h"
#include "knode/dataplane/nftables/print.h"
#include "nftables/chain_names.h"
#include "nftables/proxier.h"
#include "nftables/service_rules.h"
#include "support/netns_host.h"
#include "support/netns_util.h"

using namespace knode;
using namespace knode::nftables_proxy;
using knode::iptables::testing::run;
namespace nft = knode::nftables;

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
net::Cidr cidr(const char* s) { return *net::Cidr::Parse(s); }

using knode::testing::NetnsHost;

proxy::Endpoint ep(const char* addr, uint16_t port, bool local = true) {
  proxy::Endpoint e;
  e.ip = ip(addr);
  e.port = port;
  e.local = local;
  return e;
}

proxy::ServicePort sp(const std::string& name, const char* vip, std::vector<proxy::Endpoint> eps) {
  proxy::ServicePort s;
  s.name = name;
  s.cluster_ip = ip(vip);
  s.port = 80;
  s.cluster_endpoints = eps;
  for (const auto& e : eps) {
    if (e.local) s.local_endpoints.push_back(e);
  }
  s.has_any_endpoint = !eps.empty();
  return s;
}

// Every feature of the layout once.
proxy::ProxyState rich_state() {
  proxy::ProxyState st;
  st.services.push_back(sp("ns1/svc1:p80", "172.30.0.41", {ep("10.180.0.1", 80), ep("10.180.0.2", 80)}));
  auto local = sp("ns2/svc2:p80", "172.30.0.42", {ep("10.180.0.2", 80), ep("10.180.0.3", 80, false)});
  local.node_port = 3001;
  local.external_ips = {ip("192.168.99.22")};
  local.load_balancer_ips = {ip("1.2.3.4")};
  local.external_policy_local = true;
  st.services.push_back(local);
  auto np = sp("ns3/svc3:p80", "172.30.0.43", {ep("10.180.0.3", 80, false)});
  np.node_port = 3003;
  st.services.push_back(np);
  auto lb = sp("ns5/svc5:p80", "172.30.0.45", {ep("10.180.0.3", 80)});
  lb.node_port = 3002;
  lb.load_balancer_ips = {ip("5.6.7.8")};
  lb.load_balancer_source_ranges = {cidr("203.0.113.0/25"), cidr("192.168.0.0/24")};
  lb.affinity_timeout_seconds = 10800;
  st.services.push_back(lb);
  auto none = sp("ns6/svc6:p80", "172.30.0.46", {});
  none.node_port = 3006;
  st.services.push_back(none);
  auto udp = sp("ns7/dns:dns", "172.30.0.10", {ep("10.180.0.5", 53)});
  udp.protocol = net::Protocol::kUDP;
  udp.port = 53;
  st.services.push_back(udp);
  return st;
}

NftablesConfig config() {
  NftablesConfig c;
  c.cluster_cidrs = {cidr("10.0.0.0/8")};
  c.stale_chain_delay = std::chrono::milliseconds(0);
  return c;
}

RulesConfig rules_config(const NftablesConfig& c) {
  RulesConfig r;
  r.cluster_cidrs = c.cluster_cidrs;
  r.masquerade_all = c.masquerade_all;
  r.node_ports_on_all_addresses = c.node_port_addresses.empty();
  r.node_port_ips = {ip("192.168.0.2")};
  r.node_ips = {ip("192.168.0.2")};
  r.endpoint_shards = c.endpoint_shards;
  return r;
}

std::string nft_list() { return run("nft list table ip kube-proxy 2>&1"); }

void expect_same_lines(const std::string& got, const std::string& want) {
  std::istringstream g(got), w(want);
  std::string gl, wl;
  for (int n = 1;; ++n) {
    bool more_g = static_cast<bool>(std::getline(g, gl)), more_w = static_cast<bool>(std::getline(w, wl));
    if (!more_g && !more_w) break;
    EXPECT_EQ(more_g ? gl : "<missing>", more_w ? wl : "<extra>") << "line " << n;
  }
}

// The real client, plus a way to make the next commit carry one element the kernel refuses.
class Faulty final : public nft::Nftables {
 public:
  explicit Faulty(nft::NftablesPtr inner) : inner_(std::move(inner)) {}
  bool poison_next = false;
  Result<uint32_t> generation() override { return inner_->generation(); }
  Result<bool> list_table(nft::Family f, const std::string& t, nft::TableVisitor& v) override {
    return inner_->list_table(f, t, v);
  }
  std::unique_ptr<nft::Transaction> begin(nft::Family f, const std::string& t, std::optional<uint32_t> g) override {
    auto tx = inner_->begin(f, t, g);
    if (!poison_next) return tx;
    poison_next = false;
    return std::make_unique<Poisoned>(std::move(tx));
  }

 private:
  class Poisoned final : public nft::Transaction {
   public:
    explicit Poisoned(std::unique_ptr<nft::Transaction> tx) : tx_(std::move(tx)) {}
    void phase(uint8_t p) override { tx_->phase(p); }
    void add_table(const nft::Table& t) override { tx_->add_table(t); }
    void delete_table() override { tx_->delete_table(); }
    void add_chain(const nft::Chain& c) override { tx_->add_chain(c); }
    void flush_chain(std::string_view c) override { tx_->flush_chain(c); }
    void delete_chain(std::string_view c) override { tx_->delete_chain(c); }
    void add_rule(std::string_view c, const nft::Rule& r) override { tx_->add_rule(c, r); }
    void delete_rule(std::string_view c, uint64_t h) override { tx_->delete_rule(c, h); }
    void add_set(const nft::SetSpec& s) override { tx_->add_set(s); }
    void flush_set(std::string_view s) override { tx_->flush_set(s); }
    void delete_set(std::string_view s) override { tx_->delete_set(s); }
    void add_elements(std::string_view s, std::span<const nft::Element> e) override { tx_->add_elements(s, e); }
    void delete_elements(std::string_view s, std::span<const nft::Element> e) override { tx_->delete_elements(s, e); }
    size_t size() const override { return tx_->size(); }
    Status commit() override {
      nft::Element bad = nft::key_element(std::string("\x0a\x00", 2));  // half a key
      tx_->phase(nft::Transaction::kPhases - 1);
      tx_->add_elements("cluster-ips", std::span<const nft::Element>(&bad, 1));
      return tx_->commit();
    }

   private:
    std::unique_ptr<nft::Transaction> tx_;
  };
  nft::NftablesPtr inner_;
};

class NftablesModeNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    KNODE_REQUIRE_NETNS();
    run("nft flush ruleset");
    config_ = config();
    proxier_ = make(config_);
  }
  ProxyBackendPtr make(const NftablesConfig& c, Faulty** faulty = nullptr) {
    auto client = nft::open_netlink_nftables();
    EXPECT_TRUE(client.ok()) << client.error();
    auto f = std::make_unique<Faulty>(std::move(*client));
    if (faulty) *faulty = f.get();
    return make_nftables_proxier(std::move(f), c, host_);
  }
  Status sync(ProxyBackend& p, const proxy::ProxyState& st, const std::set<std::string>& changed, bool full) {
    SyncStats stats;
    return p.sync(st, changed, full, &stats);
  }
  std::map<std::string, std::vector<uint64_t>> handles() {
    std::map<std::string, std::vector<uint64_t>> out;
    auto client = nft::open_netlink_nftables();
    auto t = nft::read_table(**client, nft::Family::kIPv4, "kube-proxy");
    if (!t.ok() || !t->has_value()) return out;
    for (const auto& c : (*t)->chains) {
      for (const auto& r : c.rules) out[c.chain.name].push_back(r.handle);
    }
    return out;
  }

  NetnsHost host_;
  NftablesConfig config_;
  ProxyBackendPtr proxier_;
};

TEST_F(NftablesModeNetns, NftListShowsTheLayoutLineByLine) {
  auto st = rich_state();
  ASSERT_TRUE(sync(*proxier_, st, {}, true).ok());
  expect_same_lines(nft_list(), nft::print_table(generate(st, rules_config(config_))));
}

// A first sync bigger than first_sync_batch_ops: the kernel takes the batches ahead (the
// base chains empty) and then the base chains' rules; the table lists as if written in
// one batch, and a restarted proxier finds nothing to write.
TEST_F(NftablesModeNetns, BigFirstSyncGoesAheadInBatchesAndListsTheSameLayout) {
  config_.first_sync_batch_ops = 6;
  auto p = make(config_);
  auto st = rich_state();
  auto client = nft::open_netlink_nftables();
  ASSERT_TRUE(client.ok()) << client.error();
  auto g0 = (*client)->generation();
  ASSERT_TRUE(g0.ok());
  ASSERT_TRUE(sync(*p, st, {}, true).ok());
  auto g1 = (*client)->generation();
  ASSERT_TRUE(g1.ok());
  EXPECT_GE(*g1 - *g0, 3u) << "one commit per batch: at least two ahead and the last";
  expect_same_lines(nft_list(), nft::print_table(generate(st, rules_config(config_))));
  auto again = make(config_);
  ASSERT_TRUE(sync(*again, st, {}, true).ok());
  auto g2 = (*client)->generation();
  ASSERT_TRUE(g2.ok());
  EXPECT_EQ(*g2, *g1) << "the restarted proxier wrote to a table it should have adopted as is";
}

TEST_F(NftablesModeNetns, EndpointRulesCascadeAsNftListsIt) {
  auto client = nft::open_netlink_nftables();
  ASSERT_TRUE(client.ok()) << client.error();
  nft::ReconcilerOptions o;
  o.table = kTable;
  nft::Reconciler r(**client, o);
  auto rc = rules_config(config_);
  rc.endpoint_pick = RulesConfig::EndpointPick::kCascade;
  auto st = rich_state();
  ASSERT_TRUE(r.begin_full().ok());
  describe(r, st, rc);
  ASSERT_TRUE(r.commit().ok());
  const std::string listed = nft_list();
  expect_same_lines(listed, nft::print_table(generate(st, rc)));
  EXPECT_NE(listed.find("numgen random mod 2 0 meta l4proto tcp dnat to 10.180.0.1:80"), std::string::npos) << listed;
}

TEST_F(NftablesModeNetns, NodePortAddressesFillTheNodePortIpsSet) {
  config_.node_port_addresses = {cidr("192.168.0.0/16")};
  auto p = make(config_);
  auto st = rich_state();
  ASSERT_TRUE(sync(*p, st, {}, true).ok());
  auto rc = rules_config(config_);
  expect_same_lines(nft_list(), nft::print_table(generate(st, rc)));
  EXPECT_NE(nft_list().find("elements = { 192.168.0.2 }"), std::string::npos);
}

// Every service port's slots in one shard map (endpoint_shards = 1): the kernel takes the
// members' adjacent ranges, refills the map when one changes, and the partial syncs leave
// what a full description says.
TEST_F(NftablesModeNetns, OneSharedShardMapThroughPartialSyncs) {
  config_.endpoint_shards = 1;
  auto p = make(config_);
  auto st = rich_state();
  const auto rc = rules_config(config_);
  ASSERT_TRUE(sync(*p, st, {}, true).ok());
  expect_same_lines(nft_list(), nft::print_table(generate(st, rc)));
  ASSERT_NE(nft_list().find("map endpoints-000 {"), std::string::npos);
  auto check = [&](const char* what) {
    EXPECT_EQ(blocks(nft_list()), blocks(nft::print_table(generate(st, rc)))) << what;
  };
  st.services[0].cluster_endpoints = {ep("10.180.0.1", 80), ep("10.180.0.7", 80), ep("10.180.0.8", 80)};
  st.services[0].local_endpoints = st.services[0].cluster_endpoints;
  ASSERT_TRUE(sync(*p, st, {"ns1/svc1:p80"}, false).ok());
  check("an endpoint more");
  st.services[2].cluster_endpoints.clear();
  st.services[2].local_endpoints.clear();
  st.services[2].has_any_endpoint = false;
  ASSERT_TRUE(sync(*p, st, {st.services[2].name}, false).ok());
  check("a member without endpoints");
  const std::string gone = st.services[1].name;
  st.services.erase(st.services.begin() + 1);
  ASSERT_TRUE(sync(*p, st, {gone}, false).ok());
  check("a member gone");
  st.services[0].affinity_timeout_seconds = 60;
  ASSERT_TRUE(sync(*p, st, {"ns1/svc1:p80"}, false).ok());
  check("a member leaving for ClientIP affinity");
  // A restarted proxier finds the same layout and writes nothing.
  auto client = nft::open_netlink_nftables();
  ASSERT_TRUE(client.ok()) << client.error();
  auto g1 = (*client)->generation();
  ASSERT_TRUE(g1.ok());
  auto again = make(config_);
  ASSERT_TRUE(sync(*again, st, {}, true).ok());
  auto g2 = (*client)->generation();
  ASSERT_TRUE(g2.ok());
  EXPECT_EQ(*g2, *g1) << "the restarted proxier wrote to a table it should have adopted as is";
}

TEST_F(NftablesModeNetns, PartialSyncLeavesOtherServicesUntouched) {
  auto st = rich_state();
  ASSERT_TRUE(sync(*proxier_, st, {}, true).ok());
  auto before = handles();
  // svc1 gains an endpoint and loses one: its endpoint map's elements change, no rule
  // does (not even svc1's own).
  st.services[0].cluster_endpoints = {ep("10.180.0.1", 80), ep("10.180.0.9", 80)};
  st.services[0].local_endpoints = st.services[0].cluster_endpoints;
  ASSERT_TRUE(sync(*proxier_, st, {"ns1/svc1:p80"}, false).ok());
  EXPECT_EQ(handles(), before) << "an endpoint change rewrote a rule";
  EXPECT_GT(before.size(), 20u);
  EXPECT_EQ(blocks(nft_list()), blocks(nft::print_table(generate(st, rules_config(config_)))));
  EXPECT_NE(nft_list().find("10.180.0.9 . 80"), std::string::npos);
  // A third endpoint, then one alone: still no rule rewritten.
  for (auto eps : {std::vector<proxy::Endpoint>{ep("10.180.0.1", 80), ep("10.180.0.9", 80), ep("10.180.0.4", 80)},
                   std::vector<proxy::Endpoint>{ep("10.180.0.4", 80)}}) {
    st.services[0].cluster_endpoints = eps;
    st.services[0].local_endpoints = eps;
    ASSERT_TRUE(sync(*proxier_, st, {"ns1/svc1:p80"}, false).ok());
    EXPECT_EQ(handles(), before) << eps.size() << " endpoints";
    EXPECT_EQ(blocks(nft_list()), blocks(nft::print_table(generate(st, rules_config(config_)))));
  }
  // Another service's chain changes shape (ClientIP affinity): only its own chains are
  // rewritten.
  st.services[0].affinity_timeout_seconds = 60;
  ASSERT_TRUE(sync(*proxier_, st, {"ns1/svc1:p80"}, false).ok());
  auto after = handles();
  for (const auto& [chain, hs] : before) {
    if (chain.find("ns1/svc1/") != std::string::npos) continue;
    EXPECT_EQ(after[chain], hs) << chain << " was rewritten by a partial sync of ns1/svc1";
  }
  EXPECT_NE(after["service-ULMVA6XW-ns1/svc1/tcp/p80"], before["service-ULMVA6XW-ns1/svc1/tcp/p80"]);
  EXPECT_EQ(blocks(nft_list()), blocks(nft::print_table(generate(st, rules_config(config_)))));
  // svc1's slots were alone in their shard map: it went with the rule that read it.
  const auto rc = rules_config(config_);
  for (const auto& sp : st.services) {
    if (sp.name != "ns1/svc1:p80") {
      ASSERT_NE(endpoint_shard(sp.name, rc), endpoint_shard("ns1/svc1:p80", rc)) << sp.name;
    }
  }
  EXPECT_EQ(nft_list().find("map " + endpoint_shard_map(endpoint_shard("ns1/svc1:p80", rc)) + " {"), std::string::npos)
      << "the map went with the rule that read it";
}

TEST_F(NftablesModeNetns, RefusedBatchLeavesTheOldRulesetAndTheNextSyncRepairs) {
  Faulty* faulty = nullptr;
  auto p = make(config_, &faulty);
  auto st = rich_state();
  ASSERT_TRUE(sync(*p, st, {}, true).ok());
  const std::string before = nft_list();
  st.services[0].cluster_endpoints = {ep("10.180.0.7", 80)};
  st.services[0].local_endpoints = st.services[0].cluster_endpoints;
  faulty->poison_next = true;
  Status s = sync(*p, st, {"ns1/svc1:p80"}, false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("add element ip kube-proxy cluster-ips"), std::string::npos) << s.message();
  EXPECT_EQ(s.error_number(), EINVAL) << s.message();
  EXPECT_EQ(nft_list(), before) << "a refused batch changed the ruleset";
  ASSERT_TRUE(sync(*p, st, {"ns1/svc1:p80"}, true).ok());
  EXPECT_EQ(blocks(nft_list()), blocks(nft::print_table(generate(st, rules_config(config_)))));
}

TEST_F(NftablesModeNetns, RestartAdoptsTheTableWithoutWriting) {
  auto st = rich_state();
  ASSERT_TRUE(sync(*proxier_, st, {}, true).ok());
  auto client = nft::open_netlink_nftables();
  auto gen = (*client)->generation();
  auto before = handles();
  auto restarted = make(config_);
  ASSERT_TRUE(sync(*restarted, st, {}, true).ok());
  EXPECT_EQ(*(*client)->generation(), *gen) << "the adopting sync committed something";
  EXPECT_EQ(handles(), before);
  // And it keeps working from there: a partial sync after adoption.
  st.services[0].cluster_endpoints.pop_back();
  st.services[0].local_endpoints = st.services[0].cluster_endpoints;
  ASSERT_TRUE(sync(*restarted, st, {"ns1/svc1:p80"}, false).ok());
  EXPECT_EQ(blocks(nft_list()), blocks(nft::print_table(generate(st, rules_config(config_)))));
}

TEST_F(NftablesModeNetns, HostTablesAreLeftAloneAndCleanupIsSafeTwice) {
  ASSERT_EQ(run("nft add table inet host-fw; nft add chain inet host-fw input '{ type filter hook input priority 0; }'; "
                "nft add rule inet host-fw input tcp dport 22 accept; echo $?"),
            "0\n");
  const std::string host = run("nft list table inet host-fw");
  auto st = rich_state();
  ASSERT_TRUE(sync(*proxier_, st, {}, true).ok());
  st.services.pop_back();
  ASSERT_TRUE(sync(*proxier_, st, {"ns7/dns:dns"}, false).ok());
  EXPECT_EQ(run("nft list table inet host-fw"), host);
  ASSERT_TRUE(proxier_->cleanup().ok());
  EXPECT_EQ(nft_list().find("table ip kube-proxy {"), std::string::npos);
  ASSERT_TRUE(proxier_->cleanup().ok());
  EXPECT_EQ(run("nft list table inet host-fw"), host);
}

}  // namespace
