// One worker per pod: it drives the runtime toward the pod's spec. Syncs run off the event
// loop, one at a time per pod (a strand), triggered by a spec change, a relist that saw the
// pod's containers change, a probe result, or a back-off ending; each reads what the
// runtime holds, plans (sync_plan.h), executes, and reports the pod's status back to the
// loop. Terminating kills the containers within the grace period, stops and removes the
// sandbox (which frees the pod's IP) and tears the volumes down.
#pragma once

#include "events.h"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "knode/api/pod.h"
#include "knode/clock.h"
#include "knode/runtime.h"
#include "pod/backoff.h"
#include "pod/env.h"
#include "pod/status.h"
#include "pod_runtime.h"
#include "runtime_config.h"
#include "sync_plan.h"

namespace knode::kubelet {

// What a pod's containers need from the node besides the runtime: their environment's
// sources, images, volumes and lifecycle hooks. Thread-safe: syncs of several pods call
// them at once.
class PodEnvironment {
 public:
  virtual ~PodEnvironment() = default;
  // A consistent view of ConfigMaps, Secrets and Services for one sync.
  virtual std::shared_ptr<const EnvLookup> lookup() = 0;
  // Makes the container's image present: the image to run, or the waiting reason.
  struct Image {
    std::string ref;
    std::optional<StartFailure> waiting;
    std::vector<KubeletEvent> events;  // Pulling, Pulled, Failed, BackOff, ...
  };
  virtual Image ensure_image(const api::Pod& pod, const api::Container& c, const EnvLookup& lookup,
                             const runtime::PodSandboxConfig& sandbox) = 0;
  // Prepares the pod's volumes (idempotent); an error blocks the pod's containers.
  [[nodiscard]] virtual Status setup_volumes(const api::Pod& pod, const EnvLookup& lookup) = 0;
  virtual Result<std::vector<runtime::Mount>> mounts(const api::Pod& pod, const api::Container& c,
                                                     const std::vector<runtime::KeyValue>& env) = 0;
  [[nodiscard]] virtual Status teardown_volumes(const std::string& pod_uid) = 0;
  // The kubelet-managed /etc/hosts of the pod (pod/etc_hosts.h), written for its IPs:
  // the mount that puts it in a container, or none where the node does not manage it.
  virtual Result<std::optional<runtime::Mount>> etc_hosts(const api::Pod& /*pod*/,
                                                          const std::vector<std::string>& /*pod_ips*/) {
    return std::optional<runtime::Mount>();
  }
  // The empty file mounted at the container's terminationMessagePath for this attempt, or
  // none (no path).
  virtual Result<std::optional<runtime::Mount>> termination_log(const api::Pod& /*pod*/, const api::Container& /*c*/,
                                                                uint32_t /*attempt*/) {
    return std::optional<runtime::Mount>();
  }
  // What an exited container left as its termination message: the file above (at most
  // 4096 bytes), or with terminationMessagePolicy FallbackToLogsOnError and a failure, the
  // end of its log (80 lines, 2048 bytes), as upstream.
  virtual std::string termination_message(const api::Container& /*c*/, const runtime::ContainerStatus& /*status*/) {
    return "";
  }
  // The container's log directory, made before the runtime creates the container.
  [[nodiscard]] virtual Status prepare_logs(const api::Pod& pod, const api::Container& c) = 0;
  // The container runs, writing its log at `log_path` (the sandbox's log directory joined
  // with the container's log path; empty when either is): its /var/log/containers link can
  // be made.
  virtual void container_started(const api::Pod& pod, const api::Container& c, const std::string& container_id,
                                 const std::string& log_path) = 0;
  // Runs a postStart or preStop handler within `budget`.
  [[nodiscard]] virtual Status run_hook(const api::LifecycleHandler& h, const api::Pod& pod,
                                        const api::Container& c, const std::string& container_id,
                                        const std::string& pod_ip, std::chrono::seconds budget) = 0;
};

struct PodWorkerDeps {
  runtime::ContainerRuntime& runtime;
  PodEnvironment& env;
  const NodeSettings& node;
  const Clock& clock;
  boost::asio::io_context& loop;        // where results are posted
  boost::asio::any_io_executor pool;    // where syncs run (a strand is made on it)
  EventRecorder* events = nullptr;      // the pods' events (a cluster), or none
};

// What the probes say about the pod's containers, by runtime container ID.
struct ProbeView {
  std::set<std::string> failed;  // liveness or startup failed: restart
  std::set<std::string> started;
  std::set<std::string> ready;
};

class PodWorker : public std::enable_shared_from_this<PodWorker> {
 public:
  using StatusFn = std::function<void(const api::Pod& pod, const api::PodStatus& status)>;

  PodWorker(PodWorkerDeps deps, std::shared_ptr<const api::Pod> pod, StatusFn on_status);

  // From the loop. A new spec, or the same: syncs.
  void update(std::shared_ptr<const api::Pod> pod);
  void sync();
  // From the relist: the pod's objects as the runtime lists them now. Syncs unless the
  // worker's own last read found exactly these (its own start of a container, seen again
  // by the relist a moment later, needs no second sync).
  void sync_unless_seen(PodSnapshot listed);
  void set_probes(ProbeView view);
  // Kills and removes everything of the pod; `done` runs on the loop once nothing is left.
  // `final_pod`, when given, is the pod as deleted (its deletionGracePeriodSeconds).
  void terminate(std::function<void()> done, std::shared_ptr<const api::Pod> final_pod = nullptr);
  // After terminate(): the pod's terminal status as its containers were killed, if read.
  std::optional<api::PodStatus> final_status() const { return final_status_; }

  const std::string& uid() const { return uid_; }

  // From the loop, as knode stops: cancels the worker's timers, so that no handler queued
  // on the loop keeps the worker (and its strand, on the kubelet's pool) alive after the
  // pool is gone. Syncs in progress finish; their retries are not armed again.
  void stop();

 private:
  void sync_now();  // on the strand
  Status terminate_now();
  Result<PodRuntimeState> execute(const SyncPlan& plan, const PodRuntimeState& st);
  Status start_container(const ContainerStart& s, const std::string& sandbox_id,
                         const runtime::PodSandboxConfig& sandbox, const std::string& pod_ip,
                         const EnvLookup& lookup);
  void kill_container(const std::string& id, const api::Container* spec, const std::string& pod_ip,
                      int64_t grace_seconds);
  void kill_pod(const PodRuntimeState& st);
  std::optional<std::chrono::seconds> backoff_for(const api::Container& c, const runtime::ContainerStatus& last);
  void report(const PodRuntimeState& st);
  api::PodStatus status_of(const PodRuntimeState& st) const;
  void event(const std::string& container, const std::string& type, const std::string& reason,
             const std::string& message);
  void schedule_retry(std::chrono::milliseconds after);
  // spec.activeDeadlineSeconds, counted from the status' startTime: whether it has passed;
  // when it has not yet, a sync is scheduled for the moment it does.
  bool past_active_deadline();
  // The runtime ID of the pod's container `name` when the status reported last has it
  // running.
  std::optional<std::string> running_container_id(const std::string& name) const;
  std::optional<api::PodStatus> final_status_;

  PodWorkerDeps d_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  std::string uid_;
  StatusFn on_status_;
  // Owned by the strand.
  std::shared_ptr<const api::Pod> pod_;
  bool terminating_ = false;
  ProbeView probes_;
  Backoff restarts_;
  StatusCache statuses_;  // what the runtime said of the pod's objects, per state
  // What the worker last planned from, or found after its own actions when they did only
  // what it meant (see read_state); none when it must look again at the next relist.
  std::optional<PodSnapshot> seen_;
  // Reads the pod from the runtime (through statuses_). Without `before`, what it found is
  // what the next plan is made from, so it is seen. After a sync acted on `before`, it is
  // seen only when nothing moved but what the sync started (a new sandbox ready, new
  // containers created or running): a container that already exited (a quick init
  // container, a crash, a failed postStart hook) has not been planned for, and the relist
  // that lists it must sync the pod.
  Result<PodRuntimeState> read_state(const PodRuntimeState* before = nullptr);
  std::map<std::string, StartFailure> start_failures_;  // by container name, until it starts
  // Runtime ID -> the resources an in-place resize gave it (else its creation annotation).
  std::map<std::string, api::ResourceRequirements> resized_;
  std::optional<api::ResourceRequirements> applied_resources(const ContainerRecord& r) const;
  api::PodStatus last_status_;
  bool finished_ = false;  // nothing of the pod will run again
  bool deadline_exceeded_ = false;  // ... because it outlived activeDeadlineSeconds
  // Updates posted and not yet taken: only the newest of a burst syncs.
  std::atomic<int> pending_updates_{0};
  // On the loop.
  boost::asio::steady_timer retry_;
  boost::asio::steady_timer deadline_;
  bool stopped_ = false;  // on the loop: stop() was called
};

}  // namespace knode::kubelet
