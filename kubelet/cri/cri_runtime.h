// runtime::ContainerRuntime over CRI (runtime.v1) gRPC on a unix socket: containerd,
// CRI-O, or anything else that serves the kubelet's API.
//
// Every call carries a deadline: the request timeout (--runtime-request-timeout, 2 minutes
// by default, as upstream's kubelet), which pulls may use in full. StopContainer adds its
// grace period to it and ExecSync its own timeout, so the runtime has the request timeout
// as a margin beyond the command's; ExecSync without a timeout has no deadline, as
// upstream. Errors carry runtime.h's errno-style codes (see cri/convert.h, from_grpc).
//
// Thread-safe: calls may come from several workers at once.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "knode/runtime.h"
#include "knode/status.h"

namespace knode::cri {

inline constexpr const char* kDefaultEndpoint = "unix:///run/containerd/containerd.sock";
inline constexpr std::chrono::milliseconds kDefaultRequestTimeout = std::chrono::minutes(2);

struct CriOptions {
  std::string endpoint = kDefaultEndpoint;  // "unix:///path" or "/path"
  std::chrono::milliseconds request_timeout = kDefaultRequestTimeout;
};

// The gRPC target for a CRI endpoint: "unix:///path" and "/path" become "unix:///path".
// Other schemes (tcp://, npipe://) and relative paths are EINVAL.
Result<std::string> grpc_target(const std::string& endpoint);

class CriRuntime final : public runtime::ContainerRuntime {
 public:
  // Connects lazily: a runtime that is down makes calls fail with ECONNREFUSED, and they
  // work again once it is up (reconnect back-off at most 3 s, as upstream's kubelet).
  static Result<std::unique_ptr<CriRuntime>> connect(const CriOptions& options);
  ~CriRuntime() override;

  // The runtime's name from Version, lowercased ("containerd", "cri-o"), asked once: by
  // the first successful version() or by this call. Empty while the runtime has not
  // answered; the kubelet calls version() at start-up, as upstream's does.
  std::string id_scheme() const override;

  Result<runtime::VersionInfo> version() override;
  Result<runtime::RuntimeStatus> status() override;
  // ENOTSUP when the runtime does not implement RuntimeConfig (containerd 1.6) or
  // answers without a Linux part: the kubelet then keeps its own --cgroup-driver.
  Result<runtime::CgroupDriver> cgroup_driver() override;

  Result<std::string> run_pod_sandbox(const runtime::PodSandboxConfig& config) override;
  Status stop_pod_sandbox(const std::string& id) override;
  Status remove_pod_sandbox(const std::string& id) override;
  Result<runtime::PodSandboxStatus> pod_sandbox_status(const std::string& id) override;
  Result<std::vector<runtime::PodSandbox>> list_pod_sandboxes(
      const runtime::SandboxFilter& filter) override;

  Result<std::string> create_container(const std::string& pod_sandbox_id,
                                       const runtime::ContainerConfig& config,
                                       const runtime::PodSandboxConfig& sandbox_config) override;
  Status start_container(const std::string& id) override;
  Status update_container_resources(const std::string& id, const runtime::LinuxResources& resources) override;
  Status stop_container(const std::string& id, int64_t timeout_seconds) override;
  Status remove_container(const std::string& id) override;
  Result<std::vector<runtime::Container>> list_containers(
      const runtime::ContainerFilter& filter) override;
  Result<runtime::ContainerStatus> container_status(const std::string& id) override;
  Result<runtime::ExecResult> exec_sync(const std::string& id, const std::vector<std::string>& cmd,
                                        int64_t timeout_seconds) override;
  // Streaming URLs: answered at once by the runtime (request timeout); an empty URL is an
  // error naming the call.
  Result<std::string> exec(const runtime::ExecRequest& request) override;
  Result<std::string> attach(const runtime::AttachRequest& request) override;
  Result<std::string> port_forward(const std::string& pod_sandbox_id, const std::vector<int32_t>& ports) override;
  Status reopen_container_log(const std::string& id) override;
  Result<runtime::ContainerStats> container_stats(const std::string& id) override;

  Result<std::string> pull_image(const runtime::ImageSpec& image,
                                 const std::optional<runtime::AuthConfig>& auth,
                                 const runtime::PodSandboxConfig* sandbox_config) override;
  // nullopt when the runtime answers without an image, or NOT_FOUND.
  Result<std::optional<runtime::Image>> image_status(const runtime::ImageSpec& image) override;
  Result<std::vector<runtime::Image>> list_images() override;
  Status remove_image(const runtime::ImageSpec& image) override;
  // The image filesystems only (not CRI's container_filesystems).
  Result<std::vector<runtime::FilesystemUsage>> image_fs_info() override;

  const CriOptions& options() const { return options_; }

 private:
  struct Stubs;
  CriRuntime(CriOptions options, std::unique_ptr<Stubs> stubs);
  Result<runtime::VersionInfo> fetch_version() const;

  CriOptions options_;
  std::unique_ptr<Stubs> stubs_;
  mutable std::mutex mu_;
  mutable std::string id_scheme_;  // guarded by mu_
};

}  // namespace knode::cri
