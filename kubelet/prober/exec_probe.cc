#include <cerrno>

#include "prober/probes.h"

namespace knode::kubelet::prober {

namespace {

std::string joined(const std::vector<std::string>& command) {
  std::string out;
  for (const auto& arg : command) out += (out.empty() ? "" : " ") + arg;
  return out;
}

}  // namespace

ProbeOutcome exec_probe(runtime::ContainerRuntime& runtime, const std::string& container_id,
                        const std::vector<std::string>& command, std::chrono::seconds timeout) {
  ProbeOutcome out;
  auto r = runtime.exec_sync(container_id, command, timeout.count());
  if (!r.ok()) {
    if (r.status().error_number() == ETIMEDOUT) {
      // The runtime ended the command at the timeout (CRI DeadlineExceeded): a failed
      // probe, as upstream counts it since ExecProbeTimeout (1.20).
      out.result = ProbeResult::kFailure;
      out.output = "command \"" + joined(command) + "\" timed out";
      return out;
    }
    out.error = r.status();
    return out;
  }
  // Upstream's output is stdout then stderr, cut at 10 KiB.
  out.output = r->stdout_ + r->stderr_;
  if (out.output.size() > kMaxBodyBytes) out.output.resize(kMaxBodyBytes);
  out.result = r->exit_code == 0 ? ProbeResult::kSuccess : ProbeResult::kFailure;
  return out;
}

}  // namespace knode::kubelet::prober
