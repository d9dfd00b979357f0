#include "instrumented_runtime.h"

#include <chrono>
#include <utility>

namespace knode::kubelet {
namespace {

// knode runs every sandbox on the runtime's default handler (it has no RuntimeClass), which
// upstream labels as the empty handler.
const std::string kDefaultHandler;

}  // namespace

InstrumentedRuntime::InstrumentedRuntime(std::unique_ptr<runtime::ContainerRuntime> inner,
                                         metrics::Registry& registry)
    : inner_(std::move(inner)),
      operations_(registry.counter_family("kubelet_runtime_operations_total",
                                          "Cumulative number of runtime operations by operation type.",
                                          {"operation_type"})),
      errors_(registry.counter_family("kubelet_runtime_operations_errors_total",
                                      "Cumulative number of runtime operation errors by operation type.",
                                      {"operation_type"})),
      durations_(registry.histogram_family("kubelet_runtime_operations_duration_seconds",
                                           "Duration in seconds of runtime operations, by operation type.",
                                           {"operation_type"}, metrics::exponential_buckets(0.005, 2.5, 14))),
      sandbox_durations_(registry.histogram_family("kubelet_run_podsandbox_duration_seconds",
                                                   "Duration in seconds of the run_podsandbox operations, by "
                                                   "RuntimeClass handler.",
                                                   {"runtime_handler"})),
      sandbox_errors_(registry.counter_family("kubelet_run_podsandbox_errors_total",
                                              "Cumulative number of run_podsandbox errors, by RuntimeClass handler.",
                                              {"runtime_handler"})) {}

template <typename F>
auto InstrumentedRuntime::record(const char* operation, F&& call) {
  const auto start = std::chrono::steady_clock::now();
  auto out = call();
  operations_.with({operation}).inc();
  durations_.with({operation}).observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!out.ok()) errors_.with({operation}).inc();
  return out;
}

Result<runtime::VersionInfo> InstrumentedRuntime::version() {
  return record("version", [&] { return inner_->version(); });
}
Result<runtime::RuntimeStatus> InstrumentedRuntime::status() {
  return record("status", [&] { return inner_->status(); });
}
Result<runtime::CgroupDriver> InstrumentedRuntime::cgroup_driver() {
  return record("runtime_config", [&] { return inner_->cgroup_driver(); });
}

Result<std::string> InstrumentedRuntime::run_pod_sandbox(const runtime::PodSandboxConfig& config) {
  const auto start = std::chrono::steady_clock::now();
  auto out = record("run_podsandbox", [&] { return inner_->run_pod_sandbox(config); });
  sandbox_durations_.with({kDefaultHandler})
      .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!out.ok()) sandbox_errors_.with({kDefaultHandler}).inc();
  return out;
}
Status InstrumentedRuntime::stop_pod_sandbox(const std::string& id) {
  return record("stop_podsandbox", [&] { return inner_->stop_pod_sandbox(id); });
}
Status InstrumentedRuntime::remove_pod_sandbox(const std::string& id) {
  return record("remove_podsandbox", [&] { return inner_->remove_pod_sandbox(id); });
}
Result<runtime::PodSandboxStatus> InstrumentedRuntime::pod_sandbox_status(const std::string& id) {
  return record("podsandbox_status", [&] { return inner_->pod_sandbox_status(id); });
}
Result<std::vector<runtime::PodSandbox>> InstrumentedRuntime::list_pod_sandboxes(const runtime::SandboxFilter& filter) {
  return record("list_podsandbox", [&] { return inner_->list_pod_sandboxes(filter); });
}

Result<std::string> InstrumentedRuntime::create_container(const std::string& pod_sandbox_id,
                                                          const runtime::ContainerConfig& config,
                                                          const runtime::PodSandboxConfig& sandbox_config) {
  return record("create_container", [&] { return inner_->create_container(pod_sandbox_id, config, sandbox_config); });
}
Status InstrumentedRuntime::start_container(const std::string& id) {
  return record("start_container", [&] { return inner_->start_container(id); });
}
Status InstrumentedRuntime::stop_container(const std::string& id, int64_t timeout_seconds) {
  return record("stop_container", [&] { return inner_->stop_container(id, timeout_seconds); });
}
Status InstrumentedRuntime::update_container_resources(const std::string& id, const runtime::LinuxResources& resources) {
  return record("update_container", [&] { return inner_->update_container_resources(id, resources); });
}
Status InstrumentedRuntime::remove_container(const std::string& id) {
  return record("remove_container", [&] { return inner_->remove_container(id); });
}
Result<std::vector<runtime::Container>> InstrumentedRuntime::list_containers(const runtime::ContainerFilter& filter) {
  return record("list_containers", [&] { return inner_->list_containers(filter); });
}
Result<runtime::ContainerStatus> InstrumentedRuntime::container_status(const std::string& id) {
  return record("container_status", [&] { return inner_->container_status(id); });
}
Result<runtime::ExecResult> InstrumentedRuntime::exec_sync(const std::string& id, const std::vector<std::string>& cmd,
                                                          int64_t timeout_seconds) {
  return record("exec_sync", [&] { return inner_->exec_sync(id, cmd, timeout_seconds); });
}
Result<std::string> InstrumentedRuntime::exec(const runtime::ExecRequest& request) {
  return record("exec", [&] { return inner_->exec(request); });
}
Result<std::string> InstrumentedRuntime::attach(const runtime::AttachRequest& request) {
  return record("attach", [&] { return inner_->attach(request); });
}
Result<std::string> InstrumentedRuntime::port_forward(const std::string& pod_sandbox_id,
                                                      const std::vector<int32_t>& ports) {
  return record("port_forward", [&] { return inner_->port_forward(pod_sandbox_id, ports); });
}
Status InstrumentedRuntime::reopen_container_log(const std::string& id) {
  return record("reopen_container_log", [&] { return inner_->reopen_container_log(id); });
}
Result<runtime::ContainerStats> InstrumentedRuntime::container_stats(const std::string& id) {
  return record("container_stats", [&] { return inner_->container_stats(id); });
}

Result<std::string> InstrumentedRuntime::pull_image(const runtime::ImageSpec& image,
                                                    const std::optional<runtime::AuthConfig>& auth,
                                                    const runtime::PodSandboxConfig* sandbox_config) {
  return record("pull_image", [&] { return inner_->pull_image(image, auth, sandbox_config); });
}
Result<std::optional<runtime::Image>> InstrumentedRuntime::image_status(const runtime::ImageSpec& image) {
  return record("image_status", [&] { return inner_->image_status(image); });
}
Result<std::vector<runtime::Image>> InstrumentedRuntime::list_images() {
  return record("list_images", [&] { return inner_->list_images(); });
}
Status InstrumentedRuntime::remove_image(const runtime::ImageSpec& image) {
  return record("remove_image", [&] { return inner_->remove_image(image); });
}
Result<std::vector<runtime::FilesystemUsage>> InstrumentedRuntime::image_fs_info() {
  return record("image_fs_info", [&] { return inner_->image_fs_info(); });
}

}  // namespace knode::kubelet
