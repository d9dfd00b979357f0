// The proxier against a fake mode: real store events, the event loop running the syncs
// too (one thread, no waiting), a fake clock.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <mutex>
#include <random>

#include "fakes/fake_clock.h"
#include "knode/api/codec.h"
#include "proxier.h"

using namespace knode;

namespace {

struct Call {
  proxy::ProxyState state;
  std::set<std::string> changed;
  bool full;
};

class FakeBackend : public ProxyBackend {
 public:
  std::string mode() const override { return "fake"; }
  Status sync(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full,
              SyncStats* stats) override {
    std::lock_guard lock(mu);
    calls.push_back(Call{state, changed, full});
    if (during_sync) {
      auto fn = std::move(during_sync);
      during_sync = nullptr;
      fn();  // on the loop's thread here: as if the loop handled events meanwhile
      // Whatever arrived meanwhile, the state the sync reads has not changed under it.
      EXPECT_EQ(state, calls.back().state);
    }
    stats->rules_by_table["nat"] = state.services.size();
    if (fail_next) {
      fail_next = false;
      return Status::Error("injected failure");
    }
    return Status::Ok();
  }
  Status cleanup() override { return Status::Ok(); }
  bool kernel_as_left() override {
    std::lock_guard lock(mu);
    ++asked;
    return as_left;
  }
  size_t count() {
    std::lock_guard lock(mu);
    return calls.size();
  }
  Call call(size_t i) {
    std::lock_guard lock(mu);
    return calls.at(i);
  }
  std::mutex mu;
  std::vector<Call> calls;
  std::function<void()> during_sync;  // runs once, inside the next sync
  bool fail_next = false;
  bool as_left = false;
  int asked = 0;
};

api::ObjectPtr object(const std::string& yaml) {
  auto r = api::decode_manifest(yaml, "t.yaml");
  EXPECT_TRUE(r.ok() && r->objects.size() == 1) << (r.ok() && !r->rejected.empty() ? r->rejected[0].error : r.error());
  return r->objects.at(0);
}

const char* kSvc = "apiVersion: v1\nkind: Service\nmetadata: {name: kubia}\nspec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}\n";
std::string slice(int n) {
  std::string s = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: kubia-1, labels: {kubernetes.io/service-name: kubia}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n";
  for (int i = 0; i < n; ++i) s += "- {addresses: [10.244.0." + std::to_string(11 + i) + "]}\n";
  return s;
}

const char* kOtherSvc = "apiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec: {clusterIP: 10.96.0.11, ports: [{port: 53, protocol: UDP}]}\n";
std::string other_slice(int n) {
  std::string s = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: other-1, labels: {kubernetes.io/service-name: other}}\naddressType: IPv4\nports: [{port: 5353, protocol: UDP}]\nendpoints:\n";
  for (int i = 0; i < n; ++i) s += "- {addresses: [10.244.1." + std::to_string(11 + i) + "]}\n";
  return s;
}

class ProxierTest : public ::testing::Test {
 protected:
  explicit ProxierTest(std::chrono::milliseconds sync_period = std::chrono::hours(1))
      : health(clock, std::chrono::seconds(60)) {
    auto b = std::make_unique<FakeBackend>();
    backend = b.get();
    proxy::ProxierOptions opts;
    opts.min_sync_period = std::chrono::milliseconds(0);
    opts.sync_period = sync_period;
    opts.sync_executor = io.get_executor();
    store.expect_source("test");
    proxier = std::make_unique<proxy::Proxier>(io, store, std::move(b), opts, registry, health, clock);
    proxier->start();
  }
  ~ProxierTest() override { proxier->stop(); }

  // Runs every handler that is ready, syncs included, until none is left.
  void settle() {
    io.restart();
    while (io.poll() > 0) io.restart();
  }
  // Settles, then says whether exactly n syncs have run.
  bool run_until_calls(size_t n) {
    settle();
    return backend->count() == n && proxier->syncs_ok() + proxier->syncs_failed() == n;
  }

  knode::testing::FakeClock clock;
  boost::asio::io_context io;
  ObjectStore store;
  metrics::Registry registry;
  proxy::ProxyHealth health;
  FakeBackend* backend;
  std::unique_ptr<proxy::Proxier> proxier;
};

// The same with a 1 s sync period, for the periodic resync.
class PeriodicProxierTest : public ProxierTest {
 protected:
  PeriodicProxierTest() : ProxierTest(std::chrono::seconds(1)) {}
  // Moves the clock past the period and lets the loop's timer fire.
  void next_period() {
    clock.advance(std::chrono::seconds(1));
    io.restart();
    io.run_for(std::chrono::milliseconds(1500));
    settle();
  }
};

}  // namespace

TEST_F(PeriodicProxierTest, APeriodicResyncIsPartialWhenTheModeSeesTheKernelAsItLeftIt) {
  store.on_event(Event{EventType::kAdded, object(kSvc), nullptr});
  store.on_event(Event{EventType::kAdded, object(slice(2)), nullptr});
  store.on_synced("test");
  ASSERT_TRUE(run_until_calls(1));
  EXPECT_EQ(backend->asked, 0);  // the first sync is full without asking
  backend->as_left = true;
  next_period();
  ASSERT_EQ(backend->count(), 2u);
  EXPECT_FALSE(backend->call(1).full);
  EXPECT_TRUE(backend->call(1).changed.empty());
  EXPECT_EQ(backend->asked, 1);
  backend->as_left = false;  // someone changed the kernel: the next one is full
  next_period();
  ASSERT_EQ(backend->count(), 3u);
  EXPECT_TRUE(backend->call(2).full);
  EXPECT_EQ(backend->asked, 2);
}

TEST_F(ProxierTest, FirstSyncWaitsForSourcesThenIsFull) {
  store.on_event(Event{EventType::kAdded, object(kSvc), nullptr});
  store.on_event(Event{EventType::kAdded, object(slice(3)), nullptr});
  settle();
  EXPECT_EQ(backend->count(), 0u);  // not synced yet: no half-programmed start
  store.on_synced("test");
  ASSERT_TRUE(run_until_calls(1));
  auto c = backend->call(0);
  EXPECT_TRUE(c.full);
  ASSERT_EQ(c.state.services.size(), 1u);
  EXPECT_EQ(c.state.services[0].cluster_endpoints.size(), 3u);
  EXPECT_TRUE(proxier->has_synced());
}

TEST_F(ProxierTest, EndpointChangeIsPartialAndNamesTheServicePort) {
  store.on_event(Event{EventType::kAdded, object(kSvc), nullptr});
  store.on_event(Event{EventType::kAdded, object(slice(3)), nullptr});
  store.on_synced("test");
  ASSERT_TRUE(run_until_calls(1));
  store.on_event(Event{EventType::kModified, object(slice(2)), object(slice(3))});
  ASSERT_TRUE(run_until_calls(2));
  auto c = backend->call(1);
  EXPECT_FALSE(c.full);
  EXPECT_EQ(c.changed, std::set<std::string>{"default/kubia:http"});
  EXPECT_EQ(c.state.services[0].cluster_endpoints.size(), 2u);
  // An identical update changes nothing and syncs nothing.
  store.on_event(Event{EventType::kModified, object(slice(2)), object(slice(2))});
  settle();
  EXPECT_EQ(backend->count(), 2u);
}

// With the store passing Services and slices through (no kubelet beside the proxy), the
// proxier keeps what it needs of them and not the objects; a slice's deletion that names
// only the slice (an informer that keeps no objects) and a slice moving to another
// service are still followed.
TEST_F(ProxierTest, KeepsNoObjectAndFollowsSlicesByName) {
  store.pass_through(api::Kind::kService);
  store.pass_through(api::Kind::kEndpointSlice);
  std::weak_ptr<const api::Object> svc_seen, slice_seen;
  {
    auto svc = object(kSvc);
    auto es = object(slice(3));
    svc_seen = svc;
    slice_seen = es;
    store.on_event(Event{EventType::kAdded, svc, nullptr});
    store.on_event(Event{EventType::kAdded, es, nullptr});
    store.on_event(Event{EventType::kAdded, object(kOtherSvc), nullptr});
  }
  EXPECT_TRUE(svc_seen.expired());
  EXPECT_TRUE(slice_seen.expired());
  store.on_synced("test");
  ASSERT_TRUE(run_until_calls(1));
  ASSERT_EQ(backend->call(0).state.services.size(), 2u);
  EXPECT_EQ(backend->call(0).state.services[0].cluster_endpoints.size(), 3u);

  // Relabelled to "other" (which has no UDP 53 port in this slice: no endpoints there).
  std::string moved = slice(2);
  moved.replace(moved.find("service-name: kubia"), 19, "service-name: other");
  store.on_event(Event{EventType::kModified, object(moved), nullptr});
  ASSERT_TRUE(run_until_calls(2));
  auto c = backend->call(1);
  EXPECT_EQ(c.changed, std::set<std::string>{"default/kubia:http"});
  EXPECT_TRUE(c.state.services[0].cluster_endpoints.empty());

  store.on_event(Event{EventType::kModified, object(slice(2)), nullptr});  // back to kubia
  ASSERT_TRUE(run_until_calls(3));
  EXPECT_EQ(backend->call(2).state.services[0].cluster_endpoints.size(), 2u);

  // Deleted, as a relist finds it: a stub with the slice's namespace and name only.
  store.on_event(Event{EventType::kDeleted,
                       std::make_shared<const api::Object>(api::stub_object(
                           api::ObjectKey{api::Kind::kEndpointSlice, "default/kubia-1"}, "7")),
                       nullptr});
  ASSERT_TRUE(run_until_calls(4));
  c = backend->call(3);
  EXPECT_EQ(c.changed, std::set<std::string>{"default/kubia:http"});
  EXPECT_TRUE(c.state.services[0].cluster_endpoints.empty());
  EXPECT_FALSE(c.state.services[0].has_any_endpoint);
}

TEST_F(ProxierTest, ABurstOfEventsIsOneSyncThatSeesAllOfIt) {
  store.on_synced("test");
  ASSERT_TRUE(run_until_calls(1));
  // A manifest file with a Service and its slice arrives as events delivered in one go:
  // the sync after them sees both, never the Service alone (a REJECT rule for a moment).
  store.on_event(Event{EventType::kAdded, object(kSvc), nullptr});
  store.on_event(Event{EventType::kAdded, object(slice(3)), nullptr});
  ASSERT_TRUE(run_until_calls(2));
  auto c = backend->call(1);
  ASSERT_EQ(c.state.services.size(), 1u);
  EXPECT_EQ(c.state.services[0].cluster_endpoints.size(), 3u);
}

TEST_F(ProxierTest, FailedSyncRetriesAsFullWithTheSameChanges) {
  store.on_event(Event{EventType::kAdded, object(kSvc), nullptr});
  store.on_synced("test");
  ASSERT_TRUE(run_until_calls(1));
  backend->fail_next = true;
  store.on_event(Event{EventType::kAdded, object(slice(1)), nullptr});
  ASSERT_TRUE(run_until_calls(2));  // the failed one; its retry waits 1 s, not at once
  clock.advance(std::chrono::seconds(1));
  io.restart();
  io.run_for(std::chrono::milliseconds(1500));  // the retry's timer sleeps that second
  ASSERT_TRUE(run_until_calls(3));
  auto retry = backend->call(2);
  EXPECT_TRUE(retry.full);
  EXPECT_EQ(retry.changed, std::set<std::string>{"default/kubia:http"});
  EXPECT_EQ(proxier->syncs_failed(), 1u);
  EXPECT_NE(registry.render().find("kubeproxy_sync_proxy_rules_failures_total 1"), std::string::npos);
}

// The sync reads the model in place, not a copy: changes that arrive while a sync runs
// are compared with what the sync holds, wait beside it, and reach the next sync; what
// did not change stays whole.
TEST_F(ProxierTest, ChangesDuringASyncAreSeenAndTheModelStaysWhole) {
  store.on_event(Event{EventType::kAdded, object(kSvc), nullptr});
  store.on_event(Event{EventType::kAdded, object(slice(3)), nullptr});
  store.on_event(Event{EventType::kAdded, object(kOtherSvc), nullptr});
  store.on_event(Event{EventType::kAdded, object(other_slice(2)), nullptr});
  store.on_synced("test");
  ASSERT_TRUE(run_until_calls(1));
  ASSERT_EQ(backend->call(0).state.services.size(), 2u);
  // While the next sync (for other) runs: kubia loses an endpoint, and an update to
  // other that is what the sync already holds arrives.
  backend->during_sync = [&] {
    store.on_event(Event{EventType::kModified, object(slice(1)), object(slice(3))});
    store.on_event(Event{EventType::kModified, object(other_slice(1)), object(other_slice(1))});
  };
  store.on_event(Event{EventType::kModified, object(other_slice(1)), object(other_slice(2))});
  ASSERT_TRUE(run_until_calls(3));
  EXPECT_EQ(backend->call(1).changed, std::set<std::string>{"default/other"});
  auto c = backend->call(2);
  EXPECT_FALSE(c.full);
  EXPECT_EQ(c.changed, std::set<std::string>{"default/kubia:http"});  // other: no change
  ASSERT_EQ(c.state.services.size(), 2u);
  EXPECT_EQ(c.state.services[0].name, "default/kubia:http");
  EXPECT_EQ(c.state.services[0].cluster_endpoints.size(), 1u);
  EXPECT_EQ(c.state.services[1].name, "default/other");  // as the model held it
  ASSERT_EQ(c.state.services[1].cluster_endpoints.size(), 1u);
  EXPECT_EQ(c.state.services[1].cluster_endpoints[0].port, 5353);
  // A service deleted during a sync is gone from the next one, and named in it.
  backend->during_sync = [&] { store.on_event(Event{EventType::kDeleted, object(kOtherSvc), nullptr}); };
  store.on_event(Event{EventType::kModified, object(slice(2)), object(slice(1))});
  ASSERT_TRUE(run_until_calls(5));
  auto d = backend->call(4);
  EXPECT_EQ(d.changed, std::set<std::string>{"default/other"});
  ASSERT_EQ(d.state.services.size(), 1u);
  EXPECT_EQ(d.state.services[0].cluster_endpoints.size(), 2u);
  // Identical updates after the sync compare with the model: no sync.
  store.on_event(Event{EventType::kModified, object(slice(2)), object(slice(2))});
  settle();
  EXPECT_EQ(backend->count(), 5u);
  EXPECT_EQ(proxier->service_port_count(), 1u);
}

TEST_F(ProxierTest, DeletedServiceIsRemovedFromTheModel) {
  store.on_event(Event{EventType::kAdded, object(kSvc), nullptr});
  store.on_event(Event{EventType::kAdded, object(slice(1)), nullptr});
  store.on_synced("test");
  ASSERT_TRUE(run_until_calls(1));
  store.on_event(Event{EventType::kDeleted, object(kSvc), nullptr});
  ASSERT_TRUE(run_until_calls(2));
  auto c = backend->call(1);
  EXPECT_TRUE(c.state.services.empty());
  EXPECT_EQ(c.changed, std::set<std::string>{"default/kubia:http"});
}

TEST_F(ProxierTest, LegacyEndpointsUsedWhenNoSlices) {
  store.on_event(Event{EventType::kAdded, object(kSvc), nullptr});
  store.on_event(Event{EventType::kAdded,
                       object("apiVersion: v1\nkind: Endpoints\nmetadata: {name: kubia}\nsubsets: [{addresses: [{ip: 10.244.0.50}], ports: [{name: http, port: 8080}]}]\n"),
                       nullptr});
  store.on_synced("test");
  ASSERT_TRUE(run_until_calls(1));
  auto c = backend->call(0);
  ASSERT_EQ(c.state.services[0].cluster_endpoints.size(), 1u);
  EXPECT_EQ(c.state.services[0].cluster_endpoints[0].str(), "10.244.0.50:8080");
}

namespace {

// Services with 1-3 ports and a slice of 0-4 endpoints each, as YAML.
std::string rand_service(int i, int ports) {
  std::string s = "apiVersion: v1\nkind: Service\nmetadata: {name: svc-" + std::to_string(i) +
                  "}\nspec: {clusterIP: 10.96.1." + std::to_string(10 + i) + ", ports: [";
  for (int p = 0; p < ports; ++p) {
    s += std::string(p ? ", " : "") + "{name: p" + std::to_string(p) + ", port: " + std::to_string(80 + p) +
         ", targetPort: " + std::to_string(8080 + p) + "}";
  }
  return s + "]}\n";
}
std::string rand_slice(int i, int endpoints) {
  std::string s = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: svc-" + std::to_string(i) +
                  "-1, labels: {kubernetes.io/service-name: svc-" + std::to_string(i) +
                  "}}\naddressType: IPv4\nports: [{name: p0, port: 8080}, {name: p1, port: 8081}, {name: p2, port: 8082}]\nendpoints:\n";
  for (int e = 0; e < endpoints; ++e) s += "- {addresses: [10.244." + std::to_string(i) + "." + std::to_string(11 + e) + "]}\n";
  return s;
}

// The state a proxier that starts on these objects hands its mode first (a full sync,
// the model built from nothing).
proxy::ProxyState fresh_state(const std::map<std::string, std::string>& objects) {
  knode::testing::FakeClock clock;
  boost::asio::io_context io;
  ObjectStore store;
  metrics::Registry registry;
  proxy::ProxyHealth health(clock, std::chrono::seconds(60));
  auto b = std::make_unique<FakeBackend>();
  FakeBackend* backend = b.get();
  proxy::ProxierOptions opts;
  opts.min_sync_period = std::chrono::milliseconds(0);
  opts.sync_executor = io.get_executor();
  store.expect_source("test");
  proxy::Proxier p(io, store, std::move(b), opts, registry, health, clock);
  p.start();
  for (const auto& [k, yaml] : objects) store.on_event(Event{EventType::kAdded, object(yaml), nullptr});
  store.on_synced("test");
  io.restart();
  while (io.poll() > 0) io.restart();
  p.stop();
  EXPECT_EQ(backend->count(), 1u);
  return backend->count() ? backend->call(0).state : proxy::ProxyState{};
}

}  // namespace

// The model is kept across syncs and brought up to date in place when no service gains
// or loses ports, rebuilt in order when one does. Whatever the mix (endpoint changes,
// ports added and removed, services and slices coming and going, some of it while a
// sync runs), each sync's state is what a proxier starting on the same objects would
// build, and it names every service port that differs from the state before.
TEST_F(ProxierTest, TheKeptModelIsAlwaysWhatAFreshStartWouldBuild) {
  std::map<std::string, std::string> objects;  // "kind/name" -> YAML in the store
  auto put = [&](const std::string& key, const std::string& yaml) {
    auto it = objects.find(key);
    store.on_event(Event{it == objects.end() ? EventType::kAdded : EventType::kModified, object(yaml),
                         it == objects.end() ? nullptr : object(it->second)});
    objects[key] = yaml;
  };
  auto drop = [&](const std::string& key) {
    auto it = objects.find(key);
    if (it == objects.end()) return;
    store.on_event(Event{EventType::kDeleted, object(it->second), nullptr});
    objects.erase(it);
  };
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto random_event = [&] {
    const int i = pick(6);
    const std::string svc = "svc/" + std::to_string(i), es = "slice/" + std::to_string(i);
    switch (pick(10)) {
      case 0: drop(svc); break;
      case 1: drop(es); break;
      case 2: case 3: put(svc, rand_service(i, 1 + pick(3))); break;
      default: put(es, rand_slice(i, pick(5))); break;  // mostly endpoint changes
    }
  };
  for (int i = 0; i < 6; ++i) {
    put("svc/" + std::to_string(i), rand_service(i, 1 + i % 3));
    put("slice/" + std::to_string(i), rand_slice(i, 1 + i % 4));
  }
  store.on_synced("test");
  ASSERT_TRUE(run_until_calls(1));
  size_t syncs = 1;
  for (int round = 0; round < 300; ++round) {
    const int events = 1 + pick(3);
    for (int e = 0; e < events; ++e) random_event();
    if (pick(3) == 0) {
      const int during = 1 + pick(3);
      backend->during_sync = [&, during] {
        for (int e = 0; e < during; ++e) random_event();
      };
    }
    settle();
    backend->during_sync = nullptr;  // (when nothing changed, no sync ran it)
    // Settled with nothing pending: the last sync saw what is in the store now.
    ASSERT_EQ(backend->call(backend->count() - 1).state, fresh_state(objects)) << "round " << round;
    // Every service port that differs between one sync's state and the next is named.
    for (; syncs < backend->count(); ++syncs) {
      const auto before = backend->call(syncs - 1), after = backend->call(syncs);
      EXPECT_FALSE(after.full);
      std::map<std::string, const proxy::ServicePort*> was, now;
      for (const auto& sp : before.state.services) was[sp.name] = &sp;
      for (const auto& sp : after.state.services) now[sp.name] = &sp;
      for (const auto& [name, sp] : now) {
        auto w = was.find(name);
        if (w == was.end() || !(*w->second == *sp)) {
          EXPECT_TRUE(after.changed.count(name)) << name << " round " << round;
        }
      }
      for (const auto& [name, sp] : was) {
        if (!now.count(name)) {
          EXPECT_TRUE(after.changed.count(name)) << name << " round " << round;
        }
      }
    }
  }
  EXPECT_GT(syncs, 200u);  // most rounds changed something
}
