#include "prober/lifecycle.h"

#include <cerrno>
#include <condition_variable>
#include <mutex>

#include "knode/log.h"
#include "prober/http_client.h"
#include "prober/text.h"

namespace knode::kubelet::prober {

namespace {

std::string joined(const std::vector<std::string>& command) {
  std::string out;
  for (const auto& arg : command) out += (out.empty() ? "" : " ") + arg;
  return out;
}

std::string hook_failed(std::string_view kind, const std::string& what, const ProbeTarget& t) {
  return std::string(kind) + " lifecycle hook (" + what + ") for Container " +
         go_quote(t.container_name) + " in Pod " +
         go_quote(format_pod(t.pod_name, t.pod_namespace, t.pod_uid)) + " failed - error: ";
}

Status run_exec(const api::ExecAction& exec, const ProbeTarget& t, std::chrono::seconds budget,
                const HandlerOptions& options) {
  const std::string prefix = hook_failed("Exec", go_list(exec.command), t);
  const auto failed = [&](const std::string& err, const std::string& output, int code) {
    return Status::Error(prefix + err + ", message: " + go_quote(output), code);
  };
  if (options.stop.stop_requested()) return failed("context canceled", "", ECANCELED);
  if (t.runtime == nullptr) return failed("no container runtime to exec in", "", EINVAL);
  auto r = t.runtime->exec_sync(t.container_id, exec.command, budget.count());
  if (!r.ok()) {
    if (r.status().error_number() == ETIMEDOUT) {
      return failed("command " + go_quote(joined(exec.command)) + " timed out", "", ETIMEDOUT);
    }
    return failed(r.status().message(), "", r.status().error_number());
  }
  if (r->exit_code != 0) {
    return failed("command '" + joined(exec.command) + "' exited with " +
                      std::to_string(r->exit_code) + ": " + r->stderr_,
                  r->stdout_ + r->stderr_, EIO);
  }
  return Status::Ok();
}

Status run_http(const api::HTTPGetAction& action, const ProbeTarget& t, std::chrono::seconds budget,
                const HandlerOptions& options) {
  const std::string prefix = hook_failed("HTTP", action.path, t);
  if (action.host.empty() && t.pod_ip.empty()) {
    return Status::Error(prefix + "failed to find networking container", EADDRNOTAVAIL);
  }
  auto port = resolve_container_port(action.port, t.ports);
  if (!port.ok()) return Status::Error(prefix + port.error(), port.status().error_number());

  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (budget.count() > 0) deadline = std::chrono::steady_clock::now() + budget;
  HttpRequest req =
      http_get_request(action, t.pod_ip, *port, "kube-lifecycle/" + options.kube_version);
  const HttpClient client;
  HttpResponse res = client.get(req, deadline, options.stop);
  if (res.https_to_http_server) {
    // Upstream retries a hook whose HTTPS met a plain HTTP server over HTTP, without the
    // credentials, and keeps the first error when that fails too.
    HttpRequest plain = req;
    plain.url.scheme = "http";
    std::erase_if(plain.headers, [](const auto& h) { return h.first == "Authorization"; });
    if (client.get(plain, deadline, options.stop).error.ok()) {
      KLOG(WARNING, "LifecycleHTTPFallback")
          .kv("pod", t.pod_namespace + "/" + t.pod_name)
          .kv("container", t.container_name)
          .kv("message", "request to HTTPS lifecycle hook " + req.url.host_port() +
                             " got HTTP response, retry with HTTP succeeded");
      return Status::Ok();
    }
  }
  if (!res.error.ok()) return Status::Error(prefix + res.error.message(), res.error.error_number());
  // Upstream does not look at the status: any answer is a hook that ran.
  if (res.status < 200 || res.status >= 400) {
    KLOGV(2, "lifecycle hook answered with an error status")
        .kv("pod", t.pod_namespace + "/" + t.pod_name)
        .kv("container", t.container_name)
        .kv("url", res.url.str())
        .kv("status", res.status);
  }
  return Status::Ok();
}

Status run_sleep(const api::SleepAction& sleep, const ProbeTarget& t, std::chrono::seconds budget,
                 const HandlerOptions& options) {
  if (sleep.seconds <= 0) return Status::Ok();
  const std::chrono::seconds wanted(sleep.seconds);
  const bool cut = budget.count() > 0 && budget < wanted;
  const std::chrono::seconds wait = cut ? budget : wanted;
  const std::string prefix = hook_failed("Sleep", std::to_string(sleep.seconds), t);
  if (!options.sleeper(wait, options.stop)) {
    return Status::Error(prefix + "container terminated before sleep hook finished", ECANCELED);
  }
  if (cut) {
    return Status::Error(prefix + "did not finish within " + go_duration(budget), ETIMEDOUT);
  }
  return Status::Ok();
}

}  // namespace

bool sleep_unless_stopped(std::chrono::milliseconds d, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, stop, d, [] { return false; });
  return !stop.stop_requested();
}

Status run_handler(const api::LifecycleHandler& handler, const ProbeTarget& target,
                   std::chrono::seconds budget, const HandlerOptions& options) {
  if (handler.exec) return run_exec(*handler.exec, target, budget, options);
  if (handler.http_get) return run_http(*handler.http_get, target, budget, options);
  if (handler.sleep) return run_sleep(*handler.sleep, target, budget, options);
  std::string why = "no action set";
  if (handler.tcp_socket) {
    // The API still accepts it (deprecated, never validated); upstream's kubelet fails
    // such a hook when it runs, so a container that works here works there.
    why = "tcpSocket is deprecated and not supported as a lifecycle handler";
    KLOG(WARNING, "lifecycle hook with tcpSocket cannot run")
        .kv("pod", target.pod_namespace + "/" + target.pod_name)
        .kv("container", target.container_name);
  }
  return Status::Error("Cannot run handler: invalid handler: " + why, EINVAL);
}

}  // namespace knode::kubelet::prober
