// Runs one attempt of a container's probe, as upstream's kubelet prober does
// (pkg/kubelet/prober/prober.go over pkg/probe/{exec,http,tcp,grpc}):
//   exec       the command in the container through the runtime's ExecSync; exit code 0
//              passes, a timeout fails (upstream since 1.20)
//   httpGet    a GET to the pod (or `host`); 200-399 passes, a redirect to another host
//              passes with a warning
//   tcpSocket  a TCP connect to the pod (or `host`)
//   grpc       grpc.health.v1.Health/Check on the pod; SERVING passes
// Each attempt is bounded by timeoutSeconds. It blocks, so the pod worker runs it off its
// event loop and feeds the result to ProbeWorker::record (pod/probe_state.h):
//
//   prober::Prober prober;
//   auto outcome = prober.run(*container.liveness_probe, target);
//   if (outcome.result != ProbeResult::kUnknown) worker.record(outcome.result);
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "knode/api/pod.h"
#include "knode/runtime.h"
#include "knode/status.h"
#include "pod/probe_state.h"

namespace knode::kubelet::prober {

// The Kubernetes version knode follows: probes say "User-Agent: kube-probe/1.37" and hooks
// "kube-lifecycle/1.37", as that kubelet's do.
inline constexpr std::string_view kKubeVersion = "1.37";

// What a probe attempt or lifecycle hook reaches, and the names its messages use. (Not
// pod/probe_state.h's kubelet::ProbeTarget, the container's state for the probe worker.)
// Plain values, so the pod worker can hand a copy to another thread.
struct ProbeTarget {
  std::string pod_name, pod_namespace, pod_uid;
  // The pod's primary IP: where httpGet, tcpSocket (without `host`) and grpc go.
  std::string pod_ip;
  std::string container_name;
  std::string container_id;               // the runtime's ID, without a "containerd://" scheme
  std::vector<api::ContainerPort> ports;  // to resolve a named port
  std::vector<api::EnvVar> env;           // to expand $(VAR) in an exec probe's command
  runtime::ContainerRuntime* runtime = nullptr;  // for exec; must outlive the call
};

struct ProbeOutcome {
  // kSuccess or kFailure: record it. kUnknown: the probe could not be run (`error` says
  // why: a named port the container lacks, a runtime that did not answer); upstream's
  // worker throws such an attempt away, and so must the caller.
  ProbeResult result = ProbeResult::kUnknown;
  // A success upstream reports as a warning (probe.Warning): an HTTP redirect to another
  // host, not followed.
  bool warning = false;
  // Upstream's output: on success the response body or the command's output (10 KiB at
  // most); on failure why ("HTTP probe failed with statuscode: 500", "dial tcp
  // 10.244.0.5:8080: connect: connection refused", "command \"cat /tmp/x\" timed out").
  std::string output;
  Status error;
};

// The event upstream's prober records for an outcome: reason "Unhealthy" for a failure or
// an error, "ProbeWarning" for a warning, with its message ("Liveness probe failed: HTTP
// probe failed with statuscode: 500"). Empty reason for a plain success.
struct ProbeEvent {
  std::string reason, message;
};
ProbeEvent probe_event(ProbeType type, const ProbeOutcome& outcome);

// A port given by number or by the name of one of the container's ports (its
// containerPort); a name that matches none is tried as a number, as upstream does.
Result<int> resolve_container_port(const api::IntOrString& port,
                                   const std::vector<api::ContainerPort>& ports);

struct ProberOptions {
  std::string kube_version{kKubeVersion};  // for the User-Agent: "kube-probe/<version>"
};

class HttpClient;

class Prober {
 public:
  explicit Prober(ProberOptions options = {});
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // One probe: an attempt that could not be run is tried again, up to 3 attempts, as
  // upstream's runProbeWithRetries does; failures are not retried. Thread-safe.
  ProbeOutcome run(const api::Probe& probe, const ProbeTarget& target) const;

 private:
  ProbeOutcome attempt(const api::Probe& probe, const ProbeTarget& target) const;

  ProberOptions options_;
  std::unique_ptr<HttpClient> http_;
};

}  // namespace knode::kubelet::prober
