// The object store: the latest object per key, fanned out to controllers by kind.
// Single-threaded: lives on the daemon's io_context.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "knode/source.h"

namespace knode {

class ObjectStore : public EventSink {
 public:
  using Handler = std::function<void(const Event&)>;

  // Sources whose on_synced the store waits for before calling synced handlers.
  void expect_source(const std::string& name) { pending_sources_.insert(name); }
  void subscribe(api::Kind kind, Handler handler);
  // Objects of `kind` go to their handlers without being kept: get and list know none of
  // them. For kinds whose only consumers keep what they need of them (the proxy, without
  // the kubelet: Services and EndpointSlices), so the whole objects are freed once handled.
  void pass_through(api::Kind kind) { pass_through_.insert(kind); }
  // Runs once all expected sources have synced (at once if they already have).
  void on_all_synced(std::function<void()> fn);
  // Runs once every source in `sources` has synced (at once if none of them is pending).
  // For a controller that is itself a source, deriving objects from the others: it waits
  // for its inputs, while everyone else waits for it.
  void on_sources_synced(std::set<std::string> sources, std::function<void()> fn);
  const std::set<std::string>& pending_sources() const { return pending_sources_; }

  api::ObjectPtr get(const api::ObjectKey& key) const;
  std::vector<api::ObjectPtr> list(api::Kind kind) const;
  size_t size() const { return objects_.size(); }
  bool synced() const { return pending_sources_.empty(); }

  void on_event(const Event& event) override;
  void on_synced(const std::string& source) override;

 private:
  std::map<api::ObjectKey, api::ObjectPtr> objects_;
  std::map<api::Kind, std::vector<Handler>> handlers_;
  std::set<std::string> pending_sources_;
  std::set<api::Kind> pass_through_;
  std::vector<std::function<void()>> synced_handlers_;
  std::vector<std::pair<std::set<std::string>, std::function<void()>>> source_waiters_;
};

}  // namespace knode
