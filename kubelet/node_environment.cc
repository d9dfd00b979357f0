#include "node_environment.h"

#include <cerrno>

#include "knode/log.h"
#include "pod/image_policy.h"
#include "prober/lifecycle.h"
#include "pod/status.h"

namespace knode::kubelet {

NodeEnvironment::NodeEnvironment(runtime::ContainerRuntime& rt, ObjectCache& cache, LogManager& logs,
                                 std::string pods_dir, const Clock& clock)
    : rt_(rt), cache_(cache), logs_(logs), images_(rt, clock), pods_dir_(std::move(pods_dir)) {}

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
  out.events = r.events;
  if (!r.ok()) {
    out.waiting = StartFailure{r.reason, r.message};
    return out;
  }
  out.ref = r.image_ref;
  return out;
}

// Idempotent: the pod worker calls it on every sync, which also brings configMap, secret
// and downwardAPI contents up to date in a running pod.
Status NodeEnvironment::setup_volumes(const api::Pod& pod, const EnvLookup& lookup) {
  if (pod.spec.volumes.empty()) return Status::Ok();
  VolumeManager vm(pods_dir_, lookup, mounter_);
  auto v = vm.setup(pod);
  if (!v.ok()) return v.status();
  if (Status s = vm.refresh(pod); !s.ok()) return s;
  std::lock_guard lock(mu_);
  volumes_[pod.metadata.uid] = std::move(*v);
  return Status::Ok();
}

Result<std::vector<runtime::Mount>> NodeEnvironment::mounts(const api::Pod& pod, const api::Container& c,
                                                            const std::vector<runtime::KeyValue>& env) {
  if (c.volume_mounts.empty()) return std::vector<runtime::Mount>{};
  PodVolumes volumes;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(pod.metadata.uid);
    if (it != volumes_.end()) volumes = it->second;
  }
  auto lookup = cache_.snapshot();
  VolumeManager vm(pods_dir_, *lookup, mounter_);
  return vm.mounts_for(pod, c, volumes, env);
}

Status NodeEnvironment::teardown_volumes(const std::string& pod_uid) {
  auto lookup = cache_.snapshot();
  VolumeManager vm(pods_dir_, *lookup, mounter_);
  Status s = vm.teardown(pod_uid);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    volumes_.erase(pod_uid);
  }
  return s;
}

Status NodeEnvironment::prepare_logs(const api::Pod& pod, const api::Container& c) {
  return logs_.ensure_container_log_directory(pod.metadata.namespace_, pod.metadata.name, pod.metadata.uid, c.name)
      .status();
}

void NodeEnvironment::container_started(const std::string& container_id) {
  if (Status s = logs_.link_container_log(container_id); !s.ok()) {
    KLOG(WARNING, "cannot link the container's log").kv("id", container_id.substr(0, 12)).kv("err", s.message());
  }
}

Status NodeEnvironment::run_hook(const api::LifecycleHandler& h, const api::Pod& pod, const api::Container& c,
                                 const std::string& container_id, const std::string& pod_ip,
                                 std::chrono::seconds budget) {
  prober::ProbeTarget target;
  target.pod_name = pod.metadata.name;
  target.pod_namespace = pod.metadata.namespace_;
  target.pod_uid = pod.metadata.uid;
  target.pod_ip = pod_ip;
  target.container_name = c.name;
  target.container_id = container_id;
  target.ports = c.ports;
  target.env = c.env;
  target.runtime = &rt_;
  return prober::run_handler(h, target, budget);
}

}  // namespace knode::kubelet
