#include "knode/store.h"

#include "knode/log.h"

namespace knode {

const char* to_string(EventType t) {
  switch (t) {
    case EventType::kAdded: return "ADDED";
    case EventType::kModified: return "MODIFIED";
    case EventType::kDeleted: return "DELETED";
  }
  return "?";
}

void ObjectStore::subscribe(api::Kind kind, Handler handler) {
  handlers_[kind].push_back(std::move(handler));
}

void ObjectStore::on_all_synced(std::function<void()> fn) {
  if (synced()) {
    fn();
    return;
  }
  synced_handlers_.push_back(std::move(fn));
}

void ObjectStore::on_sources_synced(std::set<std::string> sources, std::function<void()> fn) {
  std::erase_if(sources, [&](const std::string& s) { return !pending_sources_.contains(s); });
  if (sources.empty()) {
    fn();
    return;
  }
  source_waiters_.emplace_back(std::move(sources), std::move(fn));
}

api::ObjectPtr ObjectStore::get(const api::ObjectKey& key) const {
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

std::vector<api::ObjectPtr> ObjectStore::list(api::Kind kind) const {
  std::vector<api::ObjectPtr> out;
  auto it = objects_.lower_bound(api::ObjectKey{kind, ""});
  for (; it != objects_.end() && it->first.kind == kind; ++it) out.push_back(it->second);
  return out;
}

void ObjectStore::on_event(const Event& event) {
  auto key = api::key_of(*event.object);
  if (pass_through_.contains(key.kind)) {
    // (not kept)
  } else if (event.type == EventType::kDeleted) {
    objects_.erase(key);
  } else {
    objects_[key] = event.object;
  }
  KLOGV(3, "object event").kv("type", to_string(event.type)).kv("object", key.str());
  auto it = handlers_.find(key.kind);
  if (it == handlers_.end()) return;
  for (const auto& h : it->second) h(event);
}

void ObjectStore::on_synced(const std::string& source) {
  if (pending_sources_.erase(source) == 0) return;
  KLOGV(1, "source synced").kv("source", source).kv("objects", objects_.size());
  // Waiters whose sources have all synced run now; they are taken out first, since one
  // may sync a source of its own (and so re-enter here).
  std::vector<std::function<void()>> ready;
  std::erase_if(source_waiters_, [&](auto& w) {
    w.first.erase(source);
    if (!w.first.empty()) return false;
    ready.push_back(std::move(w.second));
    return true;
  });
  for (auto& fn : ready) fn();
  if (!pending_sources_.empty()) return;
  auto handlers = std::move(synced_handlers_);
  synced_handlers_.clear();
  for (auto& fn : handlers) fn();
}

}  // namespace knode
