// One attempt of each kind of probe, as upstream's pkg/probe/{exec,tcp,grpc} and the
// prober's HTTP result mapping. Prober (prober.h) picks one and resolves its target.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "knode/runtime.h"
#include "prober/http_client.h"
#include "prober/prober.h"

namespace knode::kubelet::prober {

// The command through ExecSync with `timeout`: exit 0 passes; another exit code fails with
// the command's output; the runtime's ETIMEDOUT fails with "command \"...\" timed out";
// any other runtime error is unknown.
ProbeOutcome exec_probe(runtime::ContainerRuntime& runtime, const std::string& container_id,
                        const std::vector<std::string>& command, std::chrono::seconds timeout);

// The HTTP answer as a probe result: 200-299 passes with the body as output, 300-399 (a
// redirect not followed) passes with a warning, others fail with "HTTP probe failed with
// statuscode: N"; no answer fails with the client's error.
ProbeOutcome http_outcome(const HttpResponse& response);

// A TCP connect within `timeout`; the socket is closed at once.
ProbeOutcome tcp_probe(const std::string& host, int port, std::chrono::seconds timeout);

// grpc.health.v1.Health/Check of `service` ("" for the server as a whole), connecting and
// answering within `timeout`. Every way it can go wrong is a failure, as upstream's.
ProbeOutcome grpc_probe(const std::string& host, int port, const std::string& service,
                        std::chrono::seconds timeout, const std::string& user_agent);

}  // namespace knode::kubelet::prober
