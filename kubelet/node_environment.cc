#include "node_environment.h"

#include <cerrno>

#include "knode/log.h"
#include "pod/image_policy.h"
#include "pod/status.h"

namespace knode::kubelet {

NodeEnvironment::NodeEnvironment(runtime::ContainerRuntime& rt, ObjectCache& cache, LogManager& logs,
                                 const Clock& clock)
    : rt_(rt), cache_(cache), logs_(logs), images_(rt, clock) {}

PodEnvironment::Image NodeEnvironment::ensure_image(const api::Pod& pod, const api::Container& c,
                                                    const EnvLookup& lookup, const runtime::PodSandboxConfig& sandbox) {
  Image out;
  std::vector<const api::Secret*> secrets;
  for (const auto& s : pod.spec.image_pull_secrets) {
    if (const auto* secret = lookup.secret(pod.metadata.namespace_, s.name)) secrets.push_back(secret);
  }
  auto creds = credentials_for(c.image, secrets);
  if (!creds.ok()) {
    out.waiting = StartFailure{kErrImagePull, creds.error()};
    return out;
  }
  EnsureResult r = images_.ensure_image(pod, c, *creds, &sandbox);
  if (!r.ok()) {
    out.waiting = StartFailure{r.reason, r.message};
    return out;
  }
  out.ref = r.image_ref;
  return out;
}

Status NodeEnvironment::setup_volumes(const api::Pod& pod, const EnvLookup&) {
  if (pod.spec.volumes.empty()) return Status::Ok();
  return Status::Error("pod " + pod.metadata.namespace_ + "/" + pod.metadata.name + ": spec.volumes: not supported yet",
                       ENOTSUP);
}

Result<std::vector<runtime::Mount>> NodeEnvironment::mounts(const api::Pod& pod, const api::Container& c,
                                                            const std::vector<runtime::KeyValue>&) {
  if (c.volume_mounts.empty()) return std::vector<runtime::Mount>{};
  return Status::Error("pod " + pod.metadata.namespace_ + "/" + pod.metadata.name + ": container " + c.name +
                           ": volumeMounts: not supported yet",
                       ENOTSUP);
}

Status NodeEnvironment::teardown_volumes(const std::string&) { return Status::Ok(); }

Status NodeEnvironment::prepare_logs(const api::Pod& pod, const api::Container& c) {
  return logs_.ensure_container_log_directory(pod.metadata.namespace_, pod.metadata.name, pod.metadata.uid, c.name)
      .status();
}

void NodeEnvironment::container_started(const std::string& container_id) {
  if (Status s = logs_.link_container_log(container_id); !s.ok()) {
    KLOG(WARNING, "cannot link the container's log").kv("id", container_id.substr(0, 12)).kv("err", s.message());
  }
}

Status NodeEnvironment::run_hook(const api::LifecycleHandler& h, const api::Pod&, const api::Container&,
                                 const std::string& container_id, const std::string&, std::chrono::seconds budget) {
  if (h.exec) {
    auto r = rt_.exec_sync(container_id, h.exec->command, budget.count());
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) {
      return Status::Error("command exited with " + std::to_string(r->exit_code) + ": " + r->stdout_ + r->stderr_, EIO);
    }
    return Status::Ok();
  }
  return Status::Error("only exec hooks are supported yet", ENOTSUP);
}

}  // namespace knode::kubelet
