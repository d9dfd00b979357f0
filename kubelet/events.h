// An event the kubelet would record on an object (upstream's record.EventRecorder), as
// data: the code that decides returns it, and the caller records or logs it once an
// event sink exists.
#pragma once

#include <ostream>
#include <string>

namespace knode::kubelet {

inline constexpr char kEventNormal[] = "Normal";
inline constexpr char kEventWarning[] = "Warning";

struct KubeletEvent {
  std::string type;    // kEventNormal or kEventWarning
  std::string reason;  // "Pulling", "FreeDiskSpaceFailed"
  std::string message;
  bool operator==(const KubeletEvent&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const KubeletEvent& e) {
    return os << e.type << " " << e.reason << ": " << e.message;
  }
};

// What an event is about: a pod, or one of its containers (field_path
// "spec.containers{name}", "spec.initContainers{name}").
struct EventTarget {
  std::string ns, name, uid, field_path;
};

// Where the kubelet's events go (the API server in a cluster). Thread-safe: pod workers
// and the probe manager record from their threads.
class EventRecorder {
 public:
  virtual ~EventRecorder() = default;
  virtual void record(const EventTarget& target, const KubeletEvent& event) = 0;
};

}  // namespace knode::kubelet
