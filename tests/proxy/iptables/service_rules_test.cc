// The generated iptables layout, checked line by line in iptables-save form.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>

#include "iptables/chain_names.h"
#include "iptables/service_rules.h"

using namespace knode;
using namespace knode::iptables_proxy;

namespace {

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }

proxy::Endpoint backend(const char* addr, uint16_t port, bool local = true) {
  proxy::Endpoint b;
  b.ip = ip(addr);
  b.port = port;
  b.local = local;
  return b;
}

proxy::ServicePort kubia() {
  proxy::ServicePort sp;
  sp.name = "default/kubia:http";
  sp.cluster_ip = ip("10.96.0.10");
  sp.port = 80;
  sp.cluster_endpoints = {backend("10.244.0.11", 8080), backend("10.244.0.12", 8080), backend("10.244.0.13", 8080)};
  sp.local_endpoints = sp.cluster_endpoints;
  sp.has_any_endpoint = true;
  return sp;
}

std::vector<std::string> lines(const iptables::DesiredTable& t, const std::string& chain) {
  std::vector<std::string> out;
  auto it = t.chains.find(chain);
  if (it == t.chains.end()) return out;
  for (const auto& r : it->second) out.push_back(r.save_string(chain));
  return out;
}

RulesConfig config() {
  RulesConfig c;
  c.cluster_cidrs = {*net::Cidr::Parse("10.244.0.0/16")};
  return c;
}

}  // namespace

TEST(ChainNames, MatchKubeProxy) {
  // Names seen on real clusters for these service ports.
  EXPECT_EQ(service_chain("KUBE-SVC-", "default/kubernetes:https", "tcp"), "KUBE-SVC-NPX46M4PTMTKRN6Y");
  EXPECT_EQ(service_chain("KUBE-SVC-", "kube-system/kube-dns:dns", "udp"), "KUBE-SVC-TCOU7JCQXEZGVUNU");
  EXPECT_EQ(service_chain("KUBE-SVC-", "kube-system/kube-dns:dns-tcp", "tcp"), "KUBE-SVC-ERIFXISQEP7F7OF4");
  EXPECT_EQ(service_chain("KUBE-SVC-", "default/nginx", "tcp"), "KUBE-SVC-2CMXP7HKUVJN7L6M");
  EXPECT_NE(endpoint_chain("default/nginx", "tcp", "10.0.0.1:80"), endpoint_chain("default/nginx", "tcp", "10.0.0.2:80"));
  EXPECT_EQ(endpoint_chain("default/nginx", "tcp", "10.0.0.1:80").size(), 25u);
}

TEST(ServiceRules, ClusterIPSpreadsWithExactProbabilities) {
  proxy::ProxyState st;
  st.services = {kubia()};
  auto t = generate(st, config());
  std::string svc = service_chain("KUBE-SVC-", "default/kubia:http", "tcp");
  auto sep = [](const char* ep) { return endpoint_chain("default/kubia:http", "tcp", ep); };
  EXPECT_EQ(lines(t.nat, svc), (std::vector<std::string>{
      "-A " + svc + " ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment \"default/kubia:http cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ",
      "-A " + svc + " -m comment --comment \"default/kubia:http -> 10.244.0.11:8080\" -m statistic --mode random --probability 0.33333333349 -j " + sep("10.244.0.11:8080"),
      "-A " + svc + " -m comment --comment \"default/kubia:http -> 10.244.0.12:8080\" -m statistic --mode random --probability 0.50000000000 -j " + sep("10.244.0.12:8080"),
      "-A " + svc + " -m comment --comment \"default/kubia:http -> 10.244.0.13:8080\" -j " + sep("10.244.0.13:8080"),
  }));
  EXPECT_EQ(lines(t.nat, sep("10.244.0.12:8080")), (std::vector<std::string>{
      "-A " + sep("10.244.0.12:8080") + " -s 10.244.0.12/32 -m comment --comment \"default/kubia:http\" -j KUBE-MARK-MASQ",
      "-A " + sep("10.244.0.12:8080") + " -p tcp -m comment --comment \"default/kubia:http\" -m tcp -j DNAT --to-destination 10.244.0.12:8080",
  }));
  auto services = lines(t.nat, "KUBE-SERVICES");
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(services[0], "-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"default/kubia:http cluster IP\" -m tcp --dport 80 -j " + svc);
  EXPECT_NE(services[1].find("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"), std::string::npos);
  EXPECT_TRUE(lines(t.filter, "KUBE-SERVICES").empty());
}

TEST(ServiceRules, NoEndpointsRejectsFromFilterTable) {
  auto sp = kubia();
  sp.cluster_endpoints.clear();
  sp.local_endpoints.clear();
  sp.has_any_endpoint = false;
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, config());
  EXPECT_EQ(lines(t.filter, "KUBE-SERVICES"), (std::vector<std::string>{
      "-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"default/kubia:http has no endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable"}));
  EXPECT_EQ(lines(t.nat, "KUBE-SERVICES").size(), 1u);  // only the KUBE-NODEPORTS jump
  EXPECT_EQ(t.nat.chains.count(service_chain("KUBE-SVC-", sp.name, "tcp")), 0u);
}

TEST(ServiceRules, SessionAffinityUsesRecent) {
  auto sp = kubia();
  sp.affinity_timeout_seconds = 10800;
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, config());
  auto svc = lines(t.nat, service_chain("KUBE-SVC-", sp.name, "tcp"));
  std::string sep = endpoint_chain(sp.name, "tcp", "10.244.0.11:8080");
  EXPECT_EQ(svc[1], "-A " + service_chain("KUBE-SVC-", sp.name, "tcp") +
                        " -m comment --comment \"default/kubia:http -> 10.244.0.11:8080\" -m recent --rcheck --seconds 10800 --reap --name " +
                        sep + " --mask 255.255.255.255 --rsource -j " + sep);
  auto dnat = lines(t.nat, sep)[1];
  EXPECT_NE(dnat.find("-m recent --set --name " + sep + " --mask 255.255.255.255 --rsource"), std::string::npos) << dnat;
}

TEST(ServiceRules, NodePortLocalPolicyKeepsSourceAndUsesLocalEndpoints) {
  auto sp = kubia();
  sp.node_port = 30080;
  sp.external_policy_local = true;
  sp.cluster_endpoints.push_back(backend("10.244.1.9", 8080, false));
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, config());
  std::string ext = service_chain("KUBE-EXT-", sp.name, "tcp");
  std::string svl = service_chain("KUBE-SVL-", sp.name, "tcp");
  std::string svc = service_chain("KUBE-SVC-", sp.name, "tcp");
  EXPECT_EQ(lines(t.nat, "KUBE-NODEPORTS"), (std::vector<std::string>{
      "-A KUBE-NODEPORTS -p tcp -m comment --comment \"default/kubia:http\" -m tcp --dport 30080 -j " + ext}));
  auto e = lines(t.nat, ext);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0], "-A " + ext + " -s 10.244.0.0/16 -m comment --comment \"pod traffic for default/kubia:http external destinations\" -j " + svc);
  EXPECT_EQ(e[3], "-A " + ext + " -j " + svl);
  // No masquerade of outside traffic on the local path, and only local endpoints.
  for (const auto& l : lines(t.nat, svl)) EXPECT_EQ(l.find("KUBE-MARK-MASQ"), std::string::npos) << l;
  EXPECT_EQ(lines(t.nat, svl).size(), 3u);
  EXPECT_EQ(lines(t.nat, svc).size(), 5u);  // masq + 4 endpoints incl. the remote one
}

TEST(ServiceRules, LocalPolicyWithoutLocalEndpointsDropsExternal) {
  auto sp = kubia();
  sp.node_port = 30080;
  sp.external_policy_local = true;
  sp.local_endpoints.clear();
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, config());
  EXPECT_EQ(lines(t.filter, "KUBE-EXTERNAL-SERVICES"), (std::vector<std::string>{
      "-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment \"default/kubia:http has no local endpoints\" -m addrtype --dst-type LOCAL -m tcp --dport 30080 -j DROP"}));
  EXPECT_TRUE(lines(t.nat, "KUBE-NODEPORTS").empty());
}

TEST(ServiceRules, LoadBalancerSourceRanges) {
  auto sp = kubia();
  sp.load_balancer_ips = {ip("203.0.113.7")};
  sp.load_balancer_source_ranges = {*net::Cidr::Parse("198.51.100.0/24")};
  proxy::ProxyState st;
  st.services = {sp};
  auto t = generate(st, config());
  std::string fw = service_chain("KUBE-FW-", sp.name, "tcp");
  std::string ext = service_chain("KUBE-EXT-", sp.name, "tcp");
  auto svcs = lines(t.nat, "KUBE-SERVICES");
  EXPECT_NE(std::find(svcs.begin(), svcs.end(),
                      "-A KUBE-SERVICES -d 203.0.113.7/32 -p tcp -m comment --comment \"default/kubia:http loadbalancer IP\" -m tcp --dport 80 -j " + fw),
            svcs.end());
  EXPECT_EQ(lines(t.nat, fw), (std::vector<std::string>{
      "-A " + fw + " -s 198.51.100.0/24 -m comment --comment \"default/kubia:http loadbalancer IP\" -j " + ext}));
  EXPECT_EQ(lines(t.filter, "KUBE-PROXY-FIREWALL").size(), 1u);
}

TEST(ServiceRules, PartialGenerationOnlyBuildsNamedServices) {
  auto a = kubia();
  auto b = kubia();
  b.name = "default/other:http";
  b.cluster_ip = ip("10.96.0.11");
  proxy::ProxyState st;
  st.services = {a, b};
  std::set<std::string> only{"default/other:http"};
  auto t = generate(st, config(), &only);
  EXPECT_EQ(t.nat.chains.count(service_chain("KUBE-SVC-", a.name, "tcp")), 0u);
  EXPECT_EQ(t.nat.chains.count(service_chain("KUBE-SVC-", b.name, "tcp")), 1u);
  EXPECT_EQ(lines(t.nat, "KUBE-SERVICES").size(), 3u);  // shared chains stay complete
  EXPECT_EQ(t.service_chains.count(a.name), 0u);
  EXPECT_EQ(t.service_chains.at(b.name).size(), 4u);  // SVC + 3 SEP
}

TEST(ServiceRules, MasqueradeAllAndPostrouting) {
  auto c = config();
  c.masquerade_all = true;
  proxy::ProxyState st;
  st.services = {kubia()};
  auto t = generate(st, c);
  EXPECT_EQ(lines(t.nat, service_chain("KUBE-SVC-", "default/kubia:http", "tcp"))[0].find("! -s"), std::string::npos);
  EXPECT_EQ(lines(t.nat, "KUBE-POSTROUTING"), (std::vector<std::string>{
      "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
      "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
      "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"}));
  EXPECT_EQ(lines(t.nat, "KUBE-MARK-MASQ"), (std::vector<std::string>{"-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"}));
}

TEST(ServiceRules, LargeClusterModeDropsPerEndpointComments) {
  auto c = config();
  c.large_cluster = true;
  proxy::ProxyState st;
  st.services = {kubia()};
  auto t = generate(st, c);
  std::string sep = endpoint_chain("default/kubia:http", "tcp", "10.244.0.11:8080");
  EXPECT_EQ(lines(t.nat, sep), (std::vector<std::string>{
      "-A " + sep + " -s 10.244.0.11/32 -j KUBE-MARK-MASQ",
      "-A " + sep + " -p tcp -m tcp -j DNAT --to-destination 10.244.0.11:8080"}));
  auto svc = lines(t.nat, service_chain("KUBE-SVC-", "default/kubia:http", "tcp"));
  EXPECT_NE(svc[0].find("cluster IP"), std::string::npos);  // the service's own rules keep theirs
  EXPECT_EQ(svc[1].find("--comment"), std::string::npos);
}

namespace {

// The shared chains' bytes as a fresh full generation without a cache makes them (Rule
// chains, encoded here), by "table/chain".
std::map<std::string, std::string> shared_bytes_uncached(const proxy::ProxyState& st, const RulesConfig& c) {
  auto t = generate(st, c);
  std::map<std::string, std::string> out;
  auto take = [&](const iptables::DesiredTable& table, const std::set<std::string>& names) {
    for (const auto& name : names) {
      auto it = table.chains.find(name);
      if (it == table.chains.end()) continue;
      std::string bytes;
      for (const auto& r : it->second) r.encode_to(bytes);
      out[table.table + "/" + name] = bytes;
    }
  };
  take(t.nat, {"KUBE-SERVICES", "KUBE-NODEPORTS"});
  take(t.filter, {"KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-PROXY-FIREWALL", "KUBE-NODEPORTS"});
  return out;
}

// What a caller applying each generation's shared chains holds: replaced when emitted.
void apply_shared(const Tables& t, std::map<std::string, std::string>& held) {
  for (const auto* table : {&t.nat, &t.filter}) {
    for (const auto& [name, chain] : table->encoded) {
      if (name.rfind("KUBE-SVC-", 0) == 0 || name.rfind("KUBE-SEP-", 0) == 0 || name.rfind("KUBE-EXT-", 0) == 0 ||
          name.rfind("KUBE-SVL-", 0) == 0 || name.rfind("KUBE-FW-", 0) == 0) {
        continue;
      }
      held[table->table + "/" + name] = chain.bytes;
    }
  }
}

}  // namespace

TEST(ServiceRules, SharedChainCacheMatchesFullGenerationThroughRandomChanges) {
  RulesConfig c = config();
  c.encode_service_chains = true;
  std::mt19937 rng(20261203);
  auto make = [&](int i) {
    proxy::ServicePort sp = kubia();
    char name[64];
    std::snprintf(name, sizeof name, "ns/svc-%03d:http", i);
    sp.name = name;
    sp.cluster_ip = ip(("10.96.1." + std::to_string(i)).c_str());
    return sp;
  };
  // A random variation of service port i: endpoints, node port, external and LB IPs,
  // source ranges, policies, health check port.
  auto vary = [&](proxy::ServicePort sp) {
    size_t n = rng() % 4;
    sp.cluster_endpoints.resize(std::min(n, sp.cluster_endpoints.size()));
    sp.local_endpoints = rng() % 2 ? sp.cluster_endpoints : std::vector<proxy::Endpoint>{};
    sp.has_any_endpoint = !sp.cluster_endpoints.empty() || rng() % 3 == 0;
    sp.node_port = rng() % 2 ? static_cast<uint16_t>(30000 + rng() % 100) : 0;
    sp.external_ips = rng() % 3 == 0 ? std::vector<net::IPAddress>{ip("192.0.2.5")} : std::vector<net::IPAddress>{};
    sp.load_balancer_ips = rng() % 3 == 0 ? std::vector<net::IPAddress>{ip("203.0.113.9")} : std::vector<net::IPAddress>{};
    sp.load_balancer_source_ranges.clear();
    if (rng() % 3 == 0) sp.load_balancer_source_ranges.push_back(*net::Cidr::Parse("198.51.100.0/24"));
    sp.external_policy_local = rng() % 2;
    sp.health_check_node_port = sp.external_policy_local && rng() % 2 ? static_cast<uint16_t>(31000 + rng() % 100) : 0;
    return sp;
  };
  std::map<std::string, proxy::ServicePort> model;
  for (int i = 0; i < 40; ++i) {
    auto sp = vary(make(i));
    model[sp.name] = sp;
  }
  auto state_of = [&] {
    proxy::ProxyState st;
    for (const auto& [n, sp] : model) st.services.push_back(sp);
    return st;
  };
  SharedChainCache cache;
  std::map<std::string, std::string> held;
  auto first = generate(state_of(), c, nullptr, cache);
  ASSERT_TRUE(first.error.ok());
  apply_shared(first, held);
  EXPECT_EQ(held, shared_bytes_uncached(state_of(), c));
  size_t emitted = 0, quiet = 0;
  for (int round = 0; round < 300; ++round) {
    std::set<std::string> changed;
    for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k) {
      int i = static_cast<int>(rng() % 50);  // 40..49 start absent: adds; removals below
      auto sp = make(i);
      changed.insert(sp.name);
      switch (rng() % 5) {
        case 0: model.erase(sp.name); break;
        case 1: break;  // named, unchanged
        default: model[sp.name] = vary(model.count(sp.name) ? model[sp.name] : sp); break;
      }
    }
    auto t = generate(state_of(), c, &changed, cache);
    ASSERT_TRUE(t.error.ok());
    std::map<std::string, std::string> prev = held;
    apply_shared(t, held);
    (held == prev ? quiet : emitted)++;
    ASSERT_EQ(held, shared_bytes_uncached(state_of(), c)) << "round " << round;
    // A shared chain is emitted only when it changed.
    for (const auto* table : {&t.nat, &t.filter}) {
      for (const auto& [name, chain] : table->encoded) {
        (void)chain;
        std::string key = table->table + "/" + name;
        if (prev.count(key)) {
          EXPECT_NE(prev.at(key), held.at(key)) << key << " emitted unchanged, round " << round;
        }
      }
    }
  }
  // Both kinds of round happened (the test exercised skipping and emitting).
  EXPECT_GT(emitted, 20u);
  EXPECT_GT(quiet, 20u);
}

TEST(ServiceRules, SharedChainCacheReportsAnInvalidRule) {
  RulesConfig c = config();
  auto sp = kubia();
  sp.name = "default/" + std::string(250, 'x') + ":http";  // comments over 255 bytes
  proxy::ProxyState st;
  st.services = {sp};
  SharedChainCache cache;
  auto t = generate(st, c, nullptr, cache);
  EXPECT_FALSE(t.error.ok());
  EXPECT_NE(t.error.message().find("comment longer than 255"), std::string::npos) << t.error.message();
}
