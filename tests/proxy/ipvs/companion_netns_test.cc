// IPVS mode's companions (ip sets + the iptables rules matching them) on this machine's
// kernel, which has ip_set and xt_set but no IPVS: what `ipset list` and
// `iptables-legacy-save` show, that a change touches only its entries, that a full sync
// repairs what was changed by hand, and that cleanup leaves nothing.
#include <gtest/gtest.h>

#include <algorithm>

#include "ipvs/companion_sync.h"
#include "support/netns_util.h"

namespace knode::ipvs_proxy {
namespace {

using iptables::testing::run;
using iptables::testing::saved;

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }

proxy::Endpoint backend(const char* addr, uint16_t port, bool local) {
  proxy::Endpoint b;
  b.ip = ip(addr);
  b.port = port;
  b.local = local;
  return b;
}

proxy::ProxyState sample() {
  proxy::ProxyState st;
  proxy::ServicePort web;
  web.name = "default/web:http";
  web.cluster_ip = ip("10.96.0.10");
  web.port = 80;
  web.node_port = 30080;
  web.cluster_endpoints = {backend("10.244.0.5", 8080, true), backend("10.244.1.5", 8080, false)};
  web.has_any_endpoint = true;
  st.services.push_back(web);

  proxy::ServicePort lb;
  lb.name = "default/lb:https";
  lb.cluster_ip = ip("10.96.0.20");
  lb.port = 443;
  lb.node_port = 30443;
  lb.external_policy_local = true;
  lb.health_check_node_port = 32000;
  lb.load_balancer_ips = {ip("192.0.2.10")};
  // The node (10.0.0.1) is inside a range: no KUBE-IPVS-OUT-FILTER rule, whose ipvs
  // match this kernel lacks (the VM test covers it).
  lb.load_balancer_source_ranges = {*net::Cidr::Parse("198.51.100.0/24"), *net::Cidr::Parse("10.0.0.0/24")};
  lb.external_ips = {ip("192.0.2.20")};
  lb.cluster_endpoints = {backend("10.244.0.6", 8443, true)};
  lb.local_endpoints = lb.cluster_endpoints;
  lb.has_any_endpoint = true;
  st.services.push_back(lb);

  proxy::ServicePort dns;
  dns.name = "kube-system/dns:dns";
  dns.protocol = net::Protocol::kUDP;
  dns.cluster_ip = ip("10.96.0.53");
  dns.port = 53;
  dns.cluster_endpoints = {backend("10.244.1.9", 53, false)};
  dns.has_any_endpoint = true;
  st.services.push_back(dns);
  return st;
}

CompanionConfig config() {
  CompanionConfig c;
  c.cluster_cidrs = {*net::Cidr::Parse("10.244.0.0/16")};
  c.node_port_addresses = {ip("10.0.0.1")};
  c.node_addresses = {ip("10.0.0.1")};
  c.node_ips = {ip("10.0.0.1")};
  return c;
}

// `ipset list NAME` members, sorted.
std::vector<std::string> members(const std::string& set) {
  std::string out = run("ipset list " + set + " 2>&1");
  std::vector<std::string> m;
  size_t at = out.find("Members:\n");
  if (at == std::string::npos) return {"<no set: " + out + ">"};
  std::string rest = out.substr(at + 9);
  size_t start = 0;
  while (start < rest.size()) {
    size_t nl = rest.find('\n', start);
    std::string line = rest.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty()) m.push_back(line);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  std::sort(m.begin(), m.end());
  return m;
}

bool has_line(const std::vector<std::string>& lines, const std::string& want) {
  return std::find(lines.begin(), lines.end(), want) != lines.end();
}

class IpvsCompanion : public ::testing::Test {
 protected:
  void SetUp() override {
    KNODE_REQUIRE_NETNS();
    iptables::testing::reset_tables();
    run("ipset destroy 2>/dev/null");
    auto opened = ipset::open_netlink_ipset();
    ASSERT_TRUE(opened.ok()) << opened.error();
    sets_ = std::move(*opened);
    if (!sets_->is_available()) GTEST_SKIP() << "no ip_set in this kernel";
  }
  ipset::IpsetPtr sets_;
};

TEST_F(IpvsCompanion, SetsHoldWhatKubeProxyPutsThere) {
  CompanionSync sync(*sets_, config());
  CompanionStats st;
  { Status s0 = sync.sync(sample(), {}, true, &st); ASSERT_TRUE(s0.ok()) << s0.message(); }
  EXPECT_EQ(members("KUBE-CLUSTER-IP"),
            (std::vector<std::string>{"10.96.0.10,tcp:80", "10.96.0.20,tcp:443", "10.96.0.53,udp:53"}));
  // Only local endpoints need the hairpin entry.
  EXPECT_EQ(members("KUBE-LOOP-BACK"),
            (std::vector<std::string>{"10.244.0.5,tcp:8080,10.244.0.5", "10.244.0.6,tcp:8443,10.244.0.6"}));
  EXPECT_EQ(members("KUBE-NODE-PORT-TCP"), (std::vector<std::string>{"30080", "30443"}));
  EXPECT_EQ(members("KUBE-NODE-PORT-LOCAL-TCP"), (std::vector<std::string>{"30443"}));
  EXPECT_EQ(members("KUBE-NODE-PORT-UDP"), std::vector<std::string>{});
  EXPECT_EQ(members("KUBE-HEALTH-CHECK-NODE-PORT"), (std::vector<std::string>{"32000"}));
  EXPECT_EQ(members("KUBE-LOAD-BALANCER"), (std::vector<std::string>{"192.0.2.10,tcp:443"}));
  EXPECT_EQ(members("KUBE-LOAD-BALANCER-LOCAL"), (std::vector<std::string>{"192.0.2.10,tcp:443"}));
  EXPECT_EQ(members("KUBE-LOAD-BALANCER-FW"), (std::vector<std::string>{"192.0.2.10,tcp:443"}));
  EXPECT_EQ(members("KUBE-LOAD-BALANCER-SOURCE-CIDR"),
            (std::vector<std::string>{"192.0.2.10,tcp:443,10.0.0.0/24", "192.0.2.10,tcp:443,198.51.100.0/24"}));
  EXPECT_EQ(members("KUBE-LOAD-BALANCER-SOURCE-IP"), (std::vector<std::string>{"192.0.2.10,tcp:443,192.0.2.10"}));
  EXPECT_EQ(members("KUBE-EXTERNAL-IP-LOCAL"), (std::vector<std::string>{"192.0.2.20,tcp:443"}));
  EXPECT_EQ(members("KUBE-EXTERNAL-IP"), std::vector<std::string>{});
  EXPECT_EQ(members("KUBE-IPVS-IPS"),
            (std::vector<std::string>{"10.96.0.10", "10.96.0.20", "10.96.0.53", "192.0.2.10", "192.0.2.20"}));
  EXPECT_EQ(st.entries_deleted, 0u);
  EXPECT_TRUE(st.rules_written);
}

TEST_F(IpvsCompanion, RulesAreKubeProxysIpvsLayout) {
  CompanionSync sync(*sets_, config());
  { Status s0 = sync.sync(sample(), {}, true); ASSERT_TRUE(s0.ok()) << s0.message(); }
  auto nat = saved("nat");
  for (const char* want : {
           "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
           "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
           "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
           "-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN",
           "-A KUBE-SERVICES -m comment --comment \"Kubernetes service lb portal\" -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER",
           "-A KUBE-SERVICES ! -s 10.244.0.0/16 -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ",
           "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT",
           "-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT",
           "-A KUBE-NODE-PORT -p tcp -m comment --comment \"Kubernetes nodeport TCP port with externalTrafficPolicy=local\" -m set --match-set KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN",
           "-A KUBE-NODE-PORT -p tcp -m comment --comment \"Kubernetes nodeport TCP port for masquerade purpose\" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ",
           "-A KUBE-POSTROUTING -m comment --comment \"Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose\" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE",
           "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
           "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
           "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
           "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
       }) {
    EXPECT_TRUE(has_line(nat, want)) << "missing in nat: " << want;
  }
  // No UDP node port, no plain external IP: no rules for those empty sets.
  for (const auto& l : nat) {
    EXPECT_EQ(l.find("KUBE-NODE-PORT-UDP"), std::string::npos) << l;
    EXPECT_EQ(l.find("--match-set KUBE-EXTERNAL-IP "), std::string::npos) << l;
  }
  auto filter = saved("filter");
  for (const char* want : {
           "-A INPUT -m comment --comment \"kubernetes ipvs access filter\" -j KUBE-IPVS-FILTER",
           "-A OUTPUT -m comment --comment \"kubernetes ipvs access filter\" -j KUBE-IPVS-OUT-FILTER",
           "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
           "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT",
           "-A KUBE-NODE-PORT -m comment --comment \"Kubernetes health check node port\" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT",
           "-A KUBE-PROXY-FIREWALL -m comment --comment \"Kubernetes service load balancer ip + port for load balancer with sourceRange\" -m set --match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-SOURCE-RANGES-FIREWALL",
           "-A KUBE-SOURCE-RANGES-FIREWALL -m comment --comment \"Kubernetes service load balancer ip + port + source cidr for packet filter purpose\" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN",
           "-A KUBE-SOURCE-RANGES-FIREWALL -j DROP",
           "-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN",
           "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT --reject-with icmp-port-unreachable",
       }) {
    EXPECT_TRUE(has_line(filter, want)) << "missing in filter: " << want;
  }
}

TEST_F(IpvsCompanion, OneEndpointChangeTouchesOneEntryAndNoRule) {
  CompanionSync sync(*sets_, config());
  { Status s0 = sync.sync(sample(), {}, true); ASSERT_TRUE(s0.ok()) << s0.message(); }
  proxy::ProxyState next = sample();
  next.services[0].cluster_endpoints[0] = backend("10.244.0.7", 8080, true);
  CompanionStats st;
  ASSERT_TRUE(sync.sync(next, {next.services[0].name}, false, &st).ok());
  EXPECT_EQ(st.entries_added, 1u);
  EXPECT_EQ(st.entries_deleted, 1u);
  EXPECT_FALSE(st.rules_written);
  EXPECT_EQ(members("KUBE-LOOP-BACK"),
            (std::vector<std::string>{"10.244.0.6,tcp:8443,10.244.0.6", "10.244.0.7,tcp:8080,10.244.0.7"}));

  // A UDP node port appears: its set turns non-empty, so its rule is written.
  next.services[2].node_port = 30053;
  st = {};
  ASSERT_TRUE(sync.sync(next, {next.services[2].name}, false, &st).ok());
  EXPECT_TRUE(st.rules_written);
  EXPECT_TRUE(has_line(saved("nat"),
                       "-A KUBE-NODE-PORT -p udp -m comment --comment \"Kubernetes nodeport UDP port for masquerade purpose\" -m set --match-set KUBE-NODE-PORT-UDP dst -j KUBE-MARK-MASQ"));
}

TEST_F(IpvsCompanion, FullSyncRepairsHandEdits) {
  CompanionSync sync(*sets_, config());
  { Status s0 = sync.sync(sample(), {}, true); ASSERT_TRUE(s0.ok()) << s0.message(); }
  run("ipset del KUBE-CLUSTER-IP 10.96.0.10,tcp:80; ipset add KUBE-CLUSTER-IP 10.96.9.9,tcp:1");
  run("iptables-legacy -t nat -F KUBE-POSTROUTING");
  ASSERT_TRUE(sync.sync(sample(), {sample().services[0].name}, false).ok());  // partial: trusts what it wrote
  EXPECT_FALSE(has_line(members("KUBE-CLUSTER-IP"), "10.96.0.10,tcp:80"));
  CompanionStats st;
  { Status s0 = sync.sync(sample(), {}, true, &st); ASSERT_TRUE(s0.ok()) << s0.message(); }
  EXPECT_EQ(members("KUBE-CLUSTER-IP"),
            (std::vector<std::string>{"10.96.0.10,tcp:80", "10.96.0.20,tcp:443", "10.96.0.53,udp:53"}));
  EXPECT_EQ(st.entries_added, 1u);
  EXPECT_EQ(st.entries_deleted, 1u);
  EXPECT_TRUE(has_line(saved("nat"), "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"));
}

TEST_F(IpvsCompanion, SharedEntriesStayWhileAnyServicePortNeedsThem) {
  // Two ports of one service share the cluster IP in KUBE-IPVS-IPS.
  proxy::ProxyState st = sample();
  proxy::ServicePort metrics = st.services[0];
  metrics.name = "default/web:metrics";
  metrics.port = 9090;
  metrics.node_port = 0;
  st.services.push_back(metrics);
  CompanionSync sync(*sets_, config());
  { Status s0 = sync.sync(st, {}, true); ASSERT_TRUE(s0.ok()) << s0.message(); }
  ASSERT_TRUE(has_line(members("KUBE-CLUSTER-IP"), "10.96.0.10,tcp:9090"));
  // The http port goes (a partial sync naming it): its entries go, the shared IP stays.
  proxy::ProxyState next = st;
  next.services.erase(next.services.begin());
  ASSERT_TRUE(sync.sync(next, {"default/web:http"}, false).ok());
  EXPECT_FALSE(has_line(members("KUBE-CLUSTER-IP"), "10.96.0.10,tcp:80"));
  EXPECT_TRUE(has_line(members("KUBE-CLUSTER-IP"), "10.96.0.10,tcp:9090"));
  EXPECT_TRUE(has_line(members("KUBE-IPVS-IPS"), "10.96.0.10"));
  EXPECT_FALSE(has_line(members("KUBE-NODE-PORT-TCP"), "30080"));
  // The metrics port goes too: now the IP goes.
  next.services.pop_back();
  ASSERT_TRUE(sync.sync(next, {"default/web:metrics"}, false).ok());
  EXPECT_FALSE(has_line(members("KUBE-IPVS-IPS"), "10.96.0.10"));
  // And a full sync agrees with the incremental result.
  CompanionStats full;
  ASSERT_TRUE(sync.sync(next, {}, true, &full).ok());
  EXPECT_EQ(full.entries_added + full.entries_deleted, 0u);
}

TEST_F(IpvsCompanion, EveryoneAsASourceRangeIsStoredAsTwoHalves) {
  // The kernel refuses a /0 in hash:ip,port,net; 0.0.0.0/0 is a common range.
  proxy::ProxyState st = sample();
  st.services[1].load_balancer_source_ranges = {*net::Cidr::Parse("0.0.0.0/0"), *net::Cidr::Parse("10.0.0.0/24")};
  CompanionSync sync(*sets_, config());
  { Status s0 = sync.sync(st, {}, true); ASSERT_TRUE(s0.ok()) << s0.message(); }
  EXPECT_EQ(members("KUBE-LOAD-BALANCER-SOURCE-CIDR"),
            (std::vector<std::string>{"192.0.2.10,tcp:443,0.0.0.0/1", "192.0.2.10,tcp:443,10.0.0.0/24",
                                      "192.0.2.10,tcp:443,128.0.0.0/1"}));
}

TEST_F(IpvsCompanion, VipFilterRejectsOnlyAfterEveryServiceSetReturned) {
  CompanionSync sync(*sets_, config());
  { Status s0 = sync.sync(sample(), {}, true); ASSERT_TRUE(s0.ok()) << s0.message(); }
  std::vector<std::string> chain;
  for (const auto& l : saved("filter")) {
    if (l.rfind("-A KUBE-IPVS-FILTER ", 0) == 0) chain.push_back(l);
  }
  EXPECT_EQ(chain, (std::vector<std::string>{
                       "-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN",
                       "-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN",
                       "-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN",
                       "-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN",
                       "-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN",
                       "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT --reject-with icmp-port-unreachable",
                   }));
}

TEST_F(IpvsCompanion, OnlyTheNodeIpDecidesNodeAccessToSourceRangedLoadBalancers) {
  // 10.0.0.1 is a local address (say, a bridge) inside a range, but not the node IP:
  // the node is kept out (KUBE-IPVS-OUT-FILTER), not let in (KUBE-LOAD-BALANCER-SOURCE-IP).
  CompanionConfig c = config();
  c.node_ips = {ip("192.168.1.10")};
  auto no_access = lb_no_node_access(sample(), c);
  ASSERT_EQ(no_access.size(), 1u);
  EXPECT_EQ(no_access.begin()->ip, ip("192.0.2.10"));
  auto sets = desired_sets(sample(), c);
  EXPECT_TRUE(sets["KUBE-LOAD-BALANCER-SOURCE-IP"].empty());
  c.node_ips = {ip("10.0.0.1")};
  EXPECT_TRUE(lb_no_node_access(sample(), c).empty());
  EXPECT_EQ(desired_sets(sample(), c)["KUBE-LOAD-BALANCER-SOURCE-IP"].size(), 1u);
}

TEST_F(IpvsCompanion, NoClusterCidrMasqueradesBySourceVip) {
  CompanionConfig c = config();
  c.cluster_cidrs.clear();
  CompanionSync sync(*sets_, c);
  { Status s0 = sync.sync(sample(), {}, true); ASSERT_TRUE(s0.ok()) << s0.message(); }
  EXPECT_TRUE(has_line(saved("nat"),
                       "-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ"));
}

TEST_F(IpvsCompanion, CleanupRemovesRulesAndSetsAndIsIdempotent) {
  run("iptables-legacy -t nat -N DOCKER; iptables-legacy -t nat -A PREROUTING -j DOCKER");
  run("ipset create foreign hash:ip");
  CompanionSync sync(*sets_, config());
  { Status s0 = sync.sync(sample(), {}, true); ASSERT_TRUE(s0.ok()) << s0.message(); }
  ASSERT_TRUE(sync.cleanup().ok());
  ASSERT_TRUE(sync.cleanup().ok());
  for (const char* table : {"nat", "filter"}) {
    for (const auto& l : saved(table)) EXPECT_EQ(l.find("KUBE-"), std::string::npos) << table << ": " << l;
  }
  EXPECT_EQ(run("ipset list -n"), "foreign\n");
  EXPECT_TRUE(has_line(saved("nat"), "-A PREROUTING -j DOCKER"));
}

}  // namespace
}  // namespace knode::ipvs_proxy
