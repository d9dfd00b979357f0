// The object store: the latest object per key, fanned out to controllers by kind.
// Single-threaded: lives on the daemon's io_context.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "knode/source.h"

namespace knode {

class ObjectStore : public EventSink {
 public:
  using Handler = std::function<void(const Event&)>;

  // Sources whose on_synced the store waits for before calling synced handlers.
  void expect_source(const std::string& name) { pending_sources_.insert(name); }
  void subscribe(api::Kind kind, Handler handler);
  // Runs once all expected sources have synced (at once if they already have).
  void on_all_synced(std::function<void()> fn);

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
  std::vector<std::function<void()>> synced_handlers_;
};

}  // namespace knode
