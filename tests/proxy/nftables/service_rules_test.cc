// The generated nftables layout, checked line by line as `nft list table ip kube-proxy`
// prints it (tests/proxy/nftables/layout_netns_test.cc checks that nft really prints it so).
#include <gtest/gtest.h>

#include <linux/netfilter/nf_tables.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

#include "knode/dataplane/nftables/exprs.h"
#include "knode/dataplane/nftables/print.h"
#include "nftables/chain_names.h"
#include "nftables/service_rules.h"

using namespace knode;
using namespace knode::nftables_proxy;

namespace {

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }
net::Cidr cidr(const char* s) { return *net::Cidr::Parse(s); }

proxy::Endpoint ep(const char* addr, uint16_t port, bool local = true) {
  proxy::Endpoint e;
  e.ip = ip(addr);
  e.port = port;
  e.local = local;
  return e;
}

proxy::ServicePort svc1() {
  proxy::ServicePort sp;
  sp.name = "ns1/svc1:p80";
  sp.cluster_ip = ip("172.30.0.41");
  sp.port = 80;
  sp.cluster_endpoints = {ep("10.180.0.1", 80), ep("10.180.0.2", 80)};
  sp.local_endpoints = sp.cluster_endpoints;
  sp.has_any_endpoint = true;
  return sp;
}

RulesConfig config() {
  RulesConfig c;
  c.cluster_cidrs = {cidr("10.0.0.0/8")};
  return c;
}

std::string print(const proxy::ProxyState& st, const RulesConfig& c = config()) {
  return nftables::print_table(generate(st, c));
}

// The shard map a service port's slots are in (config()'s shard count).
std::string shard_map(const std::string& service_port, const RulesConfig& c = config()) {
  return endpoint_shard_map(endpoint_shard(service_port, c));
}

uint32_t key_u32(const nftables::Bytes& key) {
  uint32_t v = 0;
  std::memcpy(&v, key.data(), 4);
  return ntohl(v);  // big endian, as an interval set compares its keys
}

// A policy chain's slots: the shard map and offset its rule reads, and the ranges (start
// elements) the map holds there.
struct ChainSlots {
  std::string map;
  uint32_t offset = 0;
  size_t ranges = 0;
};
ChainSlots chain_slots(const nftables::TableContent& t, const std::string& chain_name) {
  ChainSlots out;
  const auto* c = t.find_chain(chain_name);
  if (!c) return out;
  for (const auto& rule : c->rules) {
    for (const auto& e : rule.exprs) {
      if (const auto* n = std::get_if<nftables::Numgen>(&e)) out.offset = n->offset;
      if (const auto* l = std::get_if<nftables::Lookup>(&e)) out.map = l->set;
    }
  }
  const auto* set = t.find_set(out.map);
  if (!set) return out;
  for (const auto& el : set->elements) {
    const uint32_t k = key_u32(el.key);
    if (el.flags == 0 && k >= out.offset && k - out.offset < nftables::kSlots) ++out.ranges;
  }
  return out;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The rules of one chain as `nft list` prints them.
std::vector<std::string> chain(const nftables::TableContent& t, const std::string& name) {
  std::vector<std::string> out;
  if (const auto* c = t.find_chain(name)) {
    for (const auto& r : c->rules) out.push_back(nftables::print_rule(r));
  } else {
    out.push_back("<no chain " + name + ">");
  }
  return out;
}

std::vector<std::string> elements(const nftables::TableContent& t, const std::string& set) {
  std::vector<std::string> out;
  if (const auto* s = t.find_set(set)) {
    for (const auto& e : s->elements) out.push_back(nftables::print_element(e, s->spec));
  }
  return out;
}

// Expected whole-table output, each line compared (a mismatch names the line).
void expect_lines(const std::string& got, const std::string& want) {
  auto g = split(got), w = split(want);
  for (size_t i = 0; i < std::max(g.size(), w.size()); ++i) {
    EXPECT_EQ(i < g.size() ? g[i] : "<missing>", i < w.size() ? w[i] : "<extra>") << "line " << i + 1;
  }
}

}  // namespace

TEST(NftablesChainNames, MatchKubeProxy) {
  proxy::ServicePort sp = svc1();
  EXPECT_EQ(service_chain_base(sp), "ULMVA6XW-ns1/svc1/tcp/p80");
  EXPECT_EQ(endpoint_chain_base(sp, ep("10.180.0.1", 80)), "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80");
  sp.name = "ns5/svc5:p80";
  EXPECT_EQ(endpoint_chain_base(sp, ep("10.180.0.3", 80)), "GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80");
  sp.name = "default/plain";
  sp.protocol = net::Protocol::kUDP;
  EXPECT_EQ(service_port_base_name(sp), "default/plain/udp/");
}

TEST(NftablesServiceRules, WholeTableAsNftListPrintsIt) {
  proxy::ProxyState st;
  st.services = {svc1()};
  expect_lines(print(st), R"(table ip kube-proxy {
	comment "rules for kube-proxy"
	set cluster-ips {
		type ipv4_addr
		comment "Active ClusterIPs"
		elements = { 172.30.0.41 }
	}

	map no-endpoint-services {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to services with no endpoints"
	}

	map no-endpoint-nodeports {
		type inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to service nodeports with no endpoints"
	}

	map firewall-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "destinations that are subject to LoadBalancerSourceRanges"
	}

	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
		elements = { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
	}

	map service-nodeports {
		type inet_proto . inet_service : verdict
		comment "NodePort traffic"
	}

	set hairpin-connections {
		type ipv4_addr . ipv4_addr . inet_proto . inet_service
		comment "service hairpin connections"
		elements = { 10.180.0.1 . 10.180.0.1 . tcp . 80,
			     10.180.0.2 . 10.180.0.2 . tcp . 80 }
	}

	map endpoints-2e1 {
		typeof numgen random mod 720720 : ip daddr . th dport
		flags interval
		elements = { 1436394960-1436755319 : 10.180.0.1 . 80, 1436755320-1437115679 : 10.180.0.2 . 80 }
	}

	chain filter-prerouting-pre-dnat {
		type filter hook prerouting priority dstnat - 10; policy accept;
		ct state new jump firewall-check
	}

	chain filter-output-pre-dnat {
		type filter hook output priority -110; policy accept;
		ct state new jump firewall-check
	}

	chain filter-input {
		type filter hook input priority filter; policy accept;
		ct state new jump nodeport-endpoints-check
		ct state new jump service-endpoints-check
	}

	chain filter-forward {
		type filter hook forward priority filter; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump cluster-ips-check
	}

	chain filter-output {
		type filter hook output priority filter; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump cluster-ips-check
	}

	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}

	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}

	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump masquerading
	}

	chain nodeport-endpoints-check {
		fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports
	}

	chain service-endpoints-check {
		ip daddr . meta l4proto . th dport vmap @no-endpoint-services
	}

	chain firewall-check {
		ip daddr . meta l4proto . th dport vmap @firewall-ips
	}

	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports
	}

	chain masquerading {
		meta mark & 0x00004000 != 0x00000000 meta mark set meta mark ^ 0x00004000 masquerade fully-random
		ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random
	}

	chain cluster-ips-check {
		ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
	}

	chain mark-for-masquerade {
		meta mark set meta mark | 0x00004000
	}

	chain reject-chain {
		comment "helper for @no-endpoint-services / @no-endpoint-nodeports"
		reject
	}

	chain service-ULMVA6XW-ns1/svc1/tcp/p80 {
		ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
		meta l4proto tcp dnat ip to numgen random mod 720720 offset 1436394960 map @endpoints-2e1
	}
}
)");
  EXPECT_EQ(shard_map("ns1/svc1:p80"), "endpoints-2e1");
  EXPECT_EQ(endpoint_shard_map(0x1a), "endpoints-01a");
  EXPECT_EQ(endpoint_shard_owner(0x1a), "endpoints 26");
}

TEST(NftablesServiceRules, NoEndpointsRejectsEveryDestination) {
  auto sp = svc1();
  sp.cluster_endpoints.clear();
  sp.local_endpoints.clear();
  sp.has_any_endpoint = false;
  sp.node_port = 3001;
  sp.external_ips = {ip("192.168.99.11")};
  sp.load_balancer_ips = {ip("1.2.3.4")};
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, config());
  EXPECT_EQ(elements(t, "cluster-ips"), (std::vector<std::string>{"172.30.0.41"}));
  EXPECT_EQ(elements(t, "no-endpoint-services"),
            (std::vector<std::string>{
                "172.30.0.41 . tcp . 80 comment \"ns1/svc1:p80\" : goto reject-chain",
                "192.168.99.11 . tcp . 80 comment \"ns1/svc1:p80\" : goto reject-chain",
                "1.2.3.4 . tcp . 80 comment \"ns1/svc1:p80\" : goto reject-chain",
            }));
  EXPECT_EQ(elements(t, "no-endpoint-nodeports"),
            (std::vector<std::string>{"tcp . 3001 comment \"ns1/svc1:p80\" : goto reject-chain"}));
  EXPECT_TRUE(elements(t, "service-ips").empty());
  EXPECT_TRUE(elements(t, "service-nodeports").empty());
  for (const auto& c : t.chains) EXPECT_EQ(c.chain.name.find("ns1/svc1"), std::string::npos) << c.chain.name;
}

TEST(NftablesServiceRules, ExternalPolicyLocalKeepsSourceAndShortCircuitsPodsAndNode) {
  proxy::ServicePort sp;
  sp.name = "ns2/svc2:p80";
  sp.cluster_ip = ip("172.30.0.42");
  sp.port = 80;
  sp.node_port = 3001;
  sp.external_ips = {ip("192.168.99.22")};
  sp.load_balancer_ips = {ip("1.2.3.4")};
  sp.external_policy_local = true;
  sp.cluster_endpoints = {ep("10.180.0.2", 80), ep("10.180.0.3", 80, /*local=*/false)};
  sp.local_endpoints = {ep("10.180.0.2", 80)};
  sp.has_any_endpoint = true;
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, config());
  const std::string base = "42NFTM6N-ns2/svc2/tcp/p80";
  EXPECT_EQ(chain(t, "external-" + base), (std::vector<std::string>{
      "ip saddr 10.0.0.0/8 goto service-" + base + " comment \"short-circuit pod traffic\"",
      "fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"",
      "fib saddr type local goto service-" + base + " comment \"short-circuit local traffic\"",
      "goto local-" + base,
  }));
  const ChainSlots local = chain_slots(t, "local-" + base), cluster = chain_slots(t, "service-" + base);
  EXPECT_EQ(chain(t, "local-" + base), (std::vector<std::string>{
      "meta l4proto tcp dnat ip to numgen random mod 720720" +
      (local.offset ? " offset " + std::to_string(local.offset) : std::string()) + " map @" + shard_map(sp.name)}));
  EXPECT_EQ(chain(t, "service-" + base).size(), 2u);  // masquerade + both endpoints
  // Each policy chain picks from its own slots of the service port's shard map: the local
  // endpoint, or both.
  EXPECT_EQ(local.map, shard_map(sp.name));
  EXPECT_EQ(cluster.map, shard_map(sp.name));
  EXPECT_NE(local.offset, cluster.offset);
  EXPECT_EQ(local.ranges, 1u);
  EXPECT_EQ(cluster.ranges, 2u);
  EXPECT_EQ(elements(t, "service-ips"), (std::vector<std::string>{
      "172.30.0.42 . tcp . 80 : goto service-" + base,
      "192.168.99.22 . tcp . 80 : goto external-" + base,
      "1.2.3.4 . tcp . 80 : goto external-" + base,
  }));
  EXPECT_EQ(elements(t, "service-nodeports"), (std::vector<std::string>{"tcp . 3001 : goto external-" + base}));
  EXPECT_TRUE(elements(t, "no-endpoint-nodeports").empty());
}

TEST(NftablesServiceRules, ExternalPolicyLocalWithoutLocalEndpointsDropsOutsideTraffic) {
  proxy::ServicePort sp;
  sp.name = "ns2/svc2:p80";
  sp.cluster_ip = ip("172.30.0.42");
  sp.port = 80;
  sp.node_port = 3001;
  sp.external_policy_local = true;
  sp.cluster_endpoints = {ep("10.180.0.3", 80, false)};
  sp.has_any_endpoint = true;
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, config());
  const std::string base = "42NFTM6N-ns2/svc2/tcp/p80";
  EXPECT_EQ(elements(t, "no-endpoint-nodeports"),
            (std::vector<std::string>{"tcp . 3001 comment \"ns2/svc2:p80\" : drop"}));
  // Still reachable from pods and the node, through the short circuit.
  EXPECT_EQ(chain(t, "external-" + base).size(), 3u);
  EXPECT_EQ(elements(t, "service-nodeports"), (std::vector<std::string>{"tcp . 3001 : goto external-" + base}));
  EXPECT_EQ(t.find_chain("local-" + base), nullptr);
}

TEST(NftablesServiceRules, ClusterPolicyMasqueradesExternalTraffic) {
  auto sp = svc1();
  sp.node_port = 3003;
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, config());
  EXPECT_EQ(chain(t, "external-ULMVA6XW-ns1/svc1/tcp/p80"), (std::vector<std::string>{
      "jump mark-for-masquerade", "goto service-ULMVA6XW-ns1/svc1/tcp/p80"}));
}

TEST(NftablesServiceRules, LoadBalancerSourceRanges) {
  auto sp = svc1();
  sp.load_balancer_ips = {ip("5.6.7.8")};
  sp.load_balancer_source_ranges = {cidr("203.0.113.0/25")};
  proxy::ProxyState st;
  st.services = {sp};
  auto c = config();
  auto t = generate(st, c);
  EXPECT_EQ(chain(t, "firewall-ULMVA6XW-ns1/svc1/tcp/p80"),
            (std::vector<std::string>{"ip saddr != 203.0.113.0/25 drop"}));
  EXPECT_EQ(elements(t, "firewall-ips"), (std::vector<std::string>{
      "5.6.7.8 . tcp . 80 : goto firewall-ULMVA6XW-ns1/svc1/tcp/p80"}));
  // The node inside a range may also come from the LB IP itself.
  c.node_ips = {ip("203.0.113.5")};
  t = generate(st, c);
  EXPECT_EQ(chain(t, "firewall-ULMVA6XW-ns1/svc1/tcp/p80"),
            (std::vector<std::string>{"ip saddr != { 5.6.7.8, 203.0.113.0/25 } drop"}));
}

TEST(NftablesServiceRules, SessionAffinityUsesDynamicSets) {
  auto sp = svc1();
  sp.name = "ns5/svc5:p80";
  sp.cluster_endpoints = {ep("10.180.0.3", 80)};
  sp.local_endpoints = sp.cluster_endpoints;
  sp.affinity_timeout_seconds = 10800;
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, config());
  const std::string e = "GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80";
  const std::string text = nftables::print_table(t);
  EXPECT_NE(text.find("\tset affinity-" + e + " {\n\t\ttype ipv4_addr\n\t\tsize 65535\n\t\tflags dynamic,timeout\n"
                      "\t\ttimeout 3h\n\t}\n"),
            std::string::npos)
      << text;
  auto svc = chain(t, "service-" + service_chain_base(sp));
  ASSERT_EQ(svc.size(), 3u);
  EXPECT_EQ(svc[1], "ip saddr @affinity-" + e + " goto endpoint-" + e);
  EXPECT_EQ(svc[2], "numgen random mod 1 vmap { 0 : goto endpoint-" + e + " }");
  EXPECT_EQ(chain(t, "endpoint-" + e), (std::vector<std::string>{
      "update @affinity-" + e + " { ip saddr }", "meta l4proto tcp dnat to 10.180.0.3:80"}));
}

TEST(NftablesServiceRules, MasqueradeAllAndSeveralClusterCidrs) {
  auto c = config();
  c.masquerade_all = true;
  proxy::ProxyState st;
  st.services = {svc1()};
  EXPECT_EQ(chain(generate(st, c), "service-ULMVA6XW-ns1/svc1/tcp/p80")[0],
            "ip daddr 172.30.0.41 jump mark-for-masquerade");
  c.masquerade_all = false;
  c.cluster_cidrs = {cidr("10.244.0.0/16"), cidr("10.250.0.0/16")};
  EXPECT_EQ(chain(generate(st, c), "service-ULMVA6XW-ns1/svc1/tcp/p80")[0],
            "ip daddr 172.30.0.41 ip saddr != 10.244.0.0/16 ip saddr != 10.250.0.0/16 jump mark-for-masquerade");
}

TEST(NftablesServiceRules, EndpointsShareTheSlotsOfANamedMapWithoutEndpointChains) {
  auto sp = svc1();
  sp.cluster_endpoints.push_back(ep("10.180.0.3", 8080, /*local=*/false));
  proxy::ProxyState st;
  st.services = {sp};
  auto c1 = config();
  c1.endpoint_shards = 1;  // endpoints-000, svc1's chain at the slots of its hash
  auto t = generate(st, c1);
  const std::string map = "endpoints-000";
  const ChainSlots slots = chain_slots(t, "service-ULMVA6XW-ns1/svc1/tcp/p80");
  ASSERT_EQ(slots.map, map);
  ASSERT_GT(slots.offset, 0u);
  ASSERT_EQ(slots.offset % nftables::kSlots, 0u);
  const std::string o = std::to_string(slots.offset);
  const std::vector<std::string> rules = {
      "ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade",
      "meta l4proto tcp dnat ip to numgen random mod 720720 offset " + o + " map @" + map,
  };
  EXPECT_EQ(chain(t, "service-ULMVA6XW-ns1/svc1/tcp/p80"), rules);
  for (const auto& c : t.chains) EXPECT_FALSE(c.chain.name.starts_with("endpoint-")) << c.chain.name;
  const auto* set = t.find_set(map);
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(nftables::print_set_type(set->spec), "integer : ipv4_addr . inet_service");
  EXPECT_EQ(set->spec.flags, static_cast<uint32_t>(NFT_SET_INTERVAL | NFT_SET_MAP));
  const std::string text = nftables::print_table(t);
  auto at = [&](uint32_t slot) { return std::to_string(slots.offset + slot); };
  EXPECT_NE(text.find("\tmap " + map + " {\n\t\ttypeof numgen random mod 720720 : ip daddr . th dport\n"
                      "\t\tflags interval\n\t\telements = { " + at(0) + "-" + at(240239) + " : 10.180.0.1 . 80, " +
                      at(240240) + "-" + at(480479) + " : 10.180.0.2 . 80, " + at(480480) + "-" + at(720719) +
                      " : 10.180.0.3 . 8080 }\n\t}\n"),
            std::string::npos)
      << text;

  // One endpoint more or less, or one endpoint alone: the same rules, other elements.
  for (size_t n : {4u, 2u, 1u}) {
    auto changed = sp;
    changed.cluster_endpoints.resize(std::min(n, changed.cluster_endpoints.size()));
    while (changed.cluster_endpoints.size() < n) changed.cluster_endpoints.push_back(ep("10.180.0.9", 80));
    proxy::ProxyState st2;
    st2.services = {changed};
    auto t2 = generate(st2, c1);
    EXPECT_EQ(chain(t2, "service-ULMVA6XW-ns1/svc1/tcp/p80"), rules) << n;
    ASSERT_NE(t2.find_set(map), nullptr);
    EXPECT_EQ(t2.find_set(map)->elements.size(), 2 * n);
    EXPECT_EQ(chain_slots(t2, "service-ULMVA6XW-ns1/svc1/tcp/p80").ranges, n);
  }
}

TEST(NftablesServiceRules, KubeProxysShapeKeepsTheMapInTheRule) {
  auto c = config();
  c.endpoint_pick = RulesConfig::EndpointPick::kMap;
  auto sp = svc1();
  sp.cluster_endpoints.push_back(ep("10.180.0.3", 8080, /*local=*/false));
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, c);
  EXPECT_EQ(chain(t, "service-ULMVA6XW-ns1/svc1/tcp/p80"), (std::vector<std::string>{
      "ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade",
      "meta l4proto tcp dnat ip to numgen random mod 3 map { 0 : 10.180.0.1 . 80, 1 : 10.180.0.2 . 80, "
      "2 : 10.180.0.3 . 8080 }",
  }));
  // The map is the rule's own (anonymous): key integer, data address . port.
  const auto& rule = t.find_chain("service-ULMVA6XW-ns1/svc1/tcp/p80")->rules[1];
  const nftables::Lookup* map = nullptr;
  for (const auto& e : rule.exprs) {
    if (const auto* l = std::get_if<nftables::Lookup>(&e)) map = l;
  }
  ASSERT_NE(map, nullptr);
  ASSERT_TRUE(map->anonymous);
  EXPECT_EQ(nftables::print_set_type(map->anonymous->spec), "integer : ipv4_addr . inet_service");
  EXPECT_EQ(map->anonymous->elements.size(), 3u);
  for (const auto& s : t.sets) EXPECT_FALSE(s.spec.name.starts_with("endpoints-")) << s.spec.name;
}

TEST(NftablesSlotMap, EachEndpointGetsAnEqualContiguousShareOfTheSlots) {
  for (int n : {1, 2, 3, 7, 10, 16, 100, 1000, 12345}) {
    std::vector<std::pair<net::IPAddress, uint16_t>> targets;
    for (int i = 0; i < n; ++i) targets.emplace_back(net::IPAddress::V4(0x0a000000u + static_cast<uint32_t>(i)), 80);
    auto els = nftables::numgen_slot_elements(targets, nftables::kSlots);
    ASSERT_EQ(els.size(), 2u * n);
    uint32_t next = 0, smallest = ~0u, largest = 0;
    for (int i = 0; i < n; ++i) {
      const auto& start = els[2 * i];
      const auto& end = els[2 * i + 1];
      uint32_t a = 0, b = 0;
      std::memcpy(&a, start.key.data(), 4);
      std::memcpy(&b, end.key.data(), 4);
      a = ntohl(a), b = ntohl(b);  // big endian, as an interval set compares its keys
      EXPECT_EQ(start.flags, 0u);
      EXPECT_EQ(end.flags, static_cast<uint32_t>(NFT_SET_ELEM_INTERVAL_END));
      EXPECT_EQ(a, next) << n << " endpoints, range " << i << ": a gap or an overlap";
      EXPECT_EQ(start.data, nftables::ipv4_key(targets[i].first) + nftables::port_key(80));
      EXPECT_TRUE(end.data.empty());
      smallest = std::min(smallest, b - a);
      largest = std::max(largest, b - a);
      next = b;
    }
    EXPECT_EQ(next, nftables::kSlots) << n;
    EXPECT_LE(largest - smallest, 1u) << n;
    if (nftables::kSlots % n == 0) {
      EXPECT_EQ(largest, smallest) << n << " divides the slots: exactly even";
    }
  }
}

TEST(NftablesServiceRules, EndpointRulesPickEndpointsByACascadeOfDnatRules) {
  auto c = config();
  c.endpoint_pick = RulesConfig::EndpointPick::kCascade;
  auto sp = svc1();
  sp.cluster_endpoints.push_back(ep("10.180.0.3", 80));
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, c);
  EXPECT_EQ(chain(t, "service-ULMVA6XW-ns1/svc1/tcp/p80"), (std::vector<std::string>{
      "ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade",
      "numgen random mod 3 0 meta l4proto tcp dnat to 10.180.0.1:80",
      "numgen random mod 2 0 meta l4proto tcp dnat to 10.180.0.2:80",
      "meta l4proto tcp dnat to 10.180.0.3:80",
  }));
  for (const auto& ch : t.chains) EXPECT_FALSE(ch.chain.name.starts_with("endpoint-")) << ch.chain.name;
}

TEST(NftablesServiceRules, HairpinElementsForLocalEndpointsOnceHoweverManyServicePortsUseThem) {
  auto a = svc1();
  a.cluster_endpoints.push_back(ep("10.180.0.9", 80, /*local=*/false));
  auto b = svc1();
  b.name = "ns1/other:p80";
  b.cluster_ip = ip("172.30.0.50");
  proxy::ProxyState st;
  st.services = {a, b};
  auto t = generate(st, config());
  // 10.180.0.9 runs elsewhere: its own node masquerades a pod reaching itself.
  EXPECT_EQ(elements(t, "hairpin-connections"), (std::vector<std::string>{
      "10.180.0.1 . 10.180.0.1 . tcp . 80", "10.180.0.2 . 10.180.0.2 . tcp . 80"}));
  // Both service ports name the same owners.
  std::set<std::string> oa, ob;
  hairpin_owners(a, &oa);
  hairpin_owners(b, &ob);
  EXPECT_EQ(oa, (std::set<std::string>{"hairpin tcp 10.180.0.1:80", "hairpin tcp 10.180.0.2:80"}));
  EXPECT_EQ(oa, ob);
  // A partial description of one owner describes its element once.
  std::set<std::string> only = {"hairpin tcp 10.180.0.2:80"};
  nftables::ContentSink sink;
  sink.set(nftables::concat_set("hairpin-connections", {}), true, "");
  describe(sink, st, config(), &only);
  ASSERT_EQ(sink.content.sets.size(), 1u);
  EXPECT_EQ(sink.content.sets[0].elements.size(), 1u);
  EXPECT_TRUE(sink.content.chains.empty());
}

TEST(NftablesServiceRules, NodePortAddressesUseTheNodePortIpsSet) {
  auto c = config();
  c.node_ports_on_all_addresses = false;
  c.node_port_ips = {ip("192.168.0.2"), ip("192.168.1.7")};
  proxy::ProxyState st;
  auto t = generate(st, c);
  EXPECT_EQ(elements(t, "nodeport-ips"), (std::vector<std::string>{"192.168.0.2", "192.168.1.7"}));
  EXPECT_EQ(chain(t, "services")[1], "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports");
  EXPECT_EQ(chain(t, "nodeport-endpoints-check")[0],
            "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports");
  EXPECT_NE(print(st, c).find("\tset nodeport-ips {\n\t\ttype ipv4_addr\n\t\tcomment \"IPs that accept NodePort traffic\"\n"
                              "\t\telements = { 192.168.0.2, 192.168.1.7 }\n\t}\n"),
            std::string::npos);
}

TEST(NftablesServiceRules, PartialDescriptionHasOnlyTheNamedServices) {
  auto a = svc1();
  auto b = svc1();
  b.name = "ns1/other:p80";
  b.cluster_ip = ip("172.30.0.50");
  proxy::ProxyState st;
  st.services = {b, a};  // sorted by name, as a ProxyState is
  std::set<std::string> only = {"ns1/other:p80"};
  nftables::ContentSink sink;
  describe(sink, st, config(), &only);
  // Shared objects are not described: just the service's shard map (described whole).
  ASSERT_EQ(sink.content.sets.size(), 1u);
  EXPECT_EQ(sink.content.sets[0].spec.name, shard_map(b.name));
  for (const auto& c : sink.content.chains) EXPECT_NE(c.chain.name.find("ns1/other/"), std::string::npos);
  EXPECT_EQ(sink.content.chains.size(), 1u);  // the service chain (no endpoint chains)
}

namespace {

// 300 service ports in one shard map: plain ones, some with external traffic policy
// Local (two policy chains), some with ClientIP affinity (no slots), some without
// endpoints (no chain).
proxy::ProxyState many_in_one_shard() {
  proxy::ProxyState st;
  for (uint32_t i = 0; i < 300; ++i) {
    proxy::ServicePort sp;
    sp.name = "ns/s" + std::to_string(i) + ":p";
    sp.cluster_ip = net::IPAddress::V4(0xac1e0000u + i + 1);
    sp.port = 80;
    for (uint32_t e = 0; e < 1 + i % 4; ++e) {
      proxy::Endpoint b;
      b.ip = net::IPAddress::V4(0x0ab40000u + i * 8 + e + 1);
      b.port = 8080;
      b.local = e % 2 == 0;
      sp.cluster_endpoints.push_back(b);
      if (b.local) sp.local_endpoints.push_back(b);
    }
    if (i % 7 == 3) {
      sp.external_policy_local = true;
      sp.node_port = static_cast<uint16_t>(30000 + i);
    }
    if (i % 11 == 5) sp.affinity_timeout_seconds = 60;
    if (i % 13 == 6) sp.cluster_endpoints.clear(), sp.local_endpoints.clear();
    sp.has_any_endpoint = !sp.cluster_endpoints.empty();
    st.services.push_back(sp);
  }
  std::sort(st.services.begin(), st.services.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return st;
}

}  // namespace

TEST(NftablesServiceRules, ShardMapSlotsNeverOverlapAndTheLayoutDoesNotDependOnTheOrder) {
  auto c = config();
  c.endpoint_shards = 1;
  const auto st = many_in_one_shard();
  const auto t = generate(st, c);
  const auto* map = t.find_set("endpoints-000");
  ASSERT_NE(map, nullptr);
  std::set<uint32_t> offsets;
  size_t chains = 0, ranges = 0;
  for (const auto& ch : t.chains) {
    const bool policy = (ch.chain.name.starts_with("service-") || ch.chain.name.starts_with("local-")) &&
                        ch.chain.name.find('/') != std::string::npos;
    if (!policy) continue;
    const ChainSlots s = chain_slots(t, ch.chain.name);
    if (s.map.empty()) continue;  // (affinity: a vmap over endpoint chains)
    ++chains;
    EXPECT_EQ(s.map, "endpoints-000");
    EXPECT_EQ(s.offset % nftables::kSlots, 0u) << ch.chain.name;
    EXPECT_LT(s.offset / nftables::kSlots, kSlotIndexes) << ch.chain.name;
    EXPECT_TRUE(offsets.insert(s.offset).second) << ch.chain.name << " shares its slots";
    // As many ranges as the chain has endpoints (the rule's last statement names them).
    const auto rules = chain(t, ch.chain.name);
    ASSERT_FALSE(rules.empty());
    EXPECT_GE(s.ranges, 1u) << ch.chain.name;
    ranges += s.ranges;
  }
  EXPECT_GT(chains, 250u);
  // Every range of the map belongs to one chain's slots.
  size_t starts = 0;
  for (const auto& el : map->elements) starts += el.flags == 0 ? 1 : 0;
  EXPECT_EQ(starts, ranges);

  // The same service ports in another order: the same slots, chain by chain.
  auto reversed = st;
  std::reverse(reversed.services.begin(), reversed.services.end());
  const auto t2 = generate(reversed, c);
  for (const auto& ch : t.chains) EXPECT_EQ(chain(t2, ch.chain.name), chain(t, ch.chain.name)) << ch.chain.name;
  auto sorted_elements = [](const nftables::TableContent& tc) {
    std::vector<std::pair<uint32_t, std::string>> out;
    for (const auto& el : tc.find_set("endpoints-000")->elements) {
      out.emplace_back(key_u32(el.key), std::string(el.data.begin(), el.data.end()) + std::to_string(el.flags));
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(sorted_elements(t2), sorted_elements(t));
}

TEST(NftablesServiceRules, APartialSyncDescribesTheWholeShardOfWhatChanged) {
  auto c = config();
  c.endpoint_shards = 8;
  const auto st = many_in_one_shard();
  std::set<std::string> scope = {"ns/s10:p", "hairpin tcp 10.180.0.1:80"};
  add_endpoint_shard_owners(c, &scope);
  const uint32_t shard = endpoint_shard("ns/s10:p", c);
  EXPECT_EQ(scope, (std::set<std::string>{"ns/s10:p", "hairpin tcp 10.180.0.1:80", endpoint_shard_owner(shard)}));
  // What describe() makes of that scope: the shard map whole, as a full description has it.
  nftables::ContentSink sink;
  describe(sink, st, c, &scope);
  const auto full = generate(st, c);
  std::vector<const nftables::SetContent*> maps;
  for (const auto& set : sink.content.sets) {
    if (set.spec.name.starts_with("endpoints-")) maps.push_back(&set);
  }
  ASSERT_EQ(maps.size(), 1u);
  EXPECT_EQ(maps[0]->spec.name, endpoint_shard_map(shard));
  EXPECT_EQ(maps[0]->elements, full.find_set(endpoint_shard_map(shard))->elements);
  for (const auto& ch : sink.content.chains) EXPECT_EQ(chain(sink.content, ch.chain.name), chain(full, ch.chain.name));
  // Every service port of the shard whose chain reads slots is described with it (its
  // slots may have moved), and none of another shard.
  size_t members = 0;
  for (const auto& sp : st.services) {
    const std::string svc_chain = "service-" + service_chain_base(sp);
    const bool slotted = !chain_slots(full, svc_chain).map.empty();
    const bool same = endpoint_shard(sp.name, c) == shard;
    members += same && slotted;
    EXPECT_EQ(sink.content.find_chain(svc_chain) != nullptr, (same && slotted) || sp.name == "ns/s10:p") << sp.name;
  }
  EXPECT_GT(members, 10u);
}

TEST(NftablesServiceRules, AFullShardLeavesTheRestToPickByRules) {
  auto c = config();
  c.endpoint_shards = 1;
  proxy::ProxyState st;
  for (uint32_t i = 0; i <= kSlotIndexes; ++i) {  // one chain more than the map has slots for
    proxy::ServicePort sp;
    sp.name = "ns/f" + std::to_string(i) + ":p";
    sp.cluster_ip = net::IPAddress::V4(0xac100000u + i + 1);
    sp.port = 80;
    proxy::Endpoint b;
    b.ip = net::IPAddress::V4(0x0a000000u + i + 1);
    b.port = 80;
    sp.cluster_endpoints = {b};
    sp.local_endpoints = sp.cluster_endpoints;
    sp.has_any_endpoint = true;
    st.services.push_back(sp);
  }
  const auto t = generate(st, c);
  size_t slotted = 0, by_rule = 0;
  std::set<uint32_t> offsets;
  for (const auto& ch : t.chains) {
    if (!ch.chain.name.starts_with("service-") || ch.chain.name.find('/') == std::string::npos) continue;
    const ChainSlots s = chain_slots(t, ch.chain.name);
    if (s.map.empty()) {
      ++by_rule;
      EXPECT_EQ(chain(t, ch.chain.name).back().rfind("meta l4proto tcp dnat to 10.", 0), 0u) << ch.chain.name;
    } else {
      ++slotted;
      EXPECT_EQ(s.ranges, 1u);
      offsets.insert(s.offset);
    }
  }
  EXPECT_EQ(slotted, size_t{kSlotIndexes});
  EXPECT_EQ(offsets.size(), size_t{kSlotIndexes});
  EXPECT_EQ(by_rule, 1u);
  // The last index's slots end at the top of the key space, below 2^32.
  EXPECT_EQ(*offsets.rbegin(), (kSlotIndexes - 1) * nftables::kSlots);
}

TEST(NftablesSlotMap, TheLastOffsetEndsBelowTwoToThe32) {
  std::vector<std::pair<net::IPAddress, uint16_t>> targets = {{ip("10.0.0.1"), 80}, {ip("10.0.0.2"), 80}};
  const uint32_t offset = (kSlotIndexes - 1) * nftables::kSlots;
  auto els = nftables::numgen_slot_elements(targets, nftables::kSlots, offset);
  ASSERT_EQ(els.size(), 4u);
  EXPECT_EQ(key_u32(els[0].key), offset);
  EXPECT_EQ(key_u32(els[1].key), offset + nftables::kSlots / 2);
  EXPECT_EQ(key_u32(els[2].key), offset + nftables::kSlots / 2);
  EXPECT_EQ(key_u32(els[3].key), uint64_t{kSlotIndexes} * nftables::kSlots);
  EXPECT_EQ(uint64_t{kSlotIndexes} * nftables::kSlots, 4294770480u);
  EXPECT_GT(key_u32(els[3].key), key_u32(els[2].key));
}
