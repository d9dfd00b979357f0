// The probes of every container of this node: one ProbeWorker (pod/probe_state.h) per
// container and probe type, ticking on the event loop at its period, each attempt run off
// the loop by the Prober (prober/), and what they conclude handed to the pod's worker
// (a failed liveness or startup probe restarts the container; readiness feeds Ready and
// so the Service's endpoints).
#pragma once

#include "events.h"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "knode/api/pod.h"
#include "knode/clock.h"
#include "knode/runtime.h"
#include "pod/probe_state.h"
#include "pod_worker.h"
#include "prober/prober.h"

namespace knode::kubelet {

class ProbeManager {
 public:
  using ViewFn = std::function<void(const std::string& pod_uid, ProbeView view)>;

  ProbeManager(boost::asio::io_context& io, boost::asio::any_io_executor pool, runtime::ContainerRuntime& rt,
               const Clock& clock, ViewFn on_view);
  ~ProbeManager();

  // A pod's latest status (on the loop): workers start for its containers' probes, follow
  // their containers, and stop with the pod.
  void update(const api::Pod& pod);
  void remove(const std::string& pod_uid);
  // Probe failures become Unhealthy events there (before start).
  void set_events(EventRecorder* events) { events_ = events; }
  void stop();

 private:
  struct Key {
    std::string uid, container;
    ProbeType type;
    auto operator<=>(const Key&) const = default;
  };
  struct Entry {
    std::unique_ptr<ProbeWorker> worker;
    api::Probe probe;
    ProbeTarget target;         // the container as the probe sees it
    ProbePod pod;
    prober::ProbeTarget where;  // what the attempt reaches
    std::unique_ptr<boost::asio::steady_timer> timer;
    bool running = false;
  };

  void arm(const Key& key);
  void tick(const Key& key);
  void publish(const std::string& uid);

  boost::asio::io_context& io_;
  boost::asio::any_io_executor pool_;
  runtime::ContainerRuntime& rt_;
  const Clock& clock_;
  ViewFn on_view_;
  std::shared_ptr<prober::Prober> prober_;
  std::map<Key, Entry> entries_;
  std::map<std::string, ProbeView> views_;  // last published, by pod UID
  bool stopped_ = false;
  EventRecorder* events_ = nullptr;
};

}  // namespace knode::kubelet
