// What the pod workers use besides the runtime, on this node: the objects their
// environment reads (ObjectCache), images (images/image_manager.h: pull policy,
// credentials from imagePullSecrets, back-off), container logs (logs/log_manager.h),
// volumes and lifecycle hooks.
#pragma once

#include <memory>

#include <map>
#include <mutex>

#include "images/image_manager.h"
#include "logs/log_manager.h"
#include "object_cache.h"
#include "pod_worker.h"
#include "volume/mounter.h"
#include "volume/volume_manager.h"

namespace knode::kubelet {

class NodeEnvironment final : public PodEnvironment {
 public:
  NodeEnvironment(runtime::ContainerRuntime& rt, ObjectCache& cache, LogManager& logs, std::string pods_dir,
                  const Clock& clock, std::string cluster_domain = "cluster.local",
                  std::string host_etc_hosts = "/etc/hosts");

  std::shared_ptr<const EnvLookup> lookup() override { return cache_.snapshot(); }
  Image ensure_image(const api::Pod& pod, const api::Container& c, const EnvLookup& lookup,
                     const runtime::PodSandboxConfig& sandbox) override;
  Status setup_volumes(const api::Pod& pod, const EnvLookup& lookup) override;
  Result<std::vector<runtime::Mount>> mounts(const api::Pod& pod, const api::Container& c,
                                             const std::vector<runtime::KeyValue>& env) override;
  Status teardown_volumes(const std::string& pod_uid) override;
  Result<std::optional<runtime::Mount>> etc_hosts(const api::Pod& pod, const std::vector<std::string>& pod_ips) override;
  Result<std::optional<runtime::Mount>> termination_log(const api::Pod& pod, const api::Container& c,
                                                        uint32_t attempt) override;
  std::string termination_message(const api::Container& c, const runtime::ContainerStatus& status) override;
  Status prepare_logs(const api::Pod& pod, const api::Container& c) override;
  void container_started(const api::Pod& pod, const api::Container& c, const std::string& container_id,
                         const std::string& log_path) override;
  Status run_hook(const api::LifecycleHandler& h, const api::Pod& pod, const api::Container& c,
                  const std::string& container_id, const std::string& pod_ip, std::chrono::seconds budget) override;

 private:
  runtime::ContainerRuntime& rt_;
  ObjectCache& cache_;
  LogManager& logs_;
  ImageManager images_;
  std::string pods_dir_;
  std::string cluster_domain_, host_etc_hosts_;
  volume::LinuxMounter mounter_;
  std::mutex mu_;
  std::map<std::string, PodVolumes> volumes_;  // by pod UID, as the last setup left them
};

}  // namespace knode::kubelet
