// The kubelet's events in the API (core/v1 Events in the pod's namespace), as upstream's
// recorder and correlator write them: a repeat of the same event (object, field, type,
// reason, message) within 10 minutes updates the first one's count and lastTimestamp
// instead of creating another; each object may cause 25 events at once, then one every
// 5 minutes (the spam filter); beyond that they are dropped. Written from one thread,
// queued and bounded, so a slow API server never blocks a pod worker.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "events.h"
#include "knode/api/values.h"
#include "knode/kube/client.h"
#include "knode/worker.h"

namespace knode::kubelet {

// The pure part: what to do with an event at `now`.
class EventCorrelator {
 public:
  struct Decision {
    enum Kind { kCreate, kUpdate, kDrop } kind = kDrop;
    std::string name;  // the Event object's name
    int32_t count = 1;
    api::Time first, last;
  };
  Decision observe(const EventTarget& t, const KubeletEvent& e, api::Time now);

 private:
  struct Seen {
    std::string name;
    int32_t count = 0;
    api::Time first, last;
  };
  struct Bucket {
    double tokens = 25;
    api::Time last;
  };
  std::map<std::string, Seen> seen_;      // by object|field|type|reason|message
  std::map<std::string, Bucket> spam_;    // by object uid
};

class EventWriter final : public EventRecorder {
 public:
  EventWriter(kube::RestClient& client, std::string node_name);
  ~EventWriter() override;
  void start();
  void stop();
  void record(const EventTarget& target, const KubeletEvent& event) override;
  uint64_t written() const { return written_; }

 private:
  struct Item {
    EventTarget target;
    KubeletEvent event;
    EventCorrelator::Decision d;
  };
  void run();
  Status write(const Item& item);

  kube::RestClient& client_;
  const std::string node_;
  kube::Cancel cancel_;
  Worker worker_;               // its mutex guards the two below
  EventCorrelator correlator_;
  std::deque<Item> queue_;
  std::atomic<uint64_t> written_{0};
};

}  // namespace knode::kubelet
