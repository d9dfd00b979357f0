// The seam between the outside world and the controllers: a Source turns a manifest
// directory, a manifest URL or the API server into typed object events.
#pragma once

#include <memory>
#include <string>

#include "knode/api/object.h"
#include "knode/status.h"

namespace knode {

enum class EventType { kAdded, kModified, kDeleted };
const char* to_string(EventType t);

struct Event {
  EventType type;
  api::ObjectPtr object;  // the new state; for kDeleted, the last known state
  api::ObjectPtr old;     // the previous state for kModified, else null
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_event(const Event& event) = 0;
  // Sent once, after the source delivered its initial state.
  virtual void on_synced(const std::string& source) = 0;
};

class Source {
 public:
  virtual ~Source() = default;
  virtual std::string name() const = 0;
  // Delivers the initial state, then on_synced, then changes as they happen. Runs on
  // the caller's io_context; never blocks it for long.
  virtual Status start(EventSink& sink) = 0;
  virtual void stop() = 0;
};

using SourcePtr = std::unique_ptr<Source>;

}  // namespace knode
