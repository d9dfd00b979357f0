#include "pod/probe_state.h"

namespace knode::kubelet {
namespace {

const char* field_prefix(ProbeType t) {
  switch (t) {
    case ProbeType::kLiveness:
      return "livenessProbe.";
    case ProbeType::kReadiness:
      return "readinessProbe.";
    case ProbeType::kStartup:
      return "startupProbe.";
  }
  return "";
}

bool passes(const ProbeWorker* w, const std::string& container_id) {
  return w->container_id() == container_id && w->result() == ProbeResult::kSuccess;
}

}  // namespace

const char* to_string(ProbeType t) {
  switch (t) {
    case ProbeType::kLiveness:
      return "Liveness";
    case ProbeType::kReadiness:
      return "Readiness";
    case ProbeType::kStartup:
      return "Startup";
  }
  return "";
}

const char* to_string(ProbeResult r) {
  switch (r) {
    case ProbeResult::kUnknown:
      return "Unknown";
    case ProbeResult::kSuccess:
      return "Success";
    case ProbeResult::kFailure:
      return "Failure";
  }
  return "";
}

Result<ProbeSettings> probe_settings(ProbeType type, const api::Probe& p) {
  struct Field {
    const char* name;
    int32_t value;
  };
  const Field fields[] = {{"initialDelaySeconds", p.initial_delay_seconds},
                          {"timeoutSeconds", p.timeout_seconds},
                          {"periodSeconds", p.period_seconds},
                          {"successThreshold", p.success_threshold},
                          {"failureThreshold", p.failure_threshold}};
  for (const auto& f : fields) {
    if (f.value < 0) {
      return Status::Error(std::string(field_prefix(type)) + f.name + ": " +
                           std::to_string(f.value) + ": must be greater than or equal to 0");
    }
  }
  ProbeSettings s;
  s.initial_delay = std::chrono::seconds(p.initial_delay_seconds);
  if (p.timeout_seconds > 0) s.timeout = std::chrono::seconds(p.timeout_seconds);
  if (p.period_seconds > 0) s.period = std::chrono::seconds(p.period_seconds);
  if (p.success_threshold > 0) s.success_threshold = p.success_threshold;
  if (p.failure_threshold > 0) s.failure_threshold = p.failure_threshold;
  // A container is alive (or started) as soon as one probe passes; only readiness may ask
  // for several successes in a row.
  if (type != ProbeType::kReadiness && s.success_threshold != 1) {
    return Status::Error(std::string(field_prefix(type)) + "successThreshold: " +
                         std::to_string(s.success_threshold) + ": must be 1");
  }
  return s;
}

ProbeWorker::ProbeWorker(ProbeType type, ProbeSettings settings, Clock::SteadyTime first_tick)
    : type_(type),
      settings_(settings),
      first_tick_(first_tick),
      next_tick_(first_tick),
      result_(initial_result()) {}

ProbeResult ProbeWorker::initial_result() const {
  // Until it has been probed, a container is alive, not ready, and of unknown start.
  switch (type_) {
    case ProbeType::kLiveness:
      return ProbeResult::kSuccess;
    case ProbeType::kReadiness:
      return ProbeResult::kFailure;
    case ProbeType::kStartup:
      return ProbeResult::kUnknown;
  }
  return ProbeResult::kUnknown;
}

bool ProbeWorker::due(Clock::SteadyTime now) const { return triggered_ || now >= next_tick_; }

void ProbeWorker::consume_tick(Clock::SteadyTime now) {
  triggered_ = false;
  if (now < next_tick_) return;
  // Like a ticker whose receiver was late: missed ticks collapse into this one.
  auto periods = (now - first_tick_) / settings_.period + 1;
  next_tick_ = first_tick_ + periods * settings_.period;
}

void ProbeWorker::adopt(const ProbeTarget& target) {
  container_id_ = target.container_id;
  result_ = initial_result();
  on_hold_ = false;
}

ProbeWorker::Step ProbeWorker::tick(Clock::SteadyTime now, const ProbePod& pod,
                                    const ProbeTarget& target) {
  if (!due(now)) return Step::kIdle;
  consume_tick(now);
  if (pod.terminal) return Step::kStop;
  if (target.container_id.empty()) return Step::kIdle;  // not created yet
  if (target.container_id != container_id_) adopt(target);
  if (on_hold_) return Step::kIdle;
  if (!target.running) {
    result_ = ProbeResult::kFailure;
    bool restarts = !target.terminated || pod.restart_policy != "Never";
    return restarts ? Step::kIdle : Step::kStop;
  }
  if (pod.deleting && type_ != ProbeType::kReadiness) {
    result_ = ProbeResult::kSuccess;  // let the container shut down quietly
    return Step::kStop;
  }
  auto ran = std::chrono::duration_cast<std::chrono::seconds>(now - target.started_at);
  if (ran < settings_.initial_delay) return Step::kIdle;
  // The startup probe alone runs until the container has started; then it rests while
  // the others take over.
  if (target.started != (type_ != ProbeType::kStartup)) return Step::kIdle;
  return Step::kProbe;
}

void ProbeWorker::record(ProbeResult result) {
  if (result == last_result_) {
    ++result_run_;
  } else {
    last_result_ = result;
    result_run_ = 1;
  }
  if ((result == ProbeResult::kFailure && result_run_ < settings_.failure_threshold) ||
      (result == ProbeResult::kSuccess && result_run_ < settings_.success_threshold)) {
    return;  // below threshold: the published result stands
  }
  result_ = result;
  if (type_ != ProbeType::kReadiness && result == ProbeResult::kFailure) {
    // The container is going to be restarted; probing it while it stops only races the
    // runtime.
    on_hold_ = true;
    result_run_ = 0;
  }
}

bool ProbeWorker::wants_restart() const {
  return type_ != ProbeType::kReadiness && result_ == ProbeResult::kFailure && on_hold_;
}

ProbedState probed_state(const std::string& container_id, bool running, const ProbeWorker* startup,
                         const ProbeWorker* readiness) {
  ProbedState s;
  if (!running) return s;
  s.started = startup == nullptr || passes(startup, container_id);
  if (!s.started) return s;
  s.ready = readiness == nullptr || passes(readiness, container_id);
  return s;
}

}  // namespace knode::kubelet
