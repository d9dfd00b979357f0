// Runs a container's postStart or preStop handler, as upstream's kubelet does
// (pkg/kubelet/lifecycle/handlers.go):
//   exec       the command in the container (ExecSync); a non-zero exit fails
//   httpGet    a GET as a probe makes it (User-Agent kube-lifecycle/1.37, no certificate
//              check, same-host redirects); it fails only when no answer comes, whatever
//              the status, and an HTTPS hook that meets a plain HTTP server is retried
//              over HTTP
//   sleep      waits sleep.seconds, cut short by a stop request
//   tcpSocket  deprecated and never supported: it fails, as upstream's does at runtime
// Blocking: the pod worker runs it off its event loop. The caller names the event
// (FailedPostStartHook, FailedPreStopHook); the error's message is upstream's, e.g.
//   Exec lifecycle hook ([sh -c exit 3]) for Container "web" in Pod "web-0_default(uid)"
//   failed - error: command 'sh -c exit 3' exited with 3: , message: ""
#pragma once

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>

#include "knode/api/pod.h"
#include "knode/status.h"
#include "prober/prober.h"

namespace knode::kubelet::prober {

// Waits `d` unless `stop` is requested first; true when the whole time passed.
using Sleeper = std::function<bool(std::chrono::milliseconds d, std::stop_token stop)>;
// The real one: a condition variable wait that a stop request wakes.
bool sleep_unless_stopped(std::chrono::milliseconds d, std::stop_token stop);

struct HandlerOptions {
  // Ends a sleep or an HTTP request at once (ECANCELED): the pod worker's grace period ran
  // out. An exec already handed to the runtime runs to its own end.
  std::stop_token stop;
  Sleeper sleeper = sleep_unless_stopped;  // tests inject one and never wait
  std::string kube_version{kKubeVersion};  // "User-Agent: kube-lifecycle/<version>"
};

// Runs `handler` for the container `target` names, for at most `budget` (0: no limit, as
// upstream gives postStart). An exec gets it as its ExecSync timeout, an HTTP request as
// its deadline, a sleep as its longest wait; a handler still running at its end fails
// with ETIMEDOUT (for a preStop hook: the grace period is over, go on and stop it). A
// stop request fails it with ECANCELED.
Status run_handler(const api::LifecycleHandler& handler, const ProbeTarget& target,
                   std::chrono::seconds budget, const HandlerOptions& options = {});

}  // namespace knode::kubelet::prober
