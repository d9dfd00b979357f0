// The container runtime as the kubelet calls it, counted and timed: every call of the
// runtime (CRI or Docker) goes through here, so /metrics shows what the kubelet asks of
// its runtime under upstream's names and operation types:
//
//   kubelet_runtime_operations_total{operation_type="run_podsandbox"}
//   kubelet_runtime_operations_errors_total{operation_type=...}
//   kubelet_runtime_operations_duration_seconds{operation_type=...}   (histogram)
//   kubelet_run_podsandbox_duration_seconds{runtime_handler=...}       (histogram)
//   kubelet_run_podsandbox_errors_total{runtime_handler=...}
//
// (runtime_handler is always "": every sandbox runs on the runtime's default handler.)
// Errors count every failed call, as upstream's (a NotFound answer included). The
// operation types are upstream's: "version", "status", "runtime_config", "run_podsandbox",
// "podsandbox_status", "list_podsandbox", "create_container", "update_container",
// "exec_sync", "pull_image", "image_status", "image_fs_info", ...
//
// Thread-safe as the runtime it wraps.
#pragma once

#include <memory>

#include "knode/metrics.h"
#include "knode/runtime.h"

namespace knode::kubelet {

class InstrumentedRuntime final : public runtime::ContainerRuntime {
 public:
  // `registry` outlives this object.
  InstrumentedRuntime(std::unique_ptr<runtime::ContainerRuntime> inner, metrics::Registry& registry);

  std::string id_scheme() const override { return inner_->id_scheme(); }
  Result<runtime::VersionInfo> version() override;
  Result<runtime::RuntimeStatus> status() override;
  Result<runtime::CgroupDriver> cgroup_driver() override;

  Result<std::string> run_pod_sandbox(const runtime::PodSandboxConfig& config) override;
  Status stop_pod_sandbox(const std::string& id) override;
  Status remove_pod_sandbox(const std::string& id) override;
  Result<runtime::PodSandboxStatus> pod_sandbox_status(const std::string& id) override;
  Result<std::vector<runtime::PodSandbox>> list_pod_sandboxes(const runtime::SandboxFilter& filter) override;

  Result<std::string> create_container(const std::string& pod_sandbox_id, const runtime::ContainerConfig& config,
                                       const runtime::PodSandboxConfig& sandbox_config) override;
  Status start_container(const std::string& id) override;
  Status stop_container(const std::string& id, int64_t timeout_seconds) override;
  Status update_container_resources(const std::string& id, const runtime::LinuxResources& resources) override;
  Status remove_container(const std::string& id) override;
  Result<std::vector<runtime::Container>> list_containers(const runtime::ContainerFilter& filter) override;
  Result<runtime::ContainerStatus> container_status(const std::string& id) override;
  Result<runtime::ExecResult> exec_sync(const std::string& id, const std::vector<std::string>& cmd,
                                        int64_t timeout_seconds) override;
  Result<std::string> exec(const runtime::ExecRequest& request) override;
  Result<std::string> attach(const runtime::AttachRequest& request) override;
  Result<std::string> port_forward(const std::string& pod_sandbox_id, const std::vector<int32_t>& ports) override;
  Status reopen_container_log(const std::string& id) override;
  Result<runtime::ContainerStats> container_stats(const std::string& id) override;

  Result<std::string> pull_image(const runtime::ImageSpec& image, const std::optional<runtime::AuthConfig>& auth,
                                 const runtime::PodSandboxConfig* sandbox_config) override;
  Result<std::optional<runtime::Image>> image_status(const runtime::ImageSpec& image) override;
  Result<std::vector<runtime::Image>> list_images() override;
  Status remove_image(const runtime::ImageSpec& image) override;
  Result<std::vector<runtime::FilesystemUsage>> image_fs_info() override;

 private:
  template <typename F>
  auto record(const char* operation, F&& call);

  std::unique_ptr<runtime::ContainerRuntime> inner_;
  metrics::CounterFamily& operations_;
  metrics::CounterFamily& errors_;
  metrics::HistogramFamily& durations_;
  metrics::HistogramFamily& sandbox_durations_;
  metrics::CounterFamily& sandbox_errors_;
};

}  // namespace knode::kubelet
