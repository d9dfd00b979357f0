// List-then-watch of one kind of object on the API server, as client-go's reflector and
// informer do it, and the Source that feeds the object store from a set of them.
//
// An informer lists in pages (limit/continue), then watches from the list's
// resourceVersion with bookmarks. A watch that ends (the server's timeout, a dropped
// connection) is resumed from the last resourceVersion seen, after a back-off when it
// failed. When the server answers 410 Gone (the resourceVersion is too old), it lists
// again and emits only what really changed since: objects whose resourceVersion moved
// are modified, the missing are deleted, the unchanged are not touched, so a proxy's
// rules never flap through a relist.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "knode/api/object.h"
#include "knode/kube/client.h"
#include "knode/source.h"
#include "knode/worker.h"

namespace boost::asio {
class io_context;
}

namespace knode::kube {

// Where a kind lives in the API.
struct KindInfo {
  const char* prefix;       // "/api/v1", "/apis/discovery.k8s.io/v1"
  const char* resource;     // "pods"
  const char* kind;         // "Pod"
  const char* api_version;  // "v1", "discovery.k8s.io/v1"
  bool namespaced;
};
const KindInfo& kind_info(api::Kind kind);
// "/api/v1/namespaces/default/pods" ("/api/v1/pods" for every namespace).
std::string collection_path(api::Kind kind, const std::string& ns = "");
// "/api/v1/namespaces/default/pods/kubia-1", "/api/v1/nodes/node-1".
std::string object_path(api::Kind kind, const std::string& ns, const std::string& name);

// What one informer watches.
struct WatchSpec {
  api::Kind kind;
  std::string namespace_;       // empty: every namespace
  std::string label_selector;   // "!service.kubernetes.io/headless"
  std::string field_selector;   // "spec.nodeName=node-1"
  // False for a consumer that keeps its own projection of the objects (the proxy): the
  // informer then keeps each object's resourceVersion only, not the object (ReflectorCache).
  bool keep_objects = true;
  std::string describe() const;
};

// The informer's view of the server, without I/O: it turns lists and watch events into
// the store's events.
class ReflectorCache {
 public:
  // keep_objects false: the cache holds each object's resourceVersion only, so the objects
  // live only as long as the sink keeps them. Its modifications then carry no old object,
  // and a deletion found by a relist carries a stub (api::stub_object: kind, namespace,
  // name and last resourceVersion).
  explicit ReflectorCache(bool keep_objects = true) : keep_objects_(keep_objects) {}
  // The events that take the cache to `items` (a full list).
  std::vector<Event> replace(std::vector<api::ObjectPtr> items);
  // The same for a list read in pages, so that no more than a page of objects is held at
  // once: begin_list, then list_page for each page (its additions and modifications), then
  // end_list (the deletions: what no page of this list had).
  void begin_list() { ++list_; }
  std::vector<Event> list_page(std::vector<api::ObjectPtr> items);
  std::vector<Event> end_list();
  // One watch event; nullopt when it changes nothing (a modification to a resourceVersion
  // already seen, a deletion of an unknown object).
  std::optional<Event> apply(EventType type, api::ObjectPtr object);
  size_t size() const { return objects_.size(); }

 private:
  struct Entry {
    std::string resource_version;
    api::ObjectPtr object;  // null unless keep_objects_
    uint64_t list = 0;      // the last list that had it
  };
  Entry entry(const api::ObjectPtr& o) const;
  // What a deletion carries: the kept object, or a stub.
  api::ObjectPtr gone(const std::string& key, Entry& e) const;

  bool keep_objects_;
  std::optional<api::Kind> kind_;  // of the objects seen
  uint64_t list_ = 0;
  std::map<std::string, Entry> objects_;  // by namespace/name
};

// What the informer reads in one line of a watch response, without I/O. Whatever the
// bytes, this returns (the API server's JSON is outside input).
struct WatchLine {
  enum class Type {
    kEvent,      // ADDED, MODIFIED or DELETED with an object of the watched kind
    kBookmark,   // resource_version (empty when the bookmark has none)
    kError,      // the server ended the watch: code (410: expired), message
    kBadObject,  // an event whose object does not decode: message; resource_version
    kMalformed,  // not a watch event: message
  };
  Type type = Type::kMalformed;
  EventType event = EventType::kAdded;
  api::ObjectPtr object;
  std::string resource_version;
  int code = 0;
  std::string message;
};
WatchLine parse_watch_line(std::string_view line, api::Kind kind);
// The same for one frame of a protobuf watch (a meta.v1.WatchEvent).
WatchLine parse_watch_frame(std::string_view frame, api::Kind kind);

// One page of a list: the objects that decode as `kind`, why the others did not, the
// list's resourceVersion and continue token. An error only when the page is not a JSON
// object.
struct ListPage {
  std::string resource_version;
  std::string continue_token;
  std::vector<api::ObjectPtr> items;
  std::vector<std::string> bad;
};
Result<ListPage> parse_list_page(std::string_view body, api::Kind kind);
// The same for a protobuf body (the "k8s\0" envelope around a PodList, ServiceList, ...);
// an error when it is not the kind's list.
Result<ListPage> parse_list_page_protobuf(std::string_view body, api::Kind kind);

struct InformerOptions {
  std::chrono::seconds min_watch_timeout{300};  // each watch asks for [min, 2*min)
  std::chrono::milliseconds backoff_initial{800};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(30)};
  int page_size = 500;
  // Ask for application/vnd.kubernetes.protobuf where knode has the schema (every kind it
  // watches), as client-go does (--kube-api-content-type); JSON otherwise.
  bool protobuf = true;
};

struct InformerStats {
  std::atomic<uint64_t> lists{0}, relists{0}, watches{0}, gone{0}, events{0}, errors{0}, bad_objects{0};
};

class Informer {
 public:
  // deliver runs on the informer's thread with each batch of events; synced is true once,
  // with the first list's batch.
  using Deliver = std::function<void(std::vector<Event> events, bool synced)>;

  Informer(RestClient& client, WatchSpec spec, Deliver deliver, InformerOptions options = {});
  ~Informer();
  void start();
  void stop();  // ends a call in progress and joins the thread

  const WatchSpec& spec() const { return spec_; }
  const InformerStats& stats() const { return stats_; }
  std::string resource_version() const;

 private:
  enum class WatchEnd { kExpired, kGone, kFailed, kStopped };
  void run();
  Status list();
  WatchEnd watch();
  std::string query(bool watch) const;
  std::string_view accept() const;

  RestClient& client_;
  const WatchSpec spec_;
  Deliver deliver_;
  const InformerOptions options_;
  ReflectorCache cache_;
  InformerStats stats_;
  mutable std::mutex mu_;  // rv_
  bool synced_ = false;
  std::string rv_;
  Cancel cancel_;
  Worker worker_;
};

// The API server as a Source: one informer per WatchSpec; events reach the sink on the
// io_context; on_synced once every informer listed. Watches may be added and removed
// later (the kubelet's ConfigMaps and Secrets follow its pods): removing one deletes its
// objects from the sink.
class ApiServerSource : public Source {
 public:
  ApiServerSource(boost::asio::io_context& io, RestClient& client, std::vector<WatchSpec> specs,
                  std::string name = "apiserver", InformerOptions options = {});
  ~ApiServerSource() override;
  std::string name() const override { return name_; }
  Status start(EventSink& sink) override;
  void stop() override;

  // After start, on the io_context's thread.
  void add_watch(const WatchSpec& spec);
  void remove_watch(const std::string& described);
  std::vector<const Informer*> informers() const;

 private:
  void launch(const WatchSpec& spec, bool initial);
  boost::asio::io_context& io_;
  RestClient& client_;
  std::vector<WatchSpec> specs_;
  const std::string name_;
  const InformerOptions options_;
  EventSink* sink_ = nullptr;
  std::map<std::string, std::unique_ptr<Informer>> informers_;  // by describe()
  std::map<std::string, std::map<api::ObjectKey, api::ObjectPtr>> owned_;  // io thread
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  size_t initial_pending_ = 0;
  bool synced_sent_ = false;
};

}  // namespace knode::kube
