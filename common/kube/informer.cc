#include "knode/kube/informer.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <random>

#include <nlohmann/json.hpp>

#include "knode/api/codec.h"
#include "knode/kube/protobuf.h"
#include "knode/log.h"

namespace knode::kube {

using nlohmann::json;

// ---- where kinds live ----

const KindInfo& kind_info(api::Kind kind) {
  static const KindInfo kInfo[api::kKindCount] = {
      {"/api/v1", "pods", "Pod", "v1", true},
      {"/api/v1", "services", "Service", "v1", true},
      {"/apis/discovery.k8s.io/v1", "endpointslices", "EndpointSlice", "discovery.k8s.io/v1", true},
      {"/api/v1", "endpoints", "Endpoints", "v1", true},
      {"/api/v1", "nodes", "Node", "v1", false},
      {"/api/v1", "configmaps", "ConfigMap", "v1", true},
      {"/api/v1", "secrets", "Secret", "v1", true},
      {"/api/v1", "namespaces", "Namespace", "v1", false},
  };
  return kInfo[static_cast<int>(kind)];
}

std::string collection_path(api::Kind kind, const std::string& ns) {
  const KindInfo& k = kind_info(kind);
  std::string p = k.prefix;
  if (k.namespaced && !ns.empty()) p += "/namespaces/" + ns;
  return p + "/" + k.resource;
}

std::string object_path(api::Kind kind, const std::string& ns, const std::string& name) {
  return collection_path(kind, ns) + "/" + name;
}

std::string WatchSpec::describe() const {
  std::string d = kind_info(kind).resource;
  if (!namespace_.empty()) d += " in " + namespace_;
  if (!field_selector.empty()) d += " fields " + field_selector;
  if (!label_selector.empty()) d += " labels " + label_selector;
  return d;
}

// ---- ReflectorCache ----

namespace {

std::string cache_key(const api::ObjectPtr& o) { return api::namespaced_name(api::meta_of(*o)); }

const std::string& rv_of(const api::ObjectPtr& o) { return api::meta_of(*o).resource_version; }

}  // namespace

ReflectorCache::Entry ReflectorCache::entry(const api::ObjectPtr& o) const {
  return Entry{rv_of(o), keep_objects_ ? o : nullptr};
}

// (an entry is there because an object of the kind was seen: kind_ is set)
api::ObjectPtr ReflectorCache::gone(const std::string& key, Entry& e) const {
  if (e.object) return std::move(e.object);
  return std::make_shared<const api::Object>(api::stub_object(api::ObjectKey{*kind_, key}, e.resource_version));
}

std::vector<Event> ReflectorCache::replace(std::vector<api::ObjectPtr> items) {
  begin_list();
  std::vector<Event> out = list_page(std::move(items));
  for (auto& e : end_list()) out.push_back(std::move(e));
  return out;
}

std::vector<Event> ReflectorCache::list_page(std::vector<api::ObjectPtr> items) {
  std::vector<Event> out;
  for (auto& o : items) {
    kind_ = api::kind_of(*o);
    std::string key = cache_key(o);
    auto it = objects_.find(key);
    if (it == objects_.end()) {
      Entry e = entry(o);
      e.list = list_;
      objects_.emplace(std::move(key), std::move(e));
      out.push_back(Event{EventType::kAdded, std::move(o), nullptr});
    } else if (it->second.resource_version != rv_of(o)) {
      api::ObjectPtr old = std::move(it->second.object);
      it->second = entry(o);
      it->second.list = list_;
      out.push_back(Event{EventType::kModified, std::move(o), std::move(old)});
    } else {
      it->second.list = list_;  // unchanged: the sink has it
    }
  }
  return out;
}

std::vector<Event> ReflectorCache::end_list() {
  std::vector<Event> out;
  for (auto it = objects_.begin(); it != objects_.end();) {
    if (it->second.list == list_) {
      ++it;
      continue;
    }
    out.push_back(Event{EventType::kDeleted, gone(it->first, it->second), nullptr});
    it = objects_.erase(it);
  }
  return out;
}

std::optional<Event> ReflectorCache::apply(EventType type, api::ObjectPtr object) {
  std::string key = cache_key(object);
  kind_ = api::kind_of(*object);
  auto it = objects_.find(key);
  if (type == EventType::kDeleted) {
    if (it == objects_.end()) return std::nullopt;
    objects_.erase(it);
    return Event{EventType::kDeleted, std::move(object), nullptr};
  }
  if (it == objects_.end()) {
    Entry e = entry(object);
    e.list = list_;
    objects_.emplace(std::move(key), std::move(e));
    return Event{EventType::kAdded, std::move(object), nullptr};
  }
  if (it->second.resource_version == rv_of(object)) return std::nullopt;
  api::ObjectPtr old = std::move(it->second.object);
  it->second = entry(object);
  it->second.list = list_;
  return Event{EventType::kModified, std::move(object), std::move(old)};
}

// ---- Informer ----

namespace {

// An object as the server sent it (list items lack kind and apiVersion).
api::ObjectPtr decode(json& j, api::Kind kind, const std::string& context, std::string* error) {
  if (!j.is_object()) {
    *error = "not an object";
    return nullptr;
  }
  const KindInfo& k = kind_info(kind);
  if (!j.contains("kind")) j["kind"] = k.kind;
  if (!j.contains("apiVersion")) j["apiVersion"] = k.api_version;
  auto o = api::decode_object(j, context);
  if (!o.ok()) {
    *error = o.status().message();
    return nullptr;
  }
  if (api::kind_of(*o) != kind) {
    *error = std::string("expected a ") + k.kind;
    return nullptr;
  }
  return std::make_shared<const api::Object>(std::move(*o));
}

// metadata.resourceVersion of a JSON object, if it is a string.
std::string resource_version_of(const json& obj) {
  if (!obj.is_object()) return "";
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  auto rv = m->find("resourceVersion");
  return rv != m->end() && rv->is_string() ? rv->get<std::string>() : "";
}

}  // namespace

namespace {

// A watch event whose object has been read into JSON, whichever the encoding.
WatchLine watch_event(const std::string& type, json& obj, api::Kind kind) {
  WatchLine w;
  if (type == "ERROR") {
    // A metav1.Status.
    w.type = WatchLine::Type::kError;
    if (obj.is_object()) {
      auto c = obj.find("code");
      if (c != obj.end() && c->is_number_integer()) {
        const auto v = c->get<int64_t>();
        w.code = v >= 0 && v < 1000 ? static_cast<int>(v) : 0;
      }
      auto m = obj.find("message");
      if (m != obj.end() && m->is_string()) w.message = m->get<std::string>();
    }
    return w;
  }
  if (type == "BOOKMARK") {
    w.type = WatchLine::Type::kBookmark;
    w.resource_version = resource_version_of(obj);
    return w;
  }
  if (type == "ADDED") {
    w.event = EventType::kAdded;
  } else if (type == "MODIFIED") {
    w.event = EventType::kModified;
  } else if (type == "DELETED") {
    w.event = EventType::kDeleted;
  } else {
    w.message = "unknown watch event type " + type;
    return w;
  }
  w.resource_version = resource_version_of(obj);
  w.object = decode(obj, kind, "apiserver", &w.message);
  w.type = w.object ? WatchLine::Type::kEvent : WatchLine::Type::kBadObject;
  return w;
}

}  // namespace

WatchLine parse_watch_line(std::string_view line, api::Kind kind) {
  json j = json::parse(line, nullptr, false);
  auto t = j.is_object() ? j.find("type") : j.end();
  auto o = j.is_object() ? j.find("object") : j.end();
  if (!j.is_object() || t == j.end() || !t->is_string() || o == j.end()) {
    WatchLine w;
    w.message = "a watch event that is not JSON";
    return w;
  }
  return watch_event(t->get_ref<const std::string&>(), *o, kind);
}

WatchLine parse_watch_frame(std::string_view frame, api::Kind kind) {
  auto ev = protobuf::read_watch_event(frame);
  if (!ev.ok()) {
    WatchLine w;
    w.message = ev.status().message();
    return w;
  }
  const bool error = ev->type == "ERROR";
  if (!error && !ev->kind.empty() && ev->kind != kind_info(kind).kind) {
    WatchLine w;
    w.type = WatchLine::Type::kBadObject;
    w.message = "expected a " + std::string(kind_info(kind).kind) + ", got a " + ev->kind;
    return w;
  }
  Result<json> obj = error ? protobuf::status_json(ev->object) : protobuf::object_json(ev->object, kind);
  if (!obj.ok()) {
    WatchLine w;
    w.type = error ? WatchLine::Type::kError : WatchLine::Type::kBadObject;
    w.message = obj.status().message();
    if (!error) w.resource_version = protobuf::resource_version(ev->object);
    return w;
  }
  return watch_event(ev->type, *obj, kind);
}

Result<ListPage> parse_list_page(std::string_view body, api::Kind kind) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return Status::Error("the answer is not JSON", EIO);
  ListPage page;
  page.resource_version = resource_version_of(j);
  if (auto m = j.find("metadata"); m != j.end() && m->is_object()) {
    if (auto c = m->find("continue"); c != m->end() && c->is_string()) page.continue_token = c->get<std::string>();
  }
  if (auto it = j.find("items"); it != j.end() && it->is_array()) {
    for (auto& item : *it) {
      std::string err;
      if (auto o = decode(item, kind, "apiserver", &err)) {
        page.items.push_back(std::move(o));
      } else {
        page.bad.push_back(std::move(err));
      }
    }
  }
  return page;
}

Result<ListPage> parse_list_page_protobuf(std::string_view body, api::Kind kind) {
  auto list = protobuf::read_list(body, kind);
  if (!list.ok()) return list.status();
  ListPage page;
  page.resource_version = std::move(list->resource_version);
  page.continue_token = std::move(list->continue_token);
  page.items.reserve(list->items.size());
  for (std::string_view item : list->items) {
    auto j = protobuf::object_json(item, kind);
    if (!j.ok()) {
      page.bad.push_back(j.status().message());
      continue;
    }
    std::string err;
    if (auto o = decode(*j, kind, "apiserver", &err)) {
      page.items.push_back(std::move(o));
    } else {
      page.bad.push_back(std::move(err));
    }
  }
  return page;
}

Informer::Informer(RestClient& client, WatchSpec spec, Deliver deliver, InformerOptions options)
    : client_(client), spec_(std::move(spec)), deliver_(std::move(deliver)), options_(options), cache_(spec_.keep_objects) {}

Informer::~Informer() { stop(); }

void Informer::start() {
  worker_.start([this] { run(); });
}

void Informer::stop() {
  worker_.stop([this] { cancel_.cancel(); });
}

std::string Informer::resource_version() const {
  std::lock_guard lock(mu_);
  return rv_;
}

std::string_view Informer::accept() const {
  // client-go's order: protobuf first, JSON for what the server cannot encode so.
  if (options_.protobuf && protobuf::supports(spec_.kind)) return "application/vnd.kubernetes.protobuf, application/json";
  return "application/json";
}

std::string Informer::query(bool watch) const {
  std::string q;
  auto add = [&q](const std::string& k, const std::string& v) {
    q += q.empty() ? "?" : "&";
    q += k + "=" + query_escape(v);
  };
  if (!spec_.label_selector.empty()) add("labelSelector", spec_.label_selector);
  if (!spec_.field_selector.empty()) add("fieldSelector", spec_.field_selector);
  if (watch) {
    add("watch", "true");
    add("allowWatchBookmarks", "true");
    std::lock_guard lock(mu_);
    add("resourceVersion", rv_);
  }
  return q;
}

// Each page's additions and modifications go to the sink as the page arrives, so the
// objects of a page can be freed before the next is read (the informer holds no more
// than a page of a 10,000-object list); the deletions, and the first list's synced, come
// with the last page.
Status Informer::list() {
  const std::string base = collection_path(spec_.kind, spec_.namespace_) + query(false);
  const std::string what = "list " + spec_.describe();
  std::string cont, rv;
  cache_.begin_list();
  for (;;) {
    std::string target = base + (base.find('?') == std::string::npos ? "?" : "&") +
                         "limit=" + std::to_string(options_.page_size);
    if (!cont.empty()) target += "&continue=" + query_escape(cont);
    auto r = client_.get(target, &cancel_, accept());
    if (!r.ok()) return r.status().Wrap(what);
    if (r->status == 410 && !cont.empty()) {
      // The continue token expired mid-list: start over, as a new list (what the pages so
      // far brought stays delivered; the new pages bring what changed since, and only what
      // the new list has counts as present).
      cont.clear();
      cache_.begin_list();
      continue;
    }
    if (!r->ok()) {
      return Status::Error(what + ": HTTP " + std::to_string(r->status) + ": " + status_message(*r), r->status);
    }
    auto page = protobuf::is_protobuf(r->content_type) ? parse_list_page_protobuf(r->body, spec_.kind)
                                                       : parse_list_page(r->body, spec_.kind);
    r->body.clear();
    if (!page.ok()) return page.status().Wrap(what);
    rv = std::move(page->resource_version);
    cont = std::move(page->continue_token);
    for (const auto& err : page->bad) {
      ++stats_.bad_objects;
      KLOG(WARNING, "ignoring an object the API server sent").kv("watch", spec_.describe()).kv("err", err);
    }
    auto page_events = cache_.list_page(std::move(page->items));
    const bool last = cont.empty();
    if (last) {
      for (auto& e : cache_.end_list()) page_events.push_back(std::move(e));
      std::lock_guard lock(mu_);
      rv_ = rv;
    }
    stats_.events += page_events.size();
    if (!last) {
      if (!page_events.empty()) deliver_(std::move(page_events), false);
      continue;
    }
    ++stats_.lists;
    const bool first = !synced_;
    synced_ = true;
    deliver_(std::move(page_events), first);
    return Status::Ok();
  }
}

Informer::WatchEnd Informer::watch() {
  static thread_local std::mt19937 rng(std::random_device{}());
  const auto min = options_.min_watch_timeout.count();
  const auto timeout = min + std::uniform_int_distribution<long>(0, std::max<long>(0, min - 1))(rng);
  const std::string target = collection_path(spec_.kind, spec_.namespace_) + query(true) +
                             "&timeoutSeconds=" + std::to_string(timeout);
  ++stats_.watches;
  WatchEnd end = WatchEnd::kExpired;
  std::string error;
  auto r = client_.stream(
      target, accept(),
      [&](std::string_view frame, bool proto) {
        WatchLine w = proto ? parse_watch_frame(frame, spec_.kind) : parse_watch_line(frame, spec_.kind);
        switch (w.type) {
          case WatchLine::Type::kMalformed:
            error = w.message;
            end = WatchEnd::kFailed;
            return false;
          case WatchLine::Type::kError:
            error = w.message;
            end = w.code == 410 ? WatchEnd::kGone : WatchEnd::kFailed;
            return false;
          case WatchLine::Type::kBookmark:
          case WatchLine::Type::kBadObject:
            if (w.type == WatchLine::Type::kBadObject) {
              ++stats_.bad_objects;
              KLOG(WARNING, "ignoring an object the API server sent").kv("watch", spec_.describe()).kv("err", w.message);
            }
            if (!w.resource_version.empty()) {
              std::lock_guard lock(mu_);
              rv_ = w.resource_version;
            }
            return true;
          case WatchLine::Type::kEvent:
            break;
        }
        {
          std::lock_guard lock(mu_);
          rv_ = api::meta_of(*w.object).resource_version;
        }
        const EventType et = w.event;
        auto o = std::move(w.object);
        if (auto ev = cache_.apply(et, std::move(o))) {
          ++stats_.events;
          std::vector<Event> batch;
          batch.push_back(std::move(*ev));
          deliver_(std::move(batch), false);
        }
        return true;
      },
      std::chrono::seconds(timeout + 30), &cancel_);
  if (!r.ok()) {
    if (r.status().error_number() == ECANCELED) return WatchEnd::kStopped;
    KLOG(WARNING, "watch failed").kv("watch", spec_.describe()).kv("err", r.status().message());
    return WatchEnd::kFailed;
  }
  if (r->status == 410) return WatchEnd::kGone;
  if (!r->ok()) {
    KLOG(WARNING, "watch refused").kv("watch", spec_.describe()).kv("status", r->status).kv("err", status_message(*r));
    return WatchEnd::kFailed;
  }
  if (end == WatchEnd::kFailed) {
    KLOG(WARNING, "watch ended with an error").kv("watch", spec_.describe()).kv("err", error);
  } else if (end == WatchEnd::kGone) {
    KLOG(INFO, "watch expired, listing again").kv("watch", spec_.describe()).kv("err", error);
  }
  return end;
}

void Informer::run() {
  bool need_list = true;
  auto backoff = options_.backoff_initial;
  auto fail = [&] {
    ++stats_.errors;
    bool more = worker_.wait(backoff);
    backoff = std::min(backoff * 2, options_.backoff_max);
    return more;
  };
  for (;;) {
    if (worker_.stopped()) return;
    if (need_list) {
      Status s = list();
      if (!s.ok()) {
        if (s.error_number() == ECANCELED) return;
        KLOG(WARNING, "list failed").kv("watch", spec_.describe()).kv("err", s.message()).kv("retryIn", std::to_string(backoff.count()) + "ms");
        if (!fail()) return;
        continue;
      }
      if (stats_.lists > 1) ++stats_.relists;
      need_list = false;
    }
    const auto started = std::chrono::steady_clock::now();
    const uint64_t events_before = stats_.events;
    WatchEnd end = watch();
    const bool lasted = std::chrono::steady_clock::now() - started > std::chrono::seconds(10) ||
                        stats_.events != events_before;
    if (lasted) backoff = options_.backoff_initial;
    switch (end) {
      case WatchEnd::kStopped:
        return;
      case WatchEnd::kGone:
        ++stats_.gone;
        need_list = true;
        break;
      case WatchEnd::kExpired:
        if (!lasted && !worker_.wait(std::chrono::milliseconds(100))) return;
        break;
      case WatchEnd::kFailed:
        if (!fail()) return;
        break;
    }
  }
}

// ---- ApiServerSource ----

ApiServerSource::ApiServerSource(boost::asio::io_context& io, RestClient& client, std::vector<WatchSpec> specs,
                                 std::string name, InformerOptions options)
    : io_(io), client_(client), specs_(std::move(specs)), name_(std::move(name)), options_(options) {}

ApiServerSource::~ApiServerSource() { stop(); }

Status ApiServerSource::start(EventSink& sink) {
  sink_ = &sink;
  initial_pending_ = specs_.size();
  if (specs_.empty()) {
    synced_sent_ = true;
    boost::asio::post(io_, [this, alive = alive_] {
      if (*alive) sink_->on_synced(name_);
    });
  }
  for (const auto& s : specs_) launch(s, true);
  return Status::Ok();
}

// An initial watch counts toward the source's on_synced; one added later (removable)
// does not, even when it is added before the initial ones have listed.
void ApiServerSource::launch(const WatchSpec& spec, bool initial) {
  const std::string id = spec.describe();
  const bool tracked = !initial;
  auto deliver = [this, id, tracked, alive = alive_](std::vector<Event> events, bool synced) {
    boost::asio::post(io_, [this, id, tracked, alive, events = std::move(events), synced] {
      if (!*alive || !informers_.count(id)) return;  // removed meanwhile
      for (const auto& ev : events) {
        if (tracked) {
          auto& owned = owned_[id];
          if (ev.type == EventType::kDeleted) {
            owned.erase(api::key_of(*ev.object));
          } else {
            owned[api::key_of(*ev.object)] = ev.object;
          }
        }
        sink_->on_event(ev);
      }
      if (synced && !tracked && !synced_sent_ && initial_pending_ > 0 && --initial_pending_ == 0) {
        synced_sent_ = true;
        sink_->on_synced(name_);
      }
    });
  };
  auto inf = std::make_unique<Informer>(client_, spec, std::move(deliver), options_);
  inf->start();
  informers_[id] = std::move(inf);
}

void ApiServerSource::add_watch(const WatchSpec& spec) {
  if (informers_.count(spec.describe())) return;
  launch(spec, false);
}

void ApiServerSource::remove_watch(const std::string& described) {
  auto it = informers_.find(described);
  if (it == informers_.end()) return;
  it->second->stop();
  informers_.erase(it);
  auto owned = owned_.find(described);
  if (owned == owned_.end()) return;
  auto objects = std::move(owned->second);
  owned_.erase(owned);
  for (auto& [key, o] : objects) sink_->on_event(Event{EventType::kDeleted, o, nullptr});
}

std::vector<const Informer*> ApiServerSource::informers() const {
  std::vector<const Informer*> out;
  for (const auto& [id, inf] : informers_) out.push_back(inf.get());
  return out;
}

void ApiServerSource::stop() {
  *alive_ = false;
  for (auto& [id, inf] : informers_) inf->stop();
  informers_.clear();
}

}  // namespace knode::kube
