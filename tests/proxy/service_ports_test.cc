#include <gtest/gtest.h>

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
