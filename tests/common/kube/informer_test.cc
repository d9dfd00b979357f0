#include "knode/kube/informer.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "common/kube/fake_apiserver.h"
#include "knode/api/service.h"

namespace knode::kube {
namespace {

using json = nlohmann::json;
using testing::FakeApiServer;

json service(const std::string& name, int rv, const std::string& ip = "10.96.0.10") {
  return json{{"kind", "Service"},
              {"apiVersion", "v1"},
              {"metadata", {{"name", name}, {"namespace", "default"}, {"resourceVersion", std::to_string(rv)}}},
              {"spec", {{"clusterIP", ip}, {"ports", json::array({{{"port", 80}, {"protocol", "TCP"}}})}}}};
}

json list_item(json s) {
  s.erase("kind");
  s.erase("apiVersion");
  return s;
}

// Collects what the informer delivers, from its thread.
struct Collector {
  std::mutex mu;
  std::vector<Event> events;
  std::vector<std::pair<size_t, bool>> batches;  // (events, synced) of each delivery
  int synced = 0;
  void deliver(std::vector<Event> batch, bool s) {
    std::lock_guard lock(mu);
    batches.emplace_back(batch.size(), s);
    for (auto& e : batch) events.push_back(std::move(e));
    synced += s;
  }
  size_t size() {
    std::lock_guard lock(mu);
    return events.size();
  }
  // Waits (bounded) for at least n events.
  bool wait_for(size_t n) {
    for (int i = 0; i < 500; ++i) {
      if (size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::vector<std::pair<EventType, std::string>> summary() {
    std::lock_guard lock(mu);
    std::vector<std::pair<EventType, std::string>> out;
    for (const auto& e : events) out.emplace_back(e.type, api::meta_of(*e.object).name);
    return out;
  }
};

class InformerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KubeConfig c;
    c.server = server.url();
    c.token = "s3cret";
    c.source = "test";
    auto cl = RestClient::create(c, ClientOptions{.qps = 0});
    ASSERT_TRUE(cl.ok()) << cl.status().message();
    client = std::move(*cl);
    options.backoff_initial = std::chrono::milliseconds(20);
    options.backoff_max = std::chrono::milliseconds(100);
    options.page_size = 3;
  }
  std::unique_ptr<Informer> start(WatchSpec spec = {api::Kind::kService}) {
    auto inf = std::make_unique<Informer>(
        *client, std::move(spec), [this](std::vector<Event> b, bool s) { got.deliver(std::move(b), s); }, options);
    inf->start();
    return inf;
  }

  // s0..s6 at versions 10..16, as list items: three pages of 3.
  static std::vector<json> seven_services() {
    std::vector<json> objs;
    for (int i = 0; i < 7; ++i) objs.push_back(list_item(service("s" + std::to_string(i), 10 + i)));
    return objs;
  }

  FakeApiServer server;
  std::unique_ptr<RestClient> client;
  InformerOptions options;
  Collector got;
};

TEST_F(InformerTest, ListsInPagesThenWatchesFromTheListsVersion) {
  std::vector<json> objs = seven_services();
  server.set_objects(objs, 20);
  auto inf = start();
  ASSERT_TRUE(got.wait_for(7));
  ASSERT_TRUE(server.wait_watching());
  EXPECT_EQ(got.synced, 1);
  EXPECT_EQ(server.count("limit=3"), 3);  // 7 objects in pages of 3
  EXPECT_EQ(server.count("continue=3"), 1);
  EXPECT_EQ(server.count("continue=6"), 1);
  EXPECT_EQ(server.count("watch=true&allowWatchBookmarks=true&resourceVersion=20"), 1);
  for (const auto& r : server.requests()) {
    EXPECT_EQ(r.authorization, "Bearer s3cret");
    EXPECT_TRUE(r.user_agent.starts_with("knode/")) << r.user_agent;
  }

  server.push({{"type", "MODIFIED"}, {"object", service("s3", 21, "10.96.0.99")}}, 21);
  server.push({{"type", "DELETED"}, {"object", service("s4", 22)}}, 22);
  server.push({{"type", "ADDED"}, {"object", service("new", 23)}}, 23);
  ASSERT_TRUE(got.wait_for(10));
  auto s = got.summary();
  EXPECT_EQ(s[7], std::make_pair(EventType::kModified, std::string("s3")));
  EXPECT_EQ(s[8], std::make_pair(EventType::kDeleted, std::string("s4")));
  EXPECT_EQ(s[9], std::make_pair(EventType::kAdded, std::string("new")));
  {
    std::lock_guard lock(got.mu);
    ASSERT_TRUE(got.events[7].old);
    EXPECT_EQ(api::get<api::Service>(*got.events[7].old).spec.cluster_ip, "10.96.0.10");
    EXPECT_EQ(api::get<api::Service>(*got.events[7].object).spec.cluster_ip, "10.96.0.99");
  }
  EXPECT_EQ(inf->resource_version(), "23");
}

TEST_F(InformerTest, AsksForProtobufWhereKnodeHasTheSchemaAndReadsJsonAnswers) {
  // The fake answers JSON whatever it is asked: the informer reads what the answer's
  // Content-Type says (protobuf answers: protobuf_test.cc and the cluster tier).
  server.set_objects({list_item(service("s0", 10))}, 20);
  auto inf = start();
  ASSERT_TRUE(got.wait_for(1));
  ASSERT_TRUE(server.wait_watching());
  inf->stop();
  for (const auto& r : server.requests()) {
    EXPECT_EQ(r.accept, "application/vnd.kubernetes.protobuf, application/json") << r.target;
  }
  // Namespaces: no schema, JSON only; and --kube-api-content-type=application/json.
  server.clear_requests();
  auto nodes = start({api::Kind::kNamespace});
  ASSERT_TRUE(server.wait_request("watch=true"));
  nodes->stop();
  ASSERT_FALSE(server.requests().empty());
  for (const auto& r : server.requests()) EXPECT_EQ(r.accept, "application/json") << r.target;
  server.clear_requests();
  options.protobuf = false;
  auto json_only = start();
  ASSERT_TRUE(server.wait_request("watch=true"));
  json_only->stop();
  ASSERT_FALSE(server.requests().empty());
  for (const auto& r : server.requests()) EXPECT_EQ(r.accept, "application/json") << r.target;
}

TEST_F(InformerTest, ADroppedWatchResumesFromTheLastVersionWithoutListing) {
  server.set_objects({list_item(service("a", 5))}, 5);
  auto inf = start();
  ASSERT_TRUE(got.wait_for(1));
  ASSERT_TRUE(server.wait_watching());
  server.push({{"type", "MODIFIED"}, {"object", service("a", 6)}}, 6);
  server.push({{"type", "BOOKMARK"}, {"object", {{"kind", "Service"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", "9"}}}}}}, 9);
  ASSERT_TRUE(got.wait_for(2));
  for (int i = 0; i < 200 && inf->resource_version() != "9"; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(inf->resource_version(), "9");
  server.drop_watches();
  // The next watch starts where the bookmark left it; no second list.
  for (int i = 0; i < 500 && server.count("resourceVersion=9") == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server.count("resourceVersion=9"), 1);
  EXPECT_EQ(server.count("limit="), 1);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(inf->stats().relists, 0u);
}

TEST_F(InformerTest, After410ItListsAgainAndEmitsOnlyRealDifferences) {
  std::vector<json> objs;
  for (int i = 0; i < 5; ++i) objs.push_back(list_item(service("s" + std::to_string(i), 10 + i)));
  server.set_objects(objs, 15);
  auto inf = start();
  ASSERT_TRUE(got.wait_for(5));
  ASSERT_TRUE(server.wait_watching());
  // While the watch was away: s1 changed, s2 went, t came; s0, s3, s4 unchanged.
  server.set_objects({objs[0], list_item(service("s1", 30, "10.96.0.77")), objs[3], objs[4],
                      list_item(service("t", 31))},
                     31);
  server.expire_below(31);
  server.drop_watches();
  ASSERT_TRUE(got.wait_for(8));
  for (int i = 0; i < 500 && !server.wait_watching(); ++i) {}
  auto s = got.summary();
  std::vector<std::pair<EventType, std::string>> after(s.begin() + 5, s.end());
  std::sort(after.begin(), after.end());
  std::vector<std::pair<EventType, std::string>> want = {
      {EventType::kAdded, "t"}, {EventType::kModified, "s1"}, {EventType::kDeleted, "s2"}};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(after, want);
  EXPECT_EQ(inf->stats().gone, 1u);
  EXPECT_EQ(inf->stats().relists, 1u);
  EXPECT_EQ(got.synced, 1);  // synced only once
  EXPECT_EQ(inf->resource_version(), "31");
}

// A list reaches the sink page by page (the informer holds no more than a page of
// objects), synced with the last page; a relist's deletions come with its last page.
TEST_F(InformerTest, EachListPageIsDeliveredAsItArrivesAndDeletionsWithTheLast) {
  std::vector<json> objs = seven_services();
  server.set_objects(objs, 20);
  auto inf = start();
  ASSERT_TRUE(got.wait_for(7));
  ASSERT_TRUE(server.wait_watching());
  {
    std::lock_guard lock(got.mu);
    EXPECT_EQ(got.batches, (std::vector<std::pair<size_t, bool>>{{3, false}, {3, false}, {1, true}}));
    got.batches.clear();
  }
  // Relisted after a 410: s0 went, s6 changed; the rest (two pages' worth) unchanged.
  objs.erase(objs.begin());
  objs.back() = list_item(service("s6", 40, "10.96.0.66"));
  server.set_objects(objs, 40);
  server.expire_below(40);
  server.drop_watches();
  ASSERT_TRUE(got.wait_for(9));
  for (int i = 0; i < 500 && !server.wait_watching(); ++i) {}
  std::lock_guard lock(got.mu);
  // pages [s1 s2 s3] [s4 s5 s6]: nothing, then s6 modified with s0's deletion
  EXPECT_EQ(got.batches, (std::vector<std::pair<size_t, bool>>{{2, false}}));
  ASSERT_EQ(got.events.size(), 9u);
  EXPECT_EQ(got.events[7].type, EventType::kModified);
  EXPECT_EQ(api::meta_of(*got.events[7].object).name, "s6");
  EXPECT_EQ(got.events[8].type, EventType::kDeleted);
  EXPECT_EQ(api::meta_of(*got.events[8].object).name, "s0");
}

// A continue token that expires mid-list starts the list over, as a new list: an object
// an earlier page delivered and that went meanwhile is deleted when the list ends.
TEST_F(InformerTest, AContinueTokenExpiredMidListStartsANewList) {
  std::vector<json> objs = seven_services();
  server.set_objects(objs, 20);
  std::vector<json> without_s0(objs.begin() + 1, objs.end());
  server.expire_next_continue(without_s0, 30);
  auto inf = start();
  ASSERT_TRUE(got.wait_for(8));
  ASSERT_TRUE(server.wait_watching());
  EXPECT_EQ(got.synced, 1);
  auto s = got.summary();
  ASSERT_EQ(s.size(), 8u);
  EXPECT_EQ(s.back(), std::make_pair(EventType::kDeleted, std::string("s0")));
  EXPECT_EQ(inf->resource_version(), "30");
}

TEST_F(InformerTest, ListFailuresAreRetriedWithBackOff) {
  server.set_objects({list_item(service("a", 3))}, 3);
  server.fail_next(3);
  auto inf = start();
  ASSERT_TRUE(got.wait_for(1));
  EXPECT_EQ(server.count("limit="), 4);
  EXPECT_EQ(inf->stats().errors, 3u);
  EXPECT_EQ(got.synced, 1);
}

TEST_F(InformerTest, SelectorsGoInTheQuery) {
  server.set_objects({}, 1);
  auto inf = start({api::Kind::kPod, "", "", "spec.nodeName=node-1"});
  ASSERT_TRUE(server.wait_watching());
  auto reqs = server.requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_TRUE(reqs[0].target.starts_with("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1&limit=3")) << reqs[0].target;
  EXPECT_EQ(got.synced, 1);
}

TEST_F(InformerTest, StopEndsAWatchInProgress) {
  server.set_objects({}, 1);
  auto inf = start();
  ASSERT_TRUE(server.wait_watching());
  auto t0 = std::chrono::steady_clock::now();
  inf->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(ReflectorCacheTest, ReplaceKeepsUnchangedObjectsQuiet) {
  auto mk = [](const std::string& n, const std::string& rv) {
    api::Service s;
    s.metadata.name = n;
    s.metadata.namespace_ = "default";
    s.metadata.resource_version = rv;
    return std::make_shared<const api::Object>(s);
  };
  ReflectorCache c;
  EXPECT_EQ(c.replace({mk("a", "1"), mk("b", "1")}).size(), 2u);
  auto ev = c.replace({mk("a", "1"), mk("b", "2")});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::kModified);
  EXPECT_FALSE(c.apply(EventType::kModified, mk("b", "2")));  // already seen
  EXPECT_FALSE(c.apply(EventType::kDeleted, mk("zz", "3")));   // unknown
  auto add = c.apply(EventType::kModified, mk("c", "4"));      // unknown: an add
  ASSERT_TRUE(add);
  EXPECT_EQ(add->type, EventType::kAdded);
  EXPECT_EQ(c.size(), 3u);
}

// A cache for a consumer that keeps its own projection (the proxy) holds no object: what
// the sink drops is freed, modifications carry no old object, and a deletion found by a
// relist still names the object (a stub of its kind with namespace, name and version).
TEST(ReflectorCacheTest, WithoutObjectsKeepsOnlyVersionsAndStubsRelistDeletions) {
  auto mk = [](const std::string& n, const std::string& rv) {
    api::EndpointSlice s;
    s.metadata.name = n;
    s.metadata.namespace_ = "default";
    s.metadata.resource_version = rv;
    s.metadata.labels[api::EndpointSlice::kServiceNameLabel] = "svc";
    s.endpoints.resize(3);
    return std::make_shared<const api::Object>(s);
  };
  ReflectorCache c(false);
  std::weak_ptr<const api::Object> a1;
  {
    auto a = mk("a", "1");
    a1 = a;
    auto ev = c.replace({a, mk("b", "1")});
    ASSERT_EQ(ev.size(), 2u);
  }
  EXPECT_TRUE(a1.expired()) << "the cache kept the object";
  EXPECT_TRUE(c.replace({mk("a", "1"), mk("b", "1")}).empty());  // versions still known
  auto mod = c.apply(EventType::kModified, mk("a", "2"));
  ASSERT_TRUE(mod);
  EXPECT_EQ(mod->type, EventType::kModified);
  EXPECT_EQ(mod->old, nullptr);
  EXPECT_FALSE(c.apply(EventType::kModified, mk("a", "2")));
  auto ev = c.replace({mk("a", "2")});  // b went while no watch ran
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::kDeleted);
  ASSERT_TRUE(api::holds<api::EndpointSlice>(*ev[0].object));
  const auto& stub = api::get<api::EndpointSlice>(*ev[0].object);
  EXPECT_EQ(stub.metadata.namespace_, "default");
  EXPECT_EQ(stub.metadata.name, "b");
  EXPECT_EQ(stub.metadata.resource_version, "1");
  EXPECT_TRUE(stub.endpoints.empty());
  ev = c.replace({});  // emptied: still knows the kind
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(api::holds<api::EndpointSlice>(*ev[0].object));
  EXPECT_EQ(api::meta_of(*ev[0].object).name, "a");
  EXPECT_EQ(c.size(), 0u);
}

TEST(RateLimiterTest, BurstThenQps) {
  RateLimiter l(50, 3);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(l.acquire());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(15));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(l.acquire());  // 5 more at 50/s: ~100 ms
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(90));
  EXPECT_LT(took, std::chrono::seconds(2));
}

// The source: events reach the sink on the io_context, synced once all informers listed.
struct Sink : EventSink {
  std::vector<Event> events;
  std::vector<std::string> synced;
  void on_event(const Event& e) override { events.push_back(e); }
  void on_synced(const std::string& s) override { synced.push_back(s); }
};

TEST_F(InformerTest, SourceSyncsOnceEveryInformerListedAndRemovingAWatchDeletesItsObjects) {
  server.set_objects({list_item(service("a", 2))}, 2);
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);  // run_for waits for posts instead of returning
  Sink sink;
  ApiServerSource src(io, *client, {{api::Kind::kService}, {api::Kind::kService, "default"}}, "apiserver", options);
  ASSERT_TRUE(src.start(sink).ok());
  for (int i = 0; i < 500 && sink.synced.empty(); ++i) io.run_for(std::chrono::milliseconds(10));
  ASSERT_EQ(sink.synced, std::vector<std::string>{"apiserver"});
  EXPECT_EQ(sink.events.size(), 2u);  // one per informer
  WatchSpec extra{api::Kind::kService, "other"};
  src.add_watch(extra);
  for (int i = 0; i < 500 && sink.events.size() < 3; ++i) io.run_for(std::chrono::milliseconds(10));
  ASSERT_EQ(sink.events.size(), 3u);
  src.remove_watch(extra.describe());
  ASSERT_EQ(sink.events.size(), 4u);
  EXPECT_EQ(sink.events[3].type, EventType::kDeleted);
  src.stop();
}

TEST_F(InformerTest, AWatchAddedBeforeTheSourceSyncedDoesNotCountTowardIt) {
  // The first list fails twice: the initial informer lists late, after the extra one.
  server.set_objects({list_item(service("a", 2))}, 2);
  server.fail_next(3, "/api/v1/services?");
  options.backoff_initial = std::chrono::milliseconds(100);
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  Sink sink;
  ApiServerSource src(io, *client, {{api::Kind::kService}}, "apiserver", options);
  ASSERT_TRUE(src.start(sink).ok());
  src.add_watch({api::Kind::kService, "other"});  // lists at once
  for (int i = 0; i < 500 && server.count("namespaces/other") == 0; ++i) io.run_for(std::chrono::milliseconds(10));
  // The extra informer listed while the initial one was still failing: no on_synced yet.
  for (int i = 0; i < 500 && sink.events.empty(); ++i) io.run_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(sink.synced.empty());
  // Synced only once the initial informer listed, whatever the extra one did.
  for (int i = 0; i < 500 && sink.synced.empty(); ++i) io.run_for(std::chrono::milliseconds(10));
  ASSERT_EQ(sink.synced.size(), 1u);
  EXPECT_GE(server.count("/api/v1/services?limit="), 1);
  bool initial_listed = false;
  for (const auto& e : sink.events) initial_listed |= api::meta_of(*e.object).name == "a";
  EXPECT_TRUE(initial_listed) << "on_synced came before the initial informer's objects";
  src.stop();
}

}  // namespace
}  // namespace knode::kube
