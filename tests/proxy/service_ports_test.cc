#include <gtest/gtest.h>

#include <functional>

#include "knode/api/codec.h"
#include "service_ports.h"

using namespace knode;

namespace {

api::Service service(const std::string& yaml) {
  auto r = api::decode_manifest(yaml, "t.yaml");
  EXPECT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->objects.size(), 1u) << (r->rejected.empty() ? "" : r->rejected[0].error);
  return api::get<api::Service>(*r->objects[0]);
}

api::EndpointSlice slice(const std::string& yaml) {
  auto r = api::decode_manifest(yaml, "t.yaml");
  EXPECT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->objects.size(), 1u) << (r->rejected.empty() ? "" : r->rejected[0].error);
  return api::get<api::EndpointSlice>(*r->objects[0]);
}

const char* kSvc = R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  externalTrafficPolicy: Local
  externalIPs: [192.168.50.100]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports:
  - {name: http, port: 80, targetPort: web, nodePort: 30080}
  - {name: dns, port: 53, protocol: UDP}
)";

const char* kSlice = R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- {addresses: [10.244.0.11], nodeName: node-1}
- {addresses: [10.244.0.12], nodeName: node-2, conditions: {ready: true}}
- {addresses: [10.244.0.13], nodeName: node-1, conditions: {ready: false, serving: true, terminating: true}}
- {addresses: [10.244.0.14], nodeName: node-1, conditions: {ready: false, serving: false}}
)";

proxy::NodeContext node1() { return proxy::NodeContext{"node-1"}; }

}  // namespace

TEST(ServicePorts, NamesAndPortsAsKubeProxy) {
  auto svc = service(kSvc);
  auto es = slice(kSlice);
  auto ports = proxy::build_service_ports(svc, {&es}, node1());
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(ports[0].name, "shop/web:dns");
  EXPECT_EQ(ports[0].protocol, net::Protocol::kUDP);
  EXPECT_EQ(ports[0].cluster_endpoints.front().port, 5353);
  const auto& http = ports[1];
  EXPECT_EQ(http.name, "shop/web:http");
  EXPECT_EQ(http.node_port, 30080);
  EXPECT_EQ(http.affinity_timeout_seconds, 60u);
  EXPECT_TRUE(http.external_policy_local);
  ASSERT_EQ(http.external_ips.size(), 1u);
}

TEST(ServicePorts, ReadyEndpointsOnlyAndLocalSubset) {
  auto svc = service(kSvc);
  auto es = slice(kSlice);
  auto http = proxy::build_service_ports(svc, {&es}, node1())[1];
  ASSERT_EQ(http.cluster_endpoints.size(), 2u);  // .11 (unset = ready) and .12
  EXPECT_EQ(http.cluster_endpoints[0].str(), "10.244.0.11:8080");
  EXPECT_EQ(http.cluster_endpoints[1].str(), "10.244.0.12:8080");
  ASSERT_EQ(http.local_endpoints.size(), 1u);
  EXPECT_EQ(http.local_endpoints[0].str(), "10.244.0.11:8080");
  EXPECT_TRUE(http.local_endpoints[0].local);
  EXPECT_EQ(&http.external_endpoints(), &http.local_endpoints);
}

TEST(ServicePorts, TerminatingServingUsedOnlyWithoutReady) {
  auto svc = service(kSvc);
  auto es = slice(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.244.0.13], nodeName: node-1, conditions: {ready: false, serving: true, terminating: true}}
- {addresses: [10.244.0.14], nodeName: node-1, conditions: {ready: false, serving: false, terminating: true}}
)");
  auto http = proxy::build_service_ports(svc, {&es}, node1())[1];
  ASSERT_EQ(http.cluster_endpoints.size(), 1u);
  EXPECT_EQ(http.cluster_endpoints[0].str(), "10.244.0.13:8080");
  EXPECT_TRUE(http.has_any_endpoint);
}

TEST(ServicePorts, NoLocalEndpointsStillHasEndpoints) {
  auto svc = service(kSvc);
  auto es = slice(kSlice);
  auto http = proxy::build_service_ports(svc, {&es}, proxy::NodeContext{"node-9"})[1];
  EXPECT_TRUE(http.local_endpoints.empty());
  EXPECT_TRUE(http.has_any_endpoint);  // drop, not reject
}

TEST(ServicePorts, InternalTrafficPolicyLocal) {
  std::string yaml = kSvc;
  yaml += "  internalTrafficPolicy: Local\n";
  auto svc = service(yaml);
  auto es = slice(kSlice);
  auto http = proxy::build_service_ports(svc, {&es}, node1())[1];
  ASSERT_EQ(http.cluster_endpoints.size(), 1u);
  EXPECT_EQ(http.cluster_endpoints[0].str(), "10.244.0.11:8080");
}

TEST(ServicePorts, SkipsExternalNameHeadlessAndUnallocated) {
  EXPECT_TRUE(proxy::build_service_ports(
                  service("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: ExternalName, externalName: db.example.com}\n"),
                  {}, node1())
                  .empty());
  EXPECT_TRUE(proxy::build_service_ports(
                  service("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: None, ports: [{port: 80}]}\n"),
                  {}, node1())
                  .empty());
  EXPECT_TRUE(proxy::build_service_ports(
                  service("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n"), {}, node1())
                  .empty());
}

TEST(ServicePorts, UnnamedPortAndMismatchedSlicePort) {
  auto svc = service("apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {clusterIP: 10.96.0.77, ports: [{port: 5432}]}\n");
  auto good = slice(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-1, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{port: 5432}]
endpoints: [{addresses: [10.244.0.30]}, {addresses: [10.244.0.30]}]
)");
  auto other = slice(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-2, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{name: metrics, port: 9187}]
endpoints: [{addresses: [10.244.0.31]}]
)");
  auto ports = proxy::build_service_ports(svc, {&good, &other}, node1());
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0].name, "default/db");
  ASSERT_EQ(ports[0].cluster_endpoints.size(), 1u);  // de-duplicated, metrics port ignored
  EXPECT_EQ(ports[0].cluster_endpoints[0].str(), "10.244.0.30:5432");
}

// proxy::encode tells service ports apart exactly as operator== does: a change to any one
// field (of the port or of one endpoint) changes the encoding, and equal ports encode
// equally.
TEST(ServicePortEncode, EveryFieldChangesTheEncoding) {
  proxy::ServicePort base;
  base.name = "default/kubia:http";
  base.cluster_ip = *net::IPAddress::Parse("10.96.0.10");
  base.port = 80;
  proxy::Endpoint ep;
  ep.ip = *net::IPAddress::Parse("10.244.0.5");
  ep.port = 8080;
  base.cluster_endpoints = {ep, ep};
  base.cluster_endpoints[1].ip = *net::IPAddress::Parse("10.244.0.6");
  base.local_endpoints = {ep};
  base.has_any_endpoint = true;
  std::vector<std::pair<std::string, std::function<void(proxy::ServicePort&)>>> changes = {
      {"name", [](auto& s) { s.name = "default/kubia:https"; }},
      {"protocol", [](auto& s) { s.protocol = net::Protocol::kUDP; }},
      {"cluster_ip", [](auto& s) { s.cluster_ip = *net::IPAddress::Parse("10.96.0.11"); }},
      {"cluster_ip v6", [](auto& s) { s.cluster_ip = *net::IPAddress::Parse("fd00::10"); }},
      {"port", [](auto& s) { s.port = 81; }},
      {"node_port", [](auto& s) { s.node_port = 30080; }},
      {"external_ips", [](auto& s) { s.external_ips.push_back(*net::IPAddress::Parse("192.0.2.1")); }},
      {"load_balancer_ips", [](auto& s) { s.load_balancer_ips.push_back(*net::IPAddress::Parse("192.0.2.1")); }},
      {"lb source ranges", [](auto& s) { s.load_balancer_source_ranges.push_back(*net::Cidr::Parse("192.0.2.0/24")); }},
      {"external_policy_local", [](auto& s) { s.external_policy_local = true; }},
      {"internal_policy_local", [](auto& s) { s.internal_policy_local = true; }},
      {"health_check_node_port", [](auto& s) { s.health_check_node_port = 32000; }},
      {"affinity", [](auto& s) { s.affinity_timeout_seconds = 10800; }},
      {"has_any_endpoint", [](auto& s) { s.has_any_endpoint = false; }},
      {"endpoint ip", [](auto& s) { s.cluster_endpoints[0].ip = *net::IPAddress::Parse("10.244.0.7"); }},
      {"endpoint port", [](auto& s) { s.cluster_endpoints[0].port = 8081; }},
      {"endpoint weight", [](auto& s) { s.cluster_endpoints[0].weight = 2; }},
      {"endpoint ready", [](auto& s) { s.cluster_endpoints[0].ready = false; }},
      {"endpoint serving", [](auto& s) { s.cluster_endpoints[0].serving = false; }},
      {"endpoint terminating", [](auto& s) { s.cluster_endpoints[0].terminating = true; }},
      {"endpoint local", [](auto& s) { s.cluster_endpoints[0].local = true; }},
      {"an endpoint fewer", [](auto& s) { s.cluster_endpoints.pop_back(); }},
      {"endpoint moved between lists", [](auto& s) { s.local_endpoints.push_back(s.cluster_endpoints.back()); s.cluster_endpoints.pop_back(); }},
      {"local endpoints", [](auto& s) { s.local_endpoints.clear(); }},
  };
  const std::string want = proxy::encode(base);
  proxy::ServicePort copy = base;
  EXPECT_EQ(proxy::encode(copy), want);
  for (const auto& [what, change] : changes) {
    proxy::ServicePort s = base;
    change(s);
    ASSERT_FALSE(s == base) << what;
    EXPECT_NE(proxy::encode(s), want) << what;
  }
}

// find_ports: the changed ports of a state, by bisection in the proxier's order and by a
// scan otherwise; the result is the same either way, in the state's order.
namespace {

proxy::ProxyState state_of(const std::vector<std::string>& names) {
  proxy::ProxyState st;
  for (const auto& n : names) {
    proxy::ServicePort sp;
    sp.name = n;
    st.services.push_back(sp);
  }
  return st;
}

std::vector<std::string> names_of(const std::vector<const proxy::ServicePort*>& ports) {
  std::vector<std::string> out;
  for (const auto* p : ports) out.push_back(p->name);
  return out;
}

}  // namespace

TEST(FindPorts, FindsEveryNamedPortOfAnOrderedStateInItsOrder) {
  // As the proxier keeps it: by service "ns/name" (std::map order: "ns/a" < "ns/a-b"),
  // each service's ports together; a port without a name has no colon.
  const std::vector<std::string> all = {"ns/a:dns", "ns/a:http", "ns/a-b:x", "ns/b", "ns/b-1:p", "ns/b10:p",
                                        "other/a:http"};
  auto st = state_of(all);
  for (const auto& n : all) {
    EXPECT_EQ(names_of(proxy::find_ports(st, {n})), std::vector<std::string>{n}) << n;
  }
  EXPECT_EQ(names_of(proxy::find_ports(st, {"other/a:http", "ns/a:dns", "ns/b"})),
            (std::vector<std::string>{"ns/a:dns", "ns/b", "other/a:http"}));
  EXPECT_EQ(names_of(proxy::find_ports(st, {std::set<std::string>(all.begin(), all.end())})), all);
}

TEST(FindPorts, NamesTheStateLacksHaveNoPort) {
  auto st = state_of({"ns/a:http", "ns/b:http"});
  EXPECT_TRUE(proxy::find_ports(st, {"ns/a:dns", "ns/c:http", "zz/z"}).empty());
  EXPECT_EQ(names_of(proxy::find_ports(st, {"ns/a:dns", "ns/b:http"})), std::vector<std::string>{"ns/b:http"});
  EXPECT_TRUE(proxy::find_ports(proxy::ProxyState{}, {"ns/a:http"}).empty());
}

TEST(FindPorts, AStateInAnotherOrderGivesTheSameResult) {
  // Sorted by the whole name ("ns/svc-10:http" before "ns/svc-1:http"), or not at all:
  // bisection may miss, the scan does not.
  auto st = state_of({"ns/svc-10:http", "ns/svc-1:http", "ns/svc-2:http", "a/z", "ns/svc-0:http"});
  EXPECT_EQ(names_of(proxy::find_ports(st, {"ns/svc-1:http", "a/z", "ns/svc-0:http", "ns/svc-10:http"})),
            (std::vector<std::string>{"ns/svc-10:http", "ns/svc-1:http", "a/z", "ns/svc-0:http"}));
}
