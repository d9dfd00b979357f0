// One probe of one container, as upstream's prober worker runs it (pkg/kubelet/prober),
// as pure logic over injected time: when to probe, what the published result is, and
// when to stop. The caller runs the probe itself and feeds the outcome back.
//
//   auto step = worker.tick(now, pod, target);
//   if (step == ProbeWorker::Step::kProbe) worker.record(run_probe(worker.settings().timeout));
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "knode/api/pod.h"
#include "knode/clock.h"
#include "knode/status.h"

namespace knode::kubelet {

enum class ProbeType { kLiveness, kReadiness, kStartup };
enum class ProbeResult { kUnknown, kSuccess, kFailure };
const char* to_string(ProbeType t);    // "Liveness", "Readiness", "Startup"
const char* to_string(ProbeResult r);  // "Unknown", "Success", "Failure"

// A probe's timing with upstream's defaults for unset (zero) fields: timeout 1 s, period
// 10 s, success threshold 1, failure threshold 3.
struct ProbeSettings {
  std::chrono::seconds initial_delay{0}, timeout{1}, period{10};
  int32_t success_threshold = 1, failure_threshold = 3;
};
// Fails as API validation does: negative values, and a liveness or startup probe whose
// success threshold is not 1.
Result<ProbeSettings> probe_settings(ProbeType type, const api::Probe& probe);

// The container as the probe sees it in the latest pod status.
struct ProbeTarget {
  std::string container_id;  // empty: not created yet
  bool running = false;
  bool terminated = false;
  Clock::SteadyTime started_at{};  // when running
  bool started = false;            // the container's `started` (its startup probe passed)
};
// The pod as the probe sees it.
struct ProbePod {
  bool terminal = false;  // phase Succeeded or Failed
  bool deleting = false;  // deletionTimestamp set
  std::string restart_policy = "Always";
};

class ProbeWorker {
 public:
  enum class Step {
    kIdle,   // nothing to do on this tick
    kProbe,  // run the probe now and record() its outcome
    kStop,   // the worker is done (pod finished, container will not restart, pod deleted)
  };

  // Ticks fall every period from `first_tick` (the worker's start, plus any jitter).
  ProbeWorker(ProbeType type, ProbeSettings settings, Clock::SteadyTime first_tick);

  // Whether a tick is due at `now` (the period has come round, or trigger() was called).
  bool due(Clock::SteadyTime now) const;
  Clock::SteadyTime next_tick() const { return next_tick_; }
  // Asks for a tick at once (upstream's manual trigger: readiness right after start).
  void trigger() { triggered_ = true; }

  // One pass of the worker loop. Does nothing before the tick is due.
  Step tick(Clock::SteadyTime now, const ProbePod& pod, const ProbeTarget& target);
  // The outcome of the probe tick() asked for. An error from the prober itself (rather
  // than a failing probe) is not recorded.
  void record(ProbeResult result);

  // The published result, as the kubelet's results cache holds it for this container.
  ProbeResult result() const { return result_; }
  // Liveness or startup failed: the container must be restarted. Probing waits for the
  // next container.
  bool wants_restart() const;
  bool on_hold() const { return on_hold_; }
  // The container the published result belongs to.
  const std::string& container_id() const { return container_id_; }
  ProbeType type() const { return type_; }
  const ProbeSettings& settings() const { return settings_; }

 private:
  ProbeResult initial_result() const;
  void consume_tick(Clock::SteadyTime now);
  void adopt(const ProbeTarget& target);

  ProbeType type_;
  ProbeSettings settings_;
  Clock::SteadyTime first_tick_, next_tick_;
  bool triggered_ = false;
  std::string container_id_;
  ProbeResult result_;
  ProbeResult last_result_ = ProbeResult::kUnknown;
  int result_run_ = 0;
  bool on_hold_ = false;
};

// What the probes make of a container's `started` and `ready` (the prober manager's
// UpdatePodStatus) for the container `container_id`. A container without such a probe
// passes it once it runs (nullptr: no probe of that type); one whose worker has not seen
// this container yet does not.
struct ProbedState {
  bool started = false;
  bool ready = false;
};
ProbedState probed_state(const std::string& container_id, bool running, const ProbeWorker* startup,
                         const ProbeWorker* readiness);

}  // namespace knode::kubelet
