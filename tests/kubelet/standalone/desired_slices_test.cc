// The pure part of standalone mode's EndpointSlice controller: (Service, pods) -> slices.
#include "standalone/desired_slices.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "kubelet/standalone/builders.h"

namespace knode::kubelet {
namespace {

using testing::kubia;
using testing::PodBuilder;
using testing::service;

std::vector<api::EndpointSlice> slices_for(const api::Service& svc,
                                           const std::vector<api::Pod>& pods,
                                           const SliceState& state = {}, SliceContext ctx = {},
                                           std::vector<std::string>* problems = nullptr) {
  std::vector<const api::Pod*> ptrs;
  for (const auto& p : pods) ptrs.push_back(&p);
  return desired_endpoint_slices(svc, ptrs, ctx, state, problems);
}

std::vector<EndpointGroup> groups_for(const api::Service& svc, const std::vector<api::Pod>& pods,
                                      std::vector<std::string>* problems = nullptr,
                                      SliceContext ctx = {}) {
  std::vector<const api::Pod*> ptrs;
  for (const auto& p : pods) ptrs.push_back(&p);
  return desired_endpoints(svc, ptrs, ctx, problems);
}

std::vector<std::string> addresses(const api::EndpointSlice& es) {
  std::vector<std::string> out;
  for (const auto& ep : es.endpoints) out.push_back(ep.addresses.at(0));
  return out;
}

api::EndpointPort eport(const std::string& name, int32_t port, const std::string& proto = "TCP") {
  api::EndpointPort p;
  p.name = name;
  p.port = port;
  p.protocol = proto;
  return p;
}

// --- which services and pods ---

TEST(EndpointSliceLogic, SelectorMatchesWhenEveryTermHolds) {
  EXPECT_TRUE(selector_matches({{"app", "kubia"}}, {{"app", "kubia"}, {"tier", "web"}}));
  EXPECT_FALSE(
      selector_matches({{"app", "kubia"}, {"tier", "db"}}, {{"app", "kubia"}, {"tier", "web"}}));
  EXPECT_FALSE(selector_matches({{"app", "kubia"}}, {{"app", "other"}}));
  EXPECT_FALSE(selector_matches({{"app", "kubia"}}, {}));
  EXPECT_FALSE(selector_matches({}, {{"app", "kubia"}})) << "no selector selects nothing";
}

TEST(EndpointSliceLogic, ServicesWithoutSelectorOrExternalNameGetNothing) {
  auto no_selector = service(
      "apiVersion: v1\nkind: Service\nmetadata: {name: legacy}\n"
      "spec: {clusterIP: 10.96.0.77, ports: [{port: 5432}]}\n");
  auto external = service(
      "apiVersion: v1\nkind: Service\nmetadata: {name: ext}\n"
      "spec: {type: ExternalName, externalName: db.example.com, selector: {app: kubia}}\n");
  std::vector<api::Pod> pods = {PodBuilder("a").ip("10.244.0.11").get()};
  EXPECT_FALSE(manages_endpoint_slices(no_selector));
  EXPECT_FALSE(manages_endpoint_slices(external));
  EXPECT_TRUE(manages_endpoint_slices(kubia()));
  EXPECT_TRUE(slices_for(no_selector, pods).empty());
  EXPECT_TRUE(slices_for(external, pods).empty());
}

TEST(EndpointSliceLogic, OnlyLiveMatchingPodsOfTheNamespaceWithAnIPBecomeEndpoints) {
  std::vector<api::Pod> pods = {
      PodBuilder("in").ip("10.244.0.11").get(),
      PodBuilder("other-ns", "kube-system").ip("10.244.0.12").get(),
      PodBuilder("other-app").labels({{"app", "db"}}).ip("10.244.0.13").get(),
      PodBuilder("no-ip").get(),
      PodBuilder("succeeded").ip("10.244.0.14").phase("Succeeded").get(),
      PodBuilder("failed").ip("10.244.0.15").phase("Failed").get(),
      PodBuilder("pending-with-ip").ip("10.244.0.16").phase("Pending").ready(false).get(),
  };
  auto slices = slices_for(kubia(), pods);
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(addresses(slices[0]), (std::vector<std::string>{"10.244.0.11", "10.244.0.16"}));
}

// --- endpoint conditions, as upstream's podToEndpoint ---

struct ConditionCase {
  const char* name;
  bool pod_ready, terminating, publish_not_ready;
  bool ready, serving;
};

class EndpointConditionsTest : public ::testing::TestWithParam<ConditionCase> {};

TEST_P(EndpointConditionsTest, FollowPodReadinessAndDeletion) {
  const auto& c = GetParam();
  auto svc = kubia(c.publish_not_ready ? "  publishNotReadyAddresses: true\n" : "");
  PodBuilder b("a");
  b.ip("10.244.0.11").ready(c.pod_ready);
  if (c.terminating) b.terminating();
  auto slices = slices_for(svc, {b.get()});
  ASSERT_EQ(slices.size(), 1u);
  ASSERT_EQ(slices[0].endpoints.size(), 1u);
  const auto& cond = slices[0].endpoints[0].conditions;
  EXPECT_EQ(cond.ready, c.ready);
  EXPECT_EQ(cond.serving, c.serving);
  EXPECT_EQ(cond.terminating, c.terminating);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EndpointConditionsTest,
    ::testing::Values(ConditionCase{"Ready", true, false, false, true, true},
                      ConditionCase{"NotReady", false, false, false, false, false},
                      ConditionCase{"ReadyTerminating", true, true, false, false, true},
                      ConditionCase{"NotReadyTerminating", false, true, false, false, false},
                      ConditionCase{"PublishNotReady", false, false, true, true, false},
                      ConditionCase{"PublishTerminating", true, true, true, true, true}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(EndpointSliceLogic, PodWithoutReadyConditionIsNotReady) {
  auto p = PodBuilder("a").ip("10.244.0.11").get();
  p.status.conditions.clear();
  EXPECT_FALSE(is_pod_ready(p));
  auto slices = slices_for(kubia(), {p});
  ASSERT_EQ(slices.at(0).endpoints.size(), 1u);
  EXPECT_EQ(slices[0].endpoints[0].conditions.ready, false);
}

TEST(EndpointSliceLogic, EndpointNamesItsPodAndNode) {
  auto slices = slices_for(kubia(), {PodBuilder("a").ip("10.244.0.11").node("node-1").get()});
  ASSERT_EQ(slices.size(), 1u);
  const auto& ep = slices[0].endpoints.at(0);
  EXPECT_EQ(ep.addresses, std::vector<std::string>{"10.244.0.11"});
  EXPECT_EQ(ep.node_name, "node-1");
  ASSERT_TRUE(ep.target_ref);
  EXPECT_EQ(ep.target_ref->kind, "Pod");
  EXPECT_EQ(ep.target_ref->namespace_, "default");
  EXPECT_EQ(ep.target_ref->name, "a");
  EXPECT_EQ(ep.target_ref->uid, "uid-a");
  EXPECT_FALSE(ep.zone);
  EXPECT_FALSE(ep.hostname);
}

TEST(EndpointSliceLogic, PodWithoutNodeNameRunsOnThisNodeAndZoneComesFromTheNode) {
  SliceContext ctx;
  ctx.node_name = "node-1";
  ctx.zone_of = [](const std::string& node) -> std::optional<std::string> {
    if (node == "node-1") return "zone-a";
    return std::nullopt;
  };
  auto slices = slices_for(kubia(),
                           {PodBuilder("static").ip("10.244.0.11").get(),
                            PodBuilder("elsewhere").ip("10.244.0.12").node("node-2").get()},
                           {}, ctx);
  ASSERT_EQ(slices.at(0).endpoints.size(), 2u);
  EXPECT_EQ(slices[0].endpoints[0].node_name, "node-1");
  EXPECT_EQ(slices[0].endpoints[0].zone, "zone-a");
  EXPECT_EQ(slices[0].endpoints[1].node_name, "node-2");
  EXPECT_FALSE(slices[0].endpoints[1].zone) << "node-2 has no zone label";
}

TEST(EndpointSliceLogic, HostnameOnlyWhenTheSubdomainIsTheService) {
  auto slices =
      slices_for(kubia(), {PodBuilder("a").ip("10.244.0.11").hostname("web-0", "kubia").get(),
                           PodBuilder("b").ip("10.244.0.12").hostname("web-1", "other").get()});
  ASSERT_EQ(slices.at(0).endpoints.size(), 2u);
  EXPECT_EQ(slices[0].endpoints[0].hostname, "web-0");
  EXPECT_FALSE(slices[0].endpoints[1].hostname);
}

TEST(EndpointSliceLogic, PodIPFallsBackToStatusPodIPAndBadIPsAreReported) {
  auto only_pod_ip = PodBuilder("a").get();
  only_pod_ip.status.pod_ip = "10.244.0.11";
  auto bad = PodBuilder("b").ip("10.244.0.300").get();
  std::vector<std::string> problems;
  auto slices = slices_for(kubia(), {only_pod_ip, bad}, {}, {}, &problems);
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(addresses(slices[0]), std::vector<std::string>{"10.244.0.11"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0],
            "Pod default/b: status.podIPs[0].ip: \"10.244.0.300\" is not an IP address");
}

TEST(EndpointSliceLogic, HostNetworkPodsSharingAnAddressAreTwoEndpoints) {
  auto slices = slices_for(kubia(), {PodBuilder("a").ip("192.168.1.10").get(),
                                     PodBuilder("b").ip("192.168.1.10").get()});
  ASSERT_EQ(slices.at(0).endpoints.size(), 2u);
  EXPECT_EQ(slices[0].endpoints[0].target_ref->name, "a");
  EXPECT_EQ(slices[0].endpoints[1].target_ref->name, "b");
}

TEST(EndpointSliceLogic, EndpointsAreOrderedByAddressNumerically) {
  auto slices = slices_for(
      kubia(), {PodBuilder("a").ip("10.244.0.10").get(), PodBuilder("b").ip("10.244.0.9").get(),
                PodBuilder("c").ip("10.244.0.100").get()});
  EXPECT_EQ(addresses(slices.at(0)),
            (std::vector<std::string>{"10.244.0.9", "10.244.0.10", "10.244.0.100"}));
}

// --- ports ---

TEST(EndpointSliceLogic, NumericAndDefaultedTargetPorts) {
  auto svc = service(
      "apiVersion: v1\nkind: Service\nmetadata: {name: kubia}\n"
      "spec:\n  clusterIP: 10.96.0.10\n  selector: {app: kubia}\n"
      "  ports:\n  - {name: http, port: 80, targetPort: 8080}\n"
      "  - {name: metrics, port: 9100}\n"
      "  - {name: dns, port: 53, protocol: UDP, targetPort: 5353, appProtocol: dns}\n");
  auto slices = slices_for(svc, {PodBuilder("a").ip("10.244.0.11").get()});
  ASSERT_EQ(slices.size(), 1u);
  auto dns = eport("dns", 5353, "UDP");
  dns.app_protocol = "dns";
  // Ordered by name, whatever the service's order.
  EXPECT_EQ(slices[0].ports,
            (std::vector<api::EndpointPort>{dns, eport("http", 8080), eport("metrics", 9100)}));
}

TEST(EndpointSliceLogic, NamedTargetPortResolvesPerPodIntoSeparateSlices) {
  auto svc = kubia();
  svc.spec.ports[0].target_port = api::IntOrString::String("web");
  std::vector<std::string> problems;
  auto groups =
      groups_for(svc,
                 {PodBuilder("v1-a").ip("10.244.0.11").port("web", 8080).get(),
                  PodBuilder("v1-b").ip("10.244.0.12").port("web", 8080).get(),
                  PodBuilder("v2").ip("10.244.0.13").port("web", 9090).get(),
                  PodBuilder("udp-only").ip("10.244.0.14").port("web", 8080, "UDP").get()},
                 &problems);
  ASSERT_EQ(groups.size(), 3u);
  // A pod without the port keeps its endpoint, with no ports (as upstream).
  EXPECT_TRUE(groups[0].ports.empty());
  EXPECT_EQ(groups[0].endpoints.at(0).target_ref->name, "udp-only");
  EXPECT_EQ(groups[1].ports, std::vector<api::EndpointPort>{eport("http", 8080)});
  EXPECT_EQ(groups[1].endpoints.size(), 2u);
  EXPECT_EQ(groups[2].ports, std::vector<api::EndpointPort>{eport("http", 9090)});
  EXPECT_EQ(groups[2].endpoints.at(0).target_ref->name, "v2");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0],
            "Pod default/udp-only has no TCP container port named \"web\" (Service default/kubia "
            "port \"http\"); the port is left out of its endpoint");

  auto slices = slices_for(svc, {PodBuilder("v1-a").ip("10.244.0.11").port("web", 8080).get(),
                                 PodBuilder("v2").ip("10.244.0.13").port("web", 9090).get()});
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_NE(slices[0].metadata.name, slices[1].metadata.name);
}

TEST(EndpointSliceLogic, NamedPortsOfSidecarsCountButNotOfPlainInitContainers) {
  api::ServicePortSpec sp;
  sp.name = "http";
  sp.port = 80;
  sp.protocol = "TCP";
  sp.target_port = api::IntOrString::String("web");
  EXPECT_EQ(find_target_port(PodBuilder("a").sidecar_port("web", 7070).get(), sp), 7070);
  EXPECT_EQ(find_target_port(PodBuilder("a").sidecar_port("web", 7070, false).get(), sp),
            std::nullopt);
  EXPECT_EQ(find_target_port(PodBuilder("a").port("web", 8080).sidecar_port("web", 7070).get(), sp),
            8080)
      << "regular containers first";
  sp.target_port = api::IntOrString::Int(8443);
  EXPECT_EQ(find_target_port(PodBuilder("a").get(), sp), 8443);
  sp.target_port = api::IntOrString();
  EXPECT_EQ(find_target_port(PodBuilder("a").get(), sp), 80) << "targetPort defaults to port";
}

TEST(EndpointSliceLogic, HeadlessServiceWithoutPortsHasEndpointsWithoutPorts) {
  auto svc = service(
      "apiVersion: v1\nkind: Service\nmetadata: {name: db}\n"
      "spec: {clusterIP: None, selector: {app: kubia}, ipFamilies: [IPv4]}\n");
  auto slices = slices_for(svc, {PodBuilder("a").ip("10.244.0.11").get()});
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_TRUE(slices[0].ports.empty());
  EXPECT_EQ(slices[0].endpoints.size(), 1u);
  EXPECT_EQ(slices[0].metadata.labels.at(kHeadlessServiceLabel), "");
}

// --- address types ---

TEST(EndpointSliceLogic, AddressTypesFollowTheService) {
  EXPECT_EQ(service_address_types(kubia()), std::vector<std::string>{"IPv4"});
  EXPECT_EQ(service_address_types(kubia("  ipFamilies: [IPv6, IPv4]\n")),
            (std::vector<std::string>{"IPv4", "IPv6"}));
  auto v6 = service(
      "apiVersion: v1\nkind: Service\nmetadata: {name: v6}\n"
      "spec: {clusterIP: 'fd00::10', selector: {app: kubia}, ports: [{port: 80}]}\n");
  EXPECT_EQ(service_address_types(v6), std::vector<std::string>{"IPv6"});
  auto headless = service(
      "apiVersion: v1\nkind: Service\nmetadata: {name: h}\nspec: {clusterIP: None, selector: {app: "
      "kubia}}\n");
  EXPECT_EQ(service_address_types(headless), (std::vector<std::string>{"IPv4", "IPv6"}));
}

TEST(EndpointSliceLogic, DualStackServiceGetsOneSlicePerFamily) {
  auto svc = kubia("  clusterIPs: [10.96.0.10, 'fd00::10']\n  ipFamilies: [IPv4, IPv6]\n");
  auto slices = slices_for(svc, {PodBuilder("dual").ips({"10.244.0.11", "FD00:0:0:0::0B"}).get(),
                                 PodBuilder("v4-only").ip("10.244.0.12").get()});
  ASSERT_EQ(slices.size(), 2u);
  std::map<std::string, const api::EndpointSlice*> by_type;
  for (const auto& s : slices) by_type[s.address_type] = &s;
  ASSERT_TRUE(by_type.count("IPv4") && by_type.count("IPv6"));
  EXPECT_EQ(addresses(*by_type["IPv4"]), (std::vector<std::string>{"10.244.0.11", "10.244.0.12"}));
  EXPECT_EQ(addresses(*by_type["IPv6"]), std::vector<std::string>{"fd00::b"})
      << "printed canonically";
  EXPECT_EQ(by_type["IPv6"]->ports, std::vector<api::EndpointPort>{eport("http", 8080)});
}

TEST(EndpointSliceLogic, SingleStackServiceIgnoresTheOtherFamily) {
  auto slices = slices_for(kubia(), {PodBuilder("dual").ips({"fd00::b", "10.244.0.11"}).get()});
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0].address_type, "IPv4");
  EXPECT_EQ(addresses(slices[0]), std::vector<std::string>{"10.244.0.11"});
}

TEST(EndpointSliceLogic, AFamilyWithoutEndpointsGetsAPlaceholder) {
  auto svc = kubia("  clusterIPs: [10.96.0.10, 'fd00::10']\n  ipFamilies: [IPv4, IPv6]\n");
  auto slices = slices_for(svc, {PodBuilder("v4-only").ip("10.244.0.12").get()});
  ASSERT_EQ(slices.size(), 2u);
  for (const auto& s : slices) {
    if (s.address_type != "IPv6") continue;
    EXPECT_TRUE(s.endpoints.empty());
    EXPECT_TRUE(s.ports.empty());
  }
  auto none = slices_for(kubia(), {});
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].address_type, "IPv4");
  EXPECT_TRUE(none[0].endpoints.empty());
}

// --- metadata ---

TEST(EndpointSliceLogic, SlicesCarryTheServiceLabelsOwnerAndManagedBy) {
  auto svc = kubia();
  svc.metadata.labels = {{"team", "web"},
                         {"kubernetes.io/service-name", "spoofed"},
                         {kManagedByLabel, "someone-else"}};
  auto slices = slices_for(svc, {PodBuilder("a").ip("10.244.0.11").get()});
  ASSERT_EQ(slices.size(), 1u);
  const auto& m = slices[0].metadata;
  EXPECT_EQ(m.namespace_, "default");
  EXPECT_EQ(m.labels, (api::StringMap{{"team", "web"},
                                      {"kubernetes.io/service-name", "kubia"},
                                      {kManagedByLabel, kEndpointSliceControllerName}}));
  ASSERT_EQ(m.owner_references.size(), 1u);
  EXPECT_EQ(m.owner_references[0].kind, "Service");
  EXPECT_EQ(m.owner_references[0].api_version, "v1");
  EXPECT_EQ(m.owner_references[0].name, "kubia");
  EXPECT_EQ(m.owner_references[0].uid, "svc-uid");
  EXPECT_EQ(m.owner_references[0].controller, true);
}

TEST(EndpointSliceLogic, GeneratedNamesAreTheServiceNameAndFiveCharacters) {
  auto svc = kubia();
  std::string a = generated_slice_name(svc, 0);
  EXPECT_EQ(a, generated_slice_name(svc, 0)) << "deterministic";
  EXPECT_NE(a, generated_slice_name(svc, 1));
  ASSERT_EQ(a.size(), std::string("kubia-").size() + 5);
  EXPECT_EQ(a.substr(0, 6), "kubia-");
  for (char c : a.substr(6))
    EXPECT_NE(std::string("bcdfghjklmnpqrstvwxz2456789").find(c), std::string::npos) << a;
  auto other = svc;
  other.metadata.namespace_ = "prod";
  EXPECT_NE(generated_slice_name(other, 0), a);
}

// --- placement: size limit and stable names ---

std::vector<api::Pod> numbered_pods(int n, int first = 0) {
  std::vector<api::Pod> pods;
  for (int i = first; i < first + n; ++i) {
    pods.push_back(PodBuilder("p" + std::to_string(i))
                       .ip("10.244." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250))
                       .get());
  }
  return pods;
}

TEST(EndpointSliceLogic, AtMostMaxEndpointsPerSlice) {
  auto slices = slices_for(kubia(), numbered_pods(250));
  ASSERT_EQ(slices.size(), 3u);
  std::multiset<size_t> sizes;
  std::set<std::string> names, seen;
  for (const auto& s : slices) {
    sizes.insert(s.endpoints.size());
    names.insert(s.metadata.name);
    for (const auto& a : addresses(s)) EXPECT_TRUE(seen.insert(a).second) << a << " twice";
  }
  EXPECT_EQ(sizes, (std::multiset<size_t>{50, 100, 100}));
  EXPECT_EQ(names.size(), 3u);
  EXPECT_EQ(seen.size(), 250u);

  SliceContext small;
  small.max_endpoints_per_slice = 2;
  EXPECT_EQ(slices_for(kubia(), numbered_pods(5), {}, small).size(), 3u);
}

TEST(EndpointSliceLogic, NamesAndPlacementStayAcrossUpdates) {
  SliceContext ctx;
  ctx.max_endpoints_per_slice = 3;
  auto pods = numbered_pods(5);  // 10.244.0.1 .. .5
  auto first = slices_for(kubia(), pods, {}, ctx);
  ASSERT_EQ(first.size(), 2u);
  std::map<std::string, std::string> slice_of;  // address -> slice name
  for (const auto& s : first) {
    for (const auto& a : addresses(s)) slice_of[a] = s.metadata.name;
  }

  // p0 goes; p1 turns not ready; p9 comes. Nobody moves, and p9 takes a free slot rather
  // than a new slice.
  pods.erase(pods.begin());
  pods[0] = PodBuilder("p1").ip("10.244.0.2").ready(false).get();
  pods.push_back(PodBuilder("p9").ip("10.244.0.99").get());
  SliceState state{first, nullptr};
  auto second = slices_for(kubia(), pods, state, ctx);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].metadata.name, first[0].metadata.name);
  EXPECT_EQ(second[1].metadata.name, first[1].metadata.name);
  for (const auto& s : second) {
    for (const auto& ep : s.endpoints) {
      const auto& a = ep.addresses[0];
      if (a != "10.244.0.99") {
        EXPECT_EQ(s.metadata.name, slice_of[a]) << a << " moved";
      }
      if (a == "10.244.0.2") {
        EXPECT_EQ(ep.conditions.ready, false);
      }
    }
  }

  // Nothing changed: the same slices, equal.
  EXPECT_EQ(slices_for(kubia(), pods, SliceState{second, nullptr}, ctx), second);
}

TEST(EndpointSliceLogic, AnEmptiedSliceIsDroppedAndItsNameReusedByTheNextNewSlice) {
  SliceContext ctx;
  ctx.max_endpoints_per_slice = 2;
  auto first = slices_for(kubia(), numbered_pods(4), {}, ctx);
  ASSERT_EQ(first.size(), 2u);
  // Only p0 and p1 (one slice) remain.
  auto second = slices_for(kubia(), numbered_pods(2), SliceState{first, nullptr}, ctx);
  ASSERT_EQ(second.size(), 1u);
  std::set<std::string> first_names = {first[0].metadata.name, first[1].metadata.name};
  EXPECT_TRUE(first_names.count(second[0].metadata.name));
  // Everything goes: the placeholder keeps one of the names.
  auto third = slices_for(kubia(), {}, SliceState{second, nullptr}, ctx);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].metadata.name, second[0].metadata.name);
  EXPECT_TRUE(third[0].endpoints.empty());
  // And the first pod turns the placeholder back into a slice of the same name.
  auto fourth = slices_for(kubia(), numbered_pods(1), SliceState{third, nullptr}, ctx);
  ASSERT_EQ(fourth.size(), 1u);
  EXPECT_EQ(fourth[0].metadata.name, third[0].metadata.name);
  EXPECT_EQ(fourth[0].endpoints.size(), 1u);
}

TEST(EndpointSliceLogic, ChangedPortsReplaceTheSliceUnderTheSameName) {
  auto first = slices_for(kubia(), numbered_pods(2));
  ASSERT_EQ(first.size(), 1u);
  auto svc = kubia();
  svc.spec.ports[0].target_port = api::IntOrString::Int(9090);
  auto second = slices_for(svc, numbered_pods(2), SliceState{first, nullptr});
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].metadata.name, first[0].metadata.name);
  EXPECT_EQ(second[0].ports, std::vector<api::EndpointPort>{eport("http", 9090)});
}

TEST(EndpointSliceLogic, SlicesOverTheLimitSpillIntoNewSlices) {
  SliceContext ctx;
  ctx.max_endpoints_per_slice = 4;
  auto first = slices_for(kubia(), numbered_pods(4), {}, ctx);
  ASSERT_EQ(first.size(), 1u);
  ctx.max_endpoints_per_slice = 3;
  auto second = slices_for(kubia(), numbered_pods(4), SliceState{first, nullptr}, ctx);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_TRUE(second[0].metadata.name == first[0].metadata.name ||
              second[1].metadata.name == first[0].metadata.name);
  EXPECT_EQ(second[0].endpoints.size() + second[1].endpoints.size(), 4u);
}

TEST(EndpointSliceLogic, NamesOthersHoldAreSkipped) {
  auto svc = kubia();
  std::string taken = generated_slice_name(svc, 0);
  SliceState state;
  state.name_taken = [&](const std::string& n) { return n == taken; };
  auto slices = slices_for(svc, numbered_pods(1), state);
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0].metadata.name, generated_slice_name(svc, 1));
  // Without the conflict, the first name.
  EXPECT_EQ(slices_for(svc, numbered_pods(1)).at(0).metadata.name, taken);
}

TEST(EndpointSliceLogic, NewSlicesNeverReuseANameTheServiceStillHolds) {
  SliceContext ctx;
  ctx.max_endpoints_per_slice = 1;
  auto first = slices_for(kubia(), numbered_pods(1), {}, ctx);
  auto second = slices_for(kubia(), numbered_pods(3), SliceState{first, nullptr}, ctx);
  ASSERT_EQ(second.size(), 3u);
  std::set<std::string> names;
  for (const auto& s : second) names.insert(s.metadata.name);
  EXPECT_EQ(names.size(), 3u);
  EXPECT_TRUE(names.count(first[0].metadata.name));
}

}  // namespace
}  // namespace knode::kubelet
