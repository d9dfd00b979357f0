// The EndpointSlice controller wired to a real ObjectStore: events in, slices out, the
// store's synced logic, manifest slices left alone, and what a proxy would program from the
// store afterwards (proxy::build_service_ports over the slices the store holds).
#include "standalone/endpoint_slices.h"

#include <gtest/gtest.h>

#include <memory>

#include "kubelet/standalone/builders.h"
#include "service_ports.h"

namespace knode::kubelet {
namespace {

using testing::kubia;
using testing::object_of;
using testing::PodBuilder;
using testing::service;

constexpr const char* kManifests = "manifest-dir";

api::ObjectPtr manifest_slice(const std::string& name, const std::string& service_name,
                              const std::string& address, int32_t port = 8080) {
  auto es = testing::decode<api::EndpointSlice>(
      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
      "metadata: {name: " +
      name + ", namespace: default, labels: {kubernetes.io/service-name: " + service_name +
      "}}\naddressType: IPv4\nports: [{name: http, port: " + std::to_string(port) +
      "}]\nendpoints:\n- addresses: [\"" + address + "\"]\n  conditions: {ready: true}\n");
  return object_of(es);
}

class EndpointSliceControllerTest : public ::testing::Test {
 protected:
  EndpointSliceControllerTest() {
    store.expect_source(kManifests);
    store.subscribe(api::Kind::kEndpointSlice, [this](const Event& e) {
      const auto& es = api::get<api::EndpointSlice>(*e.object);
      auto it = es.metadata.labels.find(kManagedByLabel);
      if (it != es.metadata.labels.end() && it->second == kEndpointSliceControllerName) {
        computed_events.push_back(e);
      }
    });
  }

  void start() {
    EndpointSliceControllerOptions opts;
    opts.node_name = "node-1";
    controller = std::make_unique<EndpointSliceController>(store, opts);
    controller->start();
  }
  void start_synced() {
    start();
    store.on_synced(kManifests);
    computed_events.clear();
  }

  void add(api::ObjectPtr o) { store.on_event(Event{EventType::kAdded, std::move(o), nullptr}); }
  void add(const api::Service& s) { add(object_of(s)); }
  void add(const PodBuilder& p) { add(p.object()); }
  // As the kubelet publishes a pod's status: MODIFIED with the previous object.
  void modify(const PodBuilder& p) { modify(p.object()); }
  void modify(const api::Service& s) { modify(object_of(s)); }
  void modify(api::ObjectPtr o) {
    auto old = store.get(api::key_of(*o));
    store.on_event(Event{EventType::kModified, std::move(o), old});
  }
  void remove(api::Kind kind, const std::string& key) {
    auto old = store.get(api::ObjectKey{kind, key});
    ASSERT_TRUE(old) << key;
    store.on_event(Event{EventType::kDeleted, old, nullptr});
  }

  // The slices the store holds for a service of "default", by name, as the proxier selects
  // them (namespace and kubernetes.io/service-name).
  std::map<std::string, api::EndpointSlice> slices_of(const std::string& svc) const {
    std::map<std::string, api::EndpointSlice> out;
    for (const auto& o : store.list(api::Kind::kEndpointSlice)) {
      const auto& es = api::get<api::EndpointSlice>(*o);
      auto it = es.metadata.labels.find(api::EndpointSlice::kServiceNameLabel);
      if (es.metadata.namespace_ == "default" && it != es.metadata.labels.end() &&
          it->second == svc) {
        out.emplace(es.metadata.name, es);
      }
    }
    return out;
  }
  std::vector<std::string> computed_names(const std::string& svc) const {
    std::vector<std::string> out;
    for (const auto& [name, es] : slices_of(svc)) {
      auto it = es.metadata.labels.find(kManagedByLabel);
      if (it != es.metadata.labels.end() && it->second == kEndpointSliceControllerName)
        out.push_back(name);
    }
    return out;
  }

  // What a proxy programs for the service from what the store holds now: the endpoints of
  // each service port, "ip:port", plus "(terminating)" for those used as a fallback.
  std::map<std::string, std::vector<std::string>> proxy_view(const std::string& svc_name) const {
    auto svc = store.get(api::ObjectKey{api::Kind::kService, "default/" + svc_name});
    EXPECT_TRUE(svc) << svc_name;
    if (!svc) return {};
    auto held = slices_of(svc_name);
    std::vector<const api::EndpointSlice*> slices;
    for (const auto& [n, es] : held) slices.push_back(&es);
    proxy::NodeContext node{"node-1"};
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& sp : proxy::build_service_ports(api::get<api::Service>(*svc), slices, node)) {
      auto& eps = out[sp.name];
      for (const auto& ep : sp.cluster_endpoints) {
        eps.push_back(ep.str() + (ep.terminating ? " (terminating)" : ""));
      }
    }
    return out;
  }

  std::vector<std::string> computed_event_types() const {
    std::vector<std::string> out;
    for (const auto& e : computed_events) out.push_back(to_string(e.type));
    return out;
  }

  ObjectStore store;
  std::unique_ptr<EndpointSliceController> controller;
  std::vector<Event> computed_events;
};

// --- synced ---

TEST_F(EndpointSliceControllerTest, SyncsOnlyAfterItsInputsWithTheSlicesAlreadyInTheStore) {
  start();
  bool all_synced = false;
  size_t slices_when_synced = 0;
  store.on_all_synced([&] {
    all_synced = true;
    slices_when_synced = slices_of("kubia").size();
  });
  add(kubia());
  add(PodBuilder("a").ip("10.244.0.11"));
  add(PodBuilder("b").ip("10.244.0.12"));
  EXPECT_TRUE(computed_events.empty()) << "nothing is computed before the inputs synced";
  EXPECT_FALSE(controller->synced());
  EXPECT_FALSE(store.synced());

  store.on_synced(kManifests);
  EXPECT_TRUE(controller->synced());
  EXPECT_TRUE(store.synced());
  EXPECT_TRUE(all_synced);
  EXPECT_EQ(slices_when_synced, 1u) << "the store's synced handlers see the computed slices";
  EXPECT_EQ(computed_event_types(), std::vector<std::string>{"ADDED"});
  EXPECT_EQ(proxy_view("kubia"),
            (std::map<std::string, std::vector<std::string>>{
                {"default/kubia:http", {"10.244.0.11:8080", "10.244.0.12:8080"}}}));
}

TEST_F(EndpointSliceControllerTest, StartedAfterTheSourcesSyncedComputesAtOnce) {
  add(kubia());
  add(PodBuilder("a").ip("10.244.0.11"));
  store.on_synced(kManifests);
  ASSERT_TRUE(store.synced());
  start();
  EXPECT_TRUE(controller->synced());
  EXPECT_TRUE(store.synced());
  EXPECT_EQ(controller->slice_count(), 1u);
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            std::vector<std::string>{"10.244.0.11:8080"});
}

TEST_F(EndpointSliceControllerTest, WaitsForEverySourceRegisteredBeforeIt) {
  store.expect_source("kubelet-status");
  start();
  add(kubia());
  add(PodBuilder("a").ip("10.244.0.11"));
  store.on_synced(kManifests);
  EXPECT_FALSE(controller->synced());
  EXPECT_FALSE(store.synced());
  store.on_synced("kubelet-status");
  EXPECT_TRUE(controller->synced());
  EXPECT_TRUE(store.synced());
  EXPECT_EQ(controller->slice_count(), 1u);
}

// --- events ---

TEST_F(EndpointSliceControllerTest, ModifiedOnlyOnARealChange) {
  start_synced();
  add(kubia());
  add(PodBuilder("a").ip("10.244.0.11"));
  ASSERT_EQ(computed_event_types(), (std::vector<std::string>{"ADDED", "MODIFIED"}))
      << "the service's placeholder, then its first endpoint";
  std::string name = computed_names("kubia").at(0);
  computed_events.clear();

  // A status update that changes nothing an endpoint shows.
  auto same = PodBuilder("a").ip("10.244.0.11").get();
  same.status.start_time = api::Time::FromUnixNanos(1);
  modify(object_of(same));
  modify(kubia());
  EXPECT_TRUE(computed_events.empty());

  modify(PodBuilder("a").ip("10.244.0.11").ready(false));
  ASSERT_EQ(computed_event_types(), std::vector<std::string>{"MODIFIED"});
  const auto& e = computed_events[0];
  ASSERT_TRUE(e.old);
  EXPECT_EQ(api::get<api::EndpointSlice>(*e.old).endpoints.at(0).conditions.ready, true);
  EXPECT_EQ(api::get<api::EndpointSlice>(*e.object).endpoints.at(0).conditions.ready, false);
  EXPECT_EQ(api::meta_of(*e.object).name, name) << "the name is stable";
}

TEST_F(EndpointSliceControllerTest, PodsComingAndGoing) {
  start_synced();
  add(kubia());
  add(PodBuilder("a").ip("10.244.0.11"));
  add(PodBuilder("b").ip("10.244.0.12"));
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            (std::vector<std::string>{"10.244.0.11:8080", "10.244.0.12:8080"}));
  remove(api::Kind::kPod, "default/a");
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            std::vector<std::string>{"10.244.0.12:8080"});
  // Relabelled away, published without its old state: still removed.
  auto relabelled = PodBuilder("b").ip("10.244.0.12").labels({{"app", "other"}}).object();
  store.on_event(Event{EventType::kModified, relabelled, nullptr});
  EXPECT_TRUE(proxy_view("kubia").at("default/kubia:http").empty());
  EXPECT_EQ(controller->slice_count(), 1u) << "the placeholder stays";
  // Relabelled back.
  modify(PodBuilder("b").ip("10.244.0.12"));
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            std::vector<std::string>{"10.244.0.12:8080"});
}

TEST_F(EndpointSliceControllerTest, ServiceDeletedOrSelectorRemovedDeletesItsSlices) {
  start_synced();
  add(kubia());
  add(PodBuilder("a").ip("10.244.0.11"));
  ASSERT_EQ(slices_of("kubia").size(), 1u);
  computed_events.clear();

  auto no_selector = kubia();
  no_selector.spec.selector.clear();
  modify(no_selector);
  EXPECT_EQ(computed_event_types(), std::vector<std::string>{"DELETED"});
  EXPECT_TRUE(slices_of("kubia").empty());

  modify(kubia());
  EXPECT_EQ(slices_of("kubia").size(), 1u);
  remove(api::Kind::kService, "default/kubia");
  EXPECT_TRUE(slices_of("kubia").empty());
  EXPECT_EQ(controller->slice_count(), 0u);
}

TEST_F(EndpointSliceControllerTest, OnlyServicesOfThePodsNamespace) {
  start_synced();
  add(kubia());
  auto other = kubia();
  other.metadata.namespace_ = "prod";
  add(other);
  add(PodBuilder("a", "prod").ip("10.244.0.11"));
  EXPECT_TRUE(proxy_view("kubia").at("default/kubia:http").empty());
  auto prod = store.get(
      api::ObjectKey{api::Kind::kEndpointSlice, "prod/" + generated_slice_name(other, 0)});
  ASSERT_TRUE(prod);
  EXPECT_EQ(api::get<api::EndpointSlice>(*prod).endpoints.size(), 1u);
}

TEST_F(EndpointSliceControllerTest, ZoneFollowsTheNodeLabel) {
  start_synced();
  add(kubia());
  add(PodBuilder("a").ip("10.244.0.11"));
  auto node = testing::decode<api::Node>(
      "apiVersion: v1\nkind: Node\nmetadata: {name: node-1, labels: {topology.kubernetes.io/zone: "
      "zone-a}}\n");
  computed_events.clear();
  add(object_of(node));
  ASSERT_EQ(computed_event_types(), std::vector<std::string>{"MODIFIED"});
  EXPECT_EQ(slices_of("kubia").begin()->second.endpoints.at(0).zone, "zone-a");
  EXPECT_EQ(slices_of("kubia").begin()->second.endpoints.at(0).node_name, "node-1");
  remove(api::Kind::kNode, "node-1");
  EXPECT_FALSE(slices_of("kubia").begin()->second.endpoints.at(0).zone);
}

// --- manifest slices ---

TEST_F(EndpointSliceControllerTest, ManifestSlicesOfTheSameServiceAreLeftAloneAndMerged) {
  start();
  auto hand_written = manifest_slice("kubia-x7k2p", "kubia", "10.244.9.9");
  add(kubia());
  add(hand_written);
  add(PodBuilder("a").ip("10.244.0.11"));
  store.on_synced(kManifests);
  EXPECT_EQ(store.get(api::ObjectKey{api::Kind::kEndpointSlice, "default/kubia-x7k2p"}),
            hand_written);
  EXPECT_EQ(slices_of("kubia").size(), 2u);
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            (std::vector<std::string>{"10.244.0.11:8080", "10.244.9.9:8080"}));

  // Changes to the service leave the manifest's slice as it is.
  remove(api::Kind::kPod, "default/a");
  auto no_selector = kubia();
  no_selector.spec.selector.clear();
  modify(no_selector);
  EXPECT_EQ(store.get(api::ObjectKey{api::Kind::kEndpointSlice, "default/kubia-x7k2p"}),
            hand_written);
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            std::vector<std::string>{"10.244.9.9:8080"});
}

TEST_F(EndpointSliceControllerTest, ANameTheStoreHoldsIsNeverTaken) {
  auto svc = kubia();
  std::string first = generated_slice_name(svc, 0);
  // Another service's manifest slice happens to hold the first generated name.
  auto squatter = manifest_slice(first, "elsewhere", "10.244.9.9");
  add(squatter);
  start_synced();
  add(svc);
  add(PodBuilder("a").ip("10.244.0.11"));
  EXPECT_EQ(store.get(api::ObjectKey{api::Kind::kEndpointSlice, "default/" + first}), squatter);
  EXPECT_EQ(computed_names("kubia"), std::vector<std::string>{generated_slice_name(svc, 1)});
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            std::vector<std::string>{"10.244.0.11:8080"});
}

TEST_F(EndpointSliceControllerTest, AManifestSliceArrivingUnderAComputedNameWins) {
  start_synced();
  add(kubia());
  add(PodBuilder("a").ip("10.244.0.11"));
  std::string taken = computed_names("kubia").at(0);
  computed_events.clear();

  auto manifest = manifest_slice(taken, "kubia", "10.244.9.9");
  add(manifest);
  EXPECT_EQ(store.get(api::ObjectKey{api::Kind::kEndpointSlice, "default/" + taken}), manifest)
      << "the controller never deletes or overwrites it";
  EXPECT_EQ(computed_event_types(), std::vector<std::string>{"ADDED"}) << "only the moved slice";
  auto names = computed_names("kubia");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_NE(names[0], taken);
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            (std::vector<std::string>{"10.244.0.11:8080", "10.244.9.9:8080"}));
  EXPECT_EQ(controller->slice_count(), 1u);

  // The manifest's slice goes away again; the computed one is unaffected.
  remove(api::Kind::kEndpointSlice, "default/" + taken);
  EXPECT_EQ(computed_names("kubia"), names);
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            std::vector<std::string>{"10.244.0.11:8080"});
}

// --- what the proxy programs ---

TEST_F(EndpointSliceControllerTest, ProxyProgramsReadyEndpointsOnly) {
  start_synced();
  add(kubia());
  add(PodBuilder("ready").ip("10.244.0.11"));
  add(PodBuilder("starting").ip("10.244.0.12").ready(false));
  add(PodBuilder("leaving").ip("10.244.0.13").terminating());
  add(PodBuilder("done").ip("10.244.0.14").phase("Succeeded").ready(false));
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            std::vector<std::string>{"10.244.0.11:8080"});
}

TEST_F(EndpointSliceControllerTest, ProxyFallsBackToServingTerminatingEndpoints) {
  start_synced();
  add(kubia());
  add(PodBuilder("a").ip("10.244.0.11"));
  add(PodBuilder("b").ip("10.244.0.12"));
  // Both are being deleted; a still passes its readiness probe, b no longer does.
  modify(PodBuilder("a").ip("10.244.0.11").terminating());
  modify(PodBuilder("b").ip("10.244.0.12").terminating().ready(false));
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            std::vector<std::string>{"10.244.0.11:8080 (terminating)"});
  // A ready replacement takes over.
  add(PodBuilder("c").ip("10.244.0.13"));
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            std::vector<std::string>{"10.244.0.13:8080"});
}

TEST_F(EndpointSliceControllerTest, ProxyProgramsNotReadyAddressesWhenTheServicePublishesThem) {
  start_synced();
  add(kubia("  publishNotReadyAddresses: true\n"));
  add(PodBuilder("starting").ip("10.244.0.12").ready(false));
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http"),
            std::vector<std::string>{"10.244.0.12:8080"});
}

TEST_F(EndpointSliceControllerTest, ProxyReachesEachPodOnItsOwnNamedPort) {
  start_synced();
  add(
      service("apiVersion: v1\nkind: Service\nmetadata: {name: kubia}\n"
              "spec:\n  clusterIP: 10.96.0.10\n  selector: {app: kubia}\n"
              "  ports:\n  - {name: http, port: 80, targetPort: web}\n  - {name: dns, port: 53, "
              "protocol: UDP, targetPort: dns}\n"));
  add(PodBuilder("old").ip("10.244.0.11").port("web", 8080).port("dns", 5353, "UDP"));
  add(PodBuilder("new").ip("10.244.0.12").port("web", 9090).port("dns", 5353, "UDP"));
  add(PodBuilder("no-web").ip("10.244.0.13").port("dns", 5353, "UDP"));
  EXPECT_EQ(slices_of("kubia").size(), 3u);
  EXPECT_EQ(
      proxy_view("kubia"),
      (std::map<std::string, std::vector<std::string>>{
          {"default/kubia:http", {"10.244.0.11:8080", "10.244.0.12:9090"}},
          {"default/kubia:dns", {"10.244.0.11:5353", "10.244.0.12:5353", "10.244.0.13:5353"}}}));
}

TEST_F(EndpointSliceControllerTest, StaticPodsWithoutNodeNameAreLocal) {
  start_synced();
  add(kubia());
  add(PodBuilder("static").ip("10.244.0.11"));
  add(PodBuilder("remote").ip("10.244.0.12").node("node-2"));
  auto svc = store.get(api::ObjectKey{api::Kind::kService, "default/kubia"});
  auto held = slices_of("kubia");
  std::vector<const api::EndpointSlice*> slices;
  for (const auto& [n, es] : held) slices.push_back(&es);
  auto ports = proxy::build_service_ports(api::get<api::Service>(*svc), slices,
                                          proxy::NodeContext{"node-1"});
  ASSERT_EQ(ports.size(), 1u);
  ASSERT_EQ(ports[0].local_endpoints.size(), 1u);
  EXPECT_EQ(ports[0].local_endpoints[0].str(), "10.244.0.11:8080");
  EXPECT_EQ(ports[0].cluster_endpoints.size(), 2u);
}

TEST_F(EndpointSliceControllerTest, ManyPodsAreSplitAcrossSlicesAndAllProgrammed) {
  start_synced();
  add(kubia());
  for (int i = 0; i < 230; ++i) {
    add(PodBuilder("p" + std::to_string(i))
            .ip("10.244." + std::to_string(i / 200) + "." + std::to_string(1 + i % 200)));
  }
  EXPECT_EQ(controller->slice_count(), 3u);
  for (const auto& [name, es] : slices_of("kubia")) EXPECT_LE(es.endpoints.size(), 100u) << name;
  EXPECT_EQ(proxy_view("kubia").at("default/kubia:http").size(), 230u);
}

}  // namespace
}  // namespace knode::kubelet
