// The service proxy controller: follows Services, EndpointSlices and Endpoints in the
// object store, keeps the neutral model per service, and drives the selected proxy mode
// through coalesced syncs on a worker thread (the event loop never blocks on the kernel).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "knode/clock.h"
#include "health.h"
#include "knode/metrics.h"
#include "knode/proxy/backend.h"
#include "knode/store.h"
#include "service_ports.h"
#include "sync_scheduler.h"

namespace knode::proxy {

struct ProxierOptions {
  std::chrono::milliseconds min_sync_period{1000};
  std::chrono::milliseconds sync_period{30000};
  NodeContext node;
  // Where kernel work runs. Default: a thread of the proxier's own, so the event loop
  // never blocks on the kernel. Tests pass the loop's executor to run everything on one
  // thread, deterministically.
  std::optional<boost::asio::any_io_executor> sync_executor;
};

class Proxier {
 public:
  Proxier(boost::asio::io_context& io, ObjectStore& store, ProxyBackendPtr mode,
          ProxierOptions options, metrics::Registry& metrics, ProxyHealth& health,
          const Clock& clock = RealClock::instance());
  ~Proxier();

  // Subscribes to the store; the first (full) sync runs once the store has synced.
  void start();
  // Waits for an in-flight sync and stops the worker. Kernel state is left in place.
  void stop();

  // Runs once, after the first successful sync (readiness).
  void on_first_sync(std::function<void()> fn) { first_sync_ = std::move(fn); }
  // Runs on the loop with each state handed to the mode for a sync.
  void on_state(std::function<void(const proxy::ProxyState&)> fn) { on_state_ = std::move(fn); }

  const std::string mode() const { return mode_->mode(); }
  // Counts of completed syncs, for tests and the status line.
  uint64_t syncs_ok() const { return syncs_ok_; }
  uint64_t syncs_failed() const { return syncs_failed_; }
  bool has_synced() const { return syncs_ok_ > 0; }
  size_t service_port_count() const;

 private:
  void on_service(const Event& e);
  void on_slice(const Event& e);
  void on_endpoints(const Event& e);
  void recompute(const std::string& service_key);
  void schedule();
  void schedule_after_burst();
  void start_sync(bool full, bool periodic = false);
  // The proxier's own split of a sync, for its log (milliseconds, wall time): bringing the
  // model up to date and the scan of it that follows (health check node ports), and the
  // mode's sync (without the malloc_trim after a full one).
  struct SyncTiming {
    double prepare_ms = 0, mode_ms = 0;
  };
  void finish_sync(Status status, SyncStats stats, SyncTiming timing, bool full, std::set<std::string> changed,
                   Clock::SteadyTime started, Clock::SteadyTime first_change);

  boost::asio::io_context& io_;
  ObjectStore& store_;
  ProxyBackendPtr mode_;
  ProxierOptions options_;
  ProxyHealth& health_;
  const Clock& clock_;
  SyncScheduler scheduler_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer follow_up_;  // a sync the mode asked for (SyncStats::resync_after)
  std::unique_ptr<boost::asio::thread_pool> worker_;  // when no sync_executor is given
  boost::asio::any_io_executor sync_executor_;
  bool stopped_ = false;
  bool burst_pending_ = false;  // a zero-delay schedule() is armed

  // Indexes by service "ns/name". What the proxy needs of each object, not the object
  // (the store passes Services and slices through when no kubelet runs beside the proxy).
  std::map<std::string, ServiceInfo> services_;
  std::map<std::string, std::map<std::string, SliceInfo>> slices_;  // then by slice name
  std::map<std::string, std::string> slice_service_;  // slice "ns/name" -> its service's
  std::map<std::string, std::vector<SliceInfo>> mirrored_;  // from legacy Endpoints
  // The model: every service's ports, in service order ("ns/name", as ports_ orders
  // them), in one ProxyState that each sync reads in place (megabytes at 10,000 service
  // ports: a sync neither copies nor moves them). While a sync runs the worker reads it,
  // and so may the loop; nobody writes it. A service that changes keeps its new ports in
  // its own vector until the next sync starts, which puts them in their place in the
  // model: O(change) when every changed service has as many ports as the model holds for
  // it (whatever else changed, a port's name included), a rebuild of the model in order
  // when one has another number (a service or port added or removed).
  struct Ports {
    std::vector<proxy::ServicePort> ports;  // its current ports when `fresh`
    int64_t at = -1;  // where its ports sit in model_->services; -1: not there
    size_t n = 0;     // how many sit there
    bool fresh = false;
  };
  // The service's current ports (its own vector, or its place in the model).
  std::pair<const proxy::ServicePort*, size_t> current(const Ports& p) const;
  // Puts the changed services' ports into the model, before a sync starts.
  void merge_changes();
  std::map<std::string, Ports> ports_;
  std::shared_ptr<proxy::ProxyState> model_;
  std::set<std::string> fresh_;  // services whose `ports` are newer than the model
  bool reshape_ = false;         // some of them have another number of ports
  std::set<std::string> pending_;  // service port names changed since the last good sync
  std::optional<Clock::SteadyTime> first_pending_;

  std::function<void()> first_sync_;
  uint64_t syncs_ok_ = 0;
  uint64_t syncs_failed_ = 0;

  metrics::Histogram& sync_duration_;
  metrics::Histogram& full_sync_duration_;
  metrics::Histogram& partial_sync_duration_;
  metrics::Histogram& programming_duration_;
  metrics::Gauge& last_sync_timestamp_;
  metrics::Gauge& last_queued_timestamp_;
  metrics::GaugeFamily& rules_total_;
  metrics::Counter& sync_failures_;
  metrics::Counter* nftables_sync_failures_ = nullptr;  // nftables mode's own, as upstream names it
  metrics::Gauge& service_ports_;
  std::function<void(const proxy::ProxyState&)> on_state_;
};

}  // namespace knode::proxy
