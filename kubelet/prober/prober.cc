#include "prober/prober.h"

#include <cerrno>
#include <map>
#include <optional>

#include "knode/log.h"
#include "pod/env.h"
#include "prober/http_client.h"
#include "prober/probes.h"
#include "prober/text.h"

namespace knode::kubelet::prober {

namespace {

// Upstream's maxProbeRetries: attempts of a probe that errors (could not be run).
constexpr int kMaxProbeAttempts = 3;

// Upstream's ExpandContainerCommandOnlyStatic: $(VAR) from the container's env values as
// written (a valueFrom variable counts as empty), no other source.
std::vector<std::string> expand_static(const std::vector<std::string>& command,
                                       const std::vector<api::EnvVar>& env) {
  std::map<std::string, std::string, std::less<>> values;
  for (const auto& e : env) values[e.name] = e.value;
  const EnvMapping lookup = [&](std::string_view name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
  std::vector<std::string> out;
  out.reserve(command.size());
  for (const auto& arg : command) out.push_back(expand(arg, lookup));
  return out;
}

ProbeOutcome unknown(Status error) {
  ProbeOutcome out;
  out.error = std::move(error);
  return out;
}

}  // namespace

Result<int> resolve_container_port(const api::IntOrString& port,
                                   const std::vector<api::ContainerPort>& ports) {
  int number = -1;
  if (port.is_int()) {
    number = port.int_value();
  } else if (port.str_value().empty()) {
    return Status::Error("port is not set", EINVAL);
  } else {
    bool found = false;
    for (const auto& p : ports) {
      if (p.name == port.str_value()) {
        number = p.container_port;
        found = true;
        break;
      }
    }
    if (!found) {
      // Upstream's last try: a number written as a string.
      const std::string& s = port.str_value();
      const bool digits = s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
      if (!digits) {
        return Status::Error("port " + go_quote(s) + " not found in the container's ports", ENOENT);
      }
      number = std::stoi(s);
    }
  }
  if (number <= 0 || number >= 65536) {
    return Status::Error("invalid port number: " + std::to_string(number), EINVAL);
  }
  return number;
}

ProbeOutcome http_outcome(const HttpResponse& response) {
  ProbeOutcome out;
  out.result = ProbeResult::kFailure;
  if (!response.error.ok()) {
    out.output = response.error.message();
    return out;
  }
  if (response.status >= 200 && response.status < 400) {
    out.result = ProbeResult::kSuccess;
    if (response.status >= 300) {
      out.warning = true;
      out.output = "Probe terminated redirects, Response body: " + response.body;
    } else {
      out.output = response.body;
    }
    return out;
  }
  // Not the body: upstream keeps it out of the message (issue 99425).
  out.output = "HTTP probe failed with statuscode: " + std::to_string(response.status);
  return out;
}

ProbeEvent probe_event(ProbeType type, const ProbeOutcome& outcome) {
  const std::string kind = to_string(type);
  switch (outcome.result) {
    case ProbeResult::kUnknown:
      return {"Unhealthy",
              kind + " probe errored and resulted in unknown state: " + outcome.error.message()};
    case ProbeResult::kFailure:
      return {"Unhealthy", kind + " probe failed: " + outcome.output};
    case ProbeResult::kSuccess:
      if (outcome.warning) return {"ProbeWarning", kind + " probe warning: " + outcome.output};
      return {};
  }
  return {};
}

Prober::Prober(ProberOptions options)
    : options_(std::move(options)), http_(std::make_unique<HttpClient>()) {}

Prober::~Prober() = default;

ProbeOutcome Prober::run(const api::Probe& probe, const ProbeTarget& target) const {
  ProbeOutcome out;
  for (int i = 0; i < kMaxProbeAttempts; ++i) {
    out = attempt(probe, target);
    if (out.result != ProbeResult::kUnknown) break;
    KLOGV(1, "probe errored")
        .kv("pod", target.pod_namespace + "/" + target.pod_name)
        .kv("container", target.container_name)
        .kv("attempt", i + 1)
        .kv("err", out.error.message());
  }
  return out;
}

ProbeOutcome Prober::attempt(const api::Probe& probe, const ProbeTarget& target) const {
  // timeoutSeconds is defaulted to 1 on decode; 0 here means a spec that skipped it.
  const std::chrono::seconds timeout(probe.timeout_seconds > 0 ? probe.timeout_seconds : 1);
  const auto needs_pod_ip = [&](const std::string& host) -> std::optional<Status> {
    if (!host.empty() || !target.pod_ip.empty()) return std::nullopt;
    return Status::Error("pod " +
                             format_pod(target.pod_name, target.pod_namespace, target.pod_uid) +
                             " has no IP to probe",
                         EADDRNOTAVAIL);
  };

  if (probe.exec) {
    if (target.runtime == nullptr)
      return unknown(Status::Error("no container runtime to exec in", EINVAL));
    if (target.container_id.empty())
      return unknown(Status::Error("the container has no ID yet", ENOENT));
    return exec_probe(*target.runtime, target.container_id,
                      expand_static(probe.exec->command, target.env), timeout);
  }
  if (probe.http_get) {
    auto port = resolve_container_port(probe.http_get->port, target.ports);
    if (!port.ok()) return unknown(port.status());
    if (auto no_ip = needs_pod_ip(probe.http_get->host)) return unknown(*no_ip);
    const HttpRequest req = http_get_request(*probe.http_get, target.pod_ip, *port,
                                             "kube-probe/" + options_.kube_version);
    return http_outcome(http_->get(req, std::chrono::steady_clock::now() + timeout));
  }
  if (probe.tcp_socket) {
    auto port = resolve_container_port(probe.tcp_socket->port, target.ports);
    if (!port.ok()) return unknown(port.status());
    if (auto no_ip = needs_pod_ip(probe.tcp_socket->host)) return unknown(*no_ip);
    const std::string& host =
        probe.tcp_socket->host.empty() ? target.pod_ip : probe.tcp_socket->host;
    return tcp_probe(host, *port, timeout);
  }
  if (probe.grpc) {
    if (auto no_ip = needs_pod_ip("")) return unknown(*no_ip);
    return grpc_probe(target.pod_ip, probe.grpc->port, probe.grpc->service.value_or(""), timeout,
                      "kube-probe/" + options_.kube_version);
  }
  return unknown(
      Status::Error("missing probe handler for " +
                        format_pod(target.pod_name, target.pod_namespace, target.pod_uid) + ":" +
                        target.container_name,
                    EINVAL));
}

}  // namespace knode::kubelet::prober
