#include "standalone/endpoint_slices.h"

#include <algorithm>
#include <memory>

#include "knode/log.h"

namespace knode::kubelet {
namespace {

std::string key_of(const std::string& ns, const std::string& name) { return ns + "/" + name; }

std::pair<std::string, std::string> split_key(const std::string& key) {
  auto slash = key.find('/');
  return {key.substr(0, slash), key.substr(slash + 1)};
}

}  // namespace

EndpointSliceController::EndpointSliceController(ObjectStore& store,
                                                 EndpointSliceControllerOptions options)
    : store_(store), options_(std::move(options)) {}

void EndpointSliceController::start() {
  // What the store holds already, then what changes.
  for (const auto& o : store_.list(api::Kind::kService))
    on_service(Event{EventType::kAdded, o, nullptr});
  for (const auto& o : store_.list(api::Kind::kPod)) on_pod(Event{EventType::kAdded, o, nullptr});
  for (const auto& o : store_.list(api::Kind::kNode)) on_node(Event{EventType::kAdded, o, nullptr});
  store_.subscribe(api::Kind::kService, [this](const Event& e) { on_service(e); });
  store_.subscribe(api::Kind::kPod, [this](const Event& e) { on_pod(e); });
  store_.subscribe(api::Kind::kNode, [this](const Event& e) { on_node(e); });
  store_.subscribe(api::Kind::kEndpointSlice, [this](const Event& e) { on_slice(e); });
  std::set<std::string> inputs = store_.pending_sources();
  inputs.erase(kSourceName);
  store_.expect_source(kSourceName);
  store_.on_sources_synced(std::move(inputs), [this] { initial_sync(); });
}

void EndpointSliceController::initial_sync() {
  computing_ = true;
  size_t services = 0;
  for (const auto& [ns, by_name] : services_) {
    for (const auto& [name, svc] : by_name) {
      reconcile(key_of(ns, name));
      ++services;
    }
  }
  synced_ = true;
  KLOG(INFO, "endpoint slices computed for the services with a selector")
      .kv("services", services)
      .kv("slices", slice_count());
  store_.on_synced(kSourceName);
}

void EndpointSliceController::on_service(const Event& e) {
  const auto& m = api::meta_of(*e.object);
  if (e.type == EventType::kDeleted) {
    services_[m.namespace_].erase(m.name);
  } else {
    services_[m.namespace_][m.name] = e.object;
  }
  if (computing_) reconcile(key_of(m.namespace_, m.name));
}

void EndpointSliceController::on_pod(const Event& e) {
  const auto& pod = api::get<api::Pod>(*e.object);
  const std::string& ns = pod.metadata.namespace_;
  if (e.type == EventType::kDeleted) {
    pods_[ns].erase(pod.metadata.name);
  } else {
    pods_[ns][pod.metadata.name] = e.object;
  }
  if (!computing_) return;
  // The services whose slices hold the pod now, and those its labels select.
  std::set<std::string> affected;
  if (auto it = pod_services_.find(key_of(ns, pod.metadata.name)); it != pod_services_.end()) {
    affected = it->second;
  }
  if (auto it = services_.find(ns); it != services_.end()) {
    for (const auto& [name, obj] : it->second) {
      const auto& svc = api::get<api::Service>(*obj);
      if (selector_matches(svc.spec.selector, pod.metadata.labels))
        affected.insert(key_of(ns, name));
    }
  }
  for (const auto& key : affected) reconcile(key);
}

void EndpointSliceController::on_node(const Event& e) {
  const auto& node = api::get<api::Node>(*e.object);
  std::optional<std::string> zone;
  if (auto it = node.metadata.labels.find(kZoneLabel);
      e.type != EventType::kDeleted && it != node.metadata.labels.end() && !it->second.empty()) {
    zone = it->second;
  }
  if (zone_of(node.metadata.name) == zone) return;
  if (zone) {
    zones_[node.metadata.name] = *zone;
  } else {
    zones_.erase(node.metadata.name);
  }
  if (!computing_) return;
  // Zones change rarely; every service is recomputed and only real changes are emitted.
  for (const auto& [ns, by_name] : services_) {
    for (const auto& [name, svc] : by_name) reconcile(key_of(ns, name));
  }
}

void EndpointSliceController::on_slice(const Event& e) {
  const auto& m = api::meta_of(*e.object);
  std::string slice_key = key_of(m.namespace_, m.name);
  auto owner = slice_owner_.find(slice_key);
  if (owner == slice_owner_.end()) return;  // not one of ours
  std::string service_key = owner->second;
  auto& mine = owned_[service_key];
  auto held = mine.find(m.name);
  if (e.type != EventType::kDeleted && held != mine.end() && e.object == held->second) {
    return;  // our own event
  }
  // Another source wrote or deleted a name this controller holds: the name is theirs now.
  KLOG(WARNING,
       "an EndpointSlice from another source took the name of a computed one; "
       "the computed slice moves to a new name")
      .kv("slice", slice_key)
      .kv("service", service_key)
      .kv("event", to_string(e.type));
  if (held != mine.end()) mine.erase(held);
  if (mine.empty()) owned_.erase(service_key);
  slice_owner_.erase(owner);
  if (computing_) reconcile(service_key);
}

std::optional<std::string> EndpointSliceController::zone_of(const std::string& node) const {
  auto it = zones_.find(node);
  if (it == zones_.end()) return std::nullopt;
  return it->second;
}

void EndpointSliceController::reconcile(const std::string& service_key) {
  auto [ns, name] = split_key(service_key);
  const api::Service* svc = nullptr;
  if (auto by_ns = services_.find(ns); by_ns != services_.end()) {
    if (auto it = by_ns->second.find(name); it != by_ns->second.end()) {
      svc = &api::get<api::Service>(*it->second);
    }
  }
  if (svc == nullptr || !manages_endpoint_slices(*svc)) {
    // Deleted, or no longer selecting: its computed slices go; manifest slices stay.
    track_members(service_key, {});
    report(service_key, {});
    publish(service_key, ns, {});
    return;
  }
  std::vector<const api::Pod*> pods;
  if (auto it = pods_.find(ns); it != pods_.end()) {
    for (const auto& [n, obj] : it->second) pods.push_back(&api::get<api::Pod>(*obj));
  }
  SliceState state;
  if (auto it = owned_.find(service_key); it != owned_.end()) {
    for (const auto& [n, obj] : it->second)
      state.current.push_back(api::get<api::EndpointSlice>(*obj));
  }
  state.name_taken = [&, ns = ns](const std::string& slice_name) {
    std::string k = key_of(ns, slice_name);
    if (!store_.get(api::ObjectKey{api::Kind::kEndpointSlice, k})) return false;
    auto owner = slice_owner_.find(k);
    return owner == slice_owner_.end() || owner->second != service_key;
  };
  SliceContext ctx;
  ctx.node_name = options_.node_name;
  ctx.zone_of = [this](const std::string& node) { return zone_of(node); };
  ctx.max_endpoints_per_slice = options_.max_endpoints_per_slice;
  std::vector<std::string> problems;
  auto desired = desired_endpoint_slices(*svc, pods, ctx, state, &problems);

  std::set<std::string> members;
  for (const auto& es : desired) {
    for (const auto& ep : es.endpoints) {
      if (ep.target_ref) members.insert(key_of(ep.target_ref->namespace_, ep.target_ref->name));
    }
  }
  track_members(service_key, std::move(members));
  report(service_key, std::move(problems));
  publish(service_key, ns, std::move(desired));
}

void EndpointSliceController::publish(const std::string& service_key, const std::string& ns,
                                      std::vector<api::EndpointSlice> desired) {
  SliceMap& mine = owned_[service_key];
  std::set<std::string> keep;
  // Additions and changes before deletions, so a service never passes through "no slices".
  for (auto& es : desired) {
    std::string name = es.metadata.name;
    keep.insert(name);
    size_t endpoints = es.endpoints.size();
    auto obj = std::make_shared<const api::Object>(api::Object(std::move(es)));
    auto it = mine.find(name);
    Event event{EventType::kAdded, obj, nullptr};
    if (it == mine.end()) {
      mine.emplace(name, obj);
      slice_owner_[key_of(ns, name)] = service_key;
    } else if (*it->second == *obj) {
      continue;  // MODIFIED only on a real change
    } else {
      event = Event{EventType::kModified, obj, it->second};
      it->second = obj;
    }
    KLOGV(2, "endpoint slice")
        .kv("event", to_string(event.type))
        .kv("slice", key_of(ns, name))
        .kv("service", service_key)
        .kv("endpoints", endpoints);
    store_.on_event(event);
  }
  std::vector<api::ObjectPtr> gone;
  for (auto it = mine.begin(); it != mine.end();) {
    if (keep.contains(it->first)) {
      ++it;
      continue;
    }
    gone.push_back(it->second);
    slice_owner_.erase(key_of(ns, it->first));
    it = mine.erase(it);
  }
  if (mine.empty()) owned_.erase(service_key);
  for (const auto& obj : gone) {
    KLOGV(2, "endpoint slice")
        .kv("event", "DELETED")
        .kv("slice", key_of(ns, api::meta_of(*obj).name))
        .kv("service", service_key);
    store_.on_event(Event{EventType::kDeleted, obj, nullptr});
  }
}

void EndpointSliceController::report(const std::string& service_key,
                                     std::vector<std::string> problems) {
  auto& before = problems_[service_key];
  // Each problem is logged once, when it appears, not on every recomputation.
  for (const auto& p : problems) {
    if (std::find(before.begin(), before.end(), p) == before.end()) {
      KLOG(WARNING, "endpoint slices: input left out").kv("service", service_key).kv("err", p);
    }
  }
  if (problems.empty()) {
    problems_.erase(service_key);
  } else {
    before = std::move(problems);
  }
}

void EndpointSliceController::track_members(const std::string& service_key,
                                            std::set<std::string> pods) {
  auto& before = service_pods_[service_key];
  for (const auto& p : before) {
    if (pods.contains(p)) continue;
    auto it = pod_services_.find(p);
    if (it == pod_services_.end()) continue;
    it->second.erase(service_key);
    if (it->second.empty()) pod_services_.erase(it);
  }
  for (const auto& p : pods) pod_services_[p].insert(service_key);
  if (pods.empty()) {
    service_pods_.erase(service_key);
  } else {
    before = std::move(pods);
  }
}

}  // namespace knode::kubelet
