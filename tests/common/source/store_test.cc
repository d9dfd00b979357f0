// The object store's synced logic, including sources that wait for other sources (a
// controller deriving objects from them).
#include "knode/store.h"

#include <gtest/gtest.h>

namespace knode {
namespace {

TEST(ObjectStoreSynced, AllSyncedWaitsForEveryExpectedSource) {
  ObjectStore store;
  store.expect_source("a");
  store.expect_source("b");
  int runs = 0;
  store.on_all_synced([&] { ++runs; });
  store.on_synced("a");
  EXPECT_EQ(runs, 0);
  store.on_synced("b");
  EXPECT_EQ(runs, 1);
  store.on_synced("b");  // twice, or unknown: ignored
  store.on_synced("c");
  EXPECT_EQ(runs, 1);
  store.on_all_synced([&] { ++runs; });
  EXPECT_EQ(runs, 2) << "at once when synced";
}

TEST(ObjectStoreSynced, SourcesSyncedWaitsForTheNamedOnesOnly) {
  ObjectStore store;
  store.expect_source("manifests");
  store.expect_source("derived");
  int runs = 0;
  store.on_sources_synced({"manifests"}, [&] { ++runs; });
  EXPECT_EQ(store.pending_sources(), (std::set<std::string>{"derived", "manifests"}));
  store.on_synced("derived");
  EXPECT_EQ(runs, 0);
  store.on_synced("manifests");
  EXPECT_EQ(runs, 1);
  store.on_synced("manifests");
  EXPECT_EQ(runs, 1) << "once";
  store.on_sources_synced({"manifests", "never-expected"}, [&] { ++runs; });
  EXPECT_EQ(runs, 2) << "at once when none of them is pending";
}

TEST(ObjectStoreSynced, ADerivedSourceSyncingFromItsWaiterSyncsTheStoreOnce) {
  ObjectStore store;
  store.expect_source("manifests");
  store.expect_source("derived");
  std::vector<std::string> order;
  store.on_all_synced([&] { order.push_back("all"); });
  store.on_sources_synced({"manifests"}, [&] {
    order.push_back("derived computes");
    store.on_synced("derived");
  });
  store.on_synced("manifests");
  EXPECT_EQ(order, (std::vector<std::string>{"derived computes", "all"}));
  EXPECT_TRUE(store.synced());
}


// A pass-through kind reaches its handlers and is not kept: the store frees what the
// handlers did not keep, and get/list know none of it; other kinds are kept as before.
TEST(ObjectStorePassThrough, HandlersSeeTheObjectsTheStoreDoesNotKeep) {
  ObjectStore store;
  store.pass_through(api::Kind::kEndpointSlice);
  int seen = 0;
  store.subscribe(api::Kind::kEndpointSlice, [&](const Event& e) {
    ++seen;
    EXPECT_EQ(api::meta_of(*e.object).name, "s");
  });
  std::weak_ptr<const api::Object> weak;
  {
    api::EndpointSlice es;
    es.metadata.namespace_ = "default";
    es.metadata.name = "s";
    auto o = std::make_shared<const api::Object>(es);
    weak = o;
    store.on_event(Event{EventType::kAdded, o, nullptr});
  }
  EXPECT_EQ(seen, 1);
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(store.get(api::ObjectKey{api::Kind::kEndpointSlice, "default/s"}), nullptr);
  EXPECT_TRUE(store.list(api::Kind::kEndpointSlice).empty());
  api::Service svc;
  svc.metadata.namespace_ = "default";
  svc.metadata.name = "s";
  store.on_event(Event{EventType::kAdded, std::make_shared<const api::Object>(svc), nullptr});
  EXPECT_NE(store.get(api::ObjectKey{api::Kind::kService, "default/s"}), nullptr);
}
}  // namespace
}  // namespace knode
