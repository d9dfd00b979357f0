// What the pod workers use besides the runtime, on this node: the objects their
// environment reads (ObjectCache), images (pull policy, credentials, back-off), volumes
// and lifecycle hooks.
#pragma once

#include <memory>
#include <mutex>

#include "object_cache.h"
#include "pod/backoff.h"
#include "pod_worker.h"

namespace knode::kubelet {

class NodeEnvironment final : public PodEnvironment {
 public:
  NodeEnvironment(runtime::ContainerRuntime& rt, ObjectCache& cache, const Clock& clock);

  std::shared_ptr<const EnvLookup> lookup() override { return cache_.snapshot(); }
  Image ensure_image(const api::Pod& pod, const api::Container& c, const EnvLookup& lookup) override;
  Status setup_volumes(const api::Pod& pod, const EnvLookup& lookup) override;
  Result<std::vector<runtime::Mount>> mounts(const api::Pod& pod, const api::Container& c,
                                             const std::vector<runtime::KeyValue>& env) override;
  Status teardown_volumes(const std::string& pod_uid) override;
  Status run_hook(const api::LifecycleHandler& h, const api::Pod& pod, const api::Container& c,
                  const std::string& container_id, const std::string& pod_ip, std::chrono::seconds budget) override;

 private:
  runtime::ContainerRuntime& rt_;
  ObjectCache& cache_;
  const Clock& clock_;
  std::mutex mu_;
  Backoff pulls_;
};

}  // namespace knode::kubelet
