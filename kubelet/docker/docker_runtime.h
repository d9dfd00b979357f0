// runtime::ContainerRuntime over the Docker Engine API (dockerd 20.10 / API 1.41 and
// newer) on its unix socket, with no shim between: what dockershim did inside the kubelet
// until 1.24, and cri-dockerd does as a separate process.
//
// - A pod sandbox is a pause container with network mode "none"; the backend runs the
//   node's CNI plugins on its network namespace (ADD after it starts, DEL when it stops or
//   goes). App and init containers join its network and IPC namespaces, and its PID
//   namespace with shareProcessNamespace.
// - Everything knode needs is on the containers (names and labels, convert.h): a restarted
//   knode lists them again, finds pod IPs in the pause containers' namespaces, and resumes
//   the log copies where the files end. Containers without knode's labels are invisible:
//   listed by no call, refused by every call as unknown (ENOENT).
// - Logs: containers log to dockerd's json-file driver; a copier thread per running
//   container turns them into the CRI format at ContainerConfig.log_path (log_copier.h),
//   so the kubelet reads, links and rotates them as a containerd container's.
// - Every call has a deadline: the request timeout (StopContainer adds its grace period,
//   ExecSync uses its own timeout, pulls the request timeout). Errors name the call and
//   the object ("docker StartContainer 3f2a...: 500 Internal Server Error: ...") and carry
//   runtime.h's codes: ENOENT for a 404 (or a container that is not knode's), ETIMEDOUT,
//   ECONNREFUSED when dockerd is down, ENOTSUP, else EIO.
//
// Thread-safe: calls may come from several workers at once; each uses its own connection.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "docker/cni.h"
#include "docker/http_client.h"
#include "knode/runtime.h"
#include "knode/status.h"
#include "streaming/server.h"

namespace knode::docker {

class LogCopier;

inline constexpr const char* kDefaultEndpoint = "unix:///var/run/docker.sock";
inline constexpr const char* kDefaultPodInfraImage = "registry.k8s.io/pause:3.10";

struct DockerOptions {
  std::string endpoint = kDefaultEndpoint;  // --docker-endpoint: "unix:///path" or "/path"
  std::chrono::milliseconds request_timeout = std::chrono::minutes(2);
  std::string pod_infra_image = kDefaultPodInfraImage;  // pulled when missing, never GCed
  CniOptions cni;
  // Raise every oom_score_adj to at least this process's own (containerd's
  // restrict_oom_score_adj): runc cannot lower it without CAP_SYS_RESOURCE. Also on when
  // this process lacks that capability, as dockerd beside it then does too.
  bool restrict_oom_score_adj = false;
  // json-file options of every container: dockerd's copy of the logs stays bounded while
  // the CRI copy is rotated by the kubelet.
  std::map<std::string, std::string> json_log_options = {{"max-size", "10m"}, {"max-file", "2"}};
  // Where the log copier resumes after an interrupted answer (dockerd restarted).
  std::chrono::milliseconds log_retry = std::chrono::seconds(1);
};

class DockerRuntime final : public runtime::ContainerRuntime, private streaming::Backend {
 public:
  // Checks the options; dockerd is first asked at the first call (the API version is
  // negotiated then), so a daemon that is down makes calls fail with ECONNREFUSED until
  // it is up.
  static Result<std::unique_ptr<DockerRuntime>> connect(DockerOptions options);
  ~DockerRuntime() override;  // ends the log copies (the containers keep running)

  std::string id_scheme() const override { return "docker"; }

  // runtime_api_version is the negotiated Engine API version ("1.41").
  Result<runtime::VersionInfo> version() override;
  // RuntimeReady: dockerd answers /_ping. NetworkReady: the CNI configuration loads and
  // its plugins exist.
  Result<runtime::RuntimeStatus> status() override;
  // dockerd's /info CgroupDriver; ENOTSUP for one that is neither cgroupfs nor systemd.
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
  // At the timeout the command's process is killed (dockerd has no call for it) and the
  // call fails with ETIMEDOUT, as CRI's ExecSync does.
  Result<runtime::ExecResult> exec_sync(const std::string& id, const std::vector<std::string>& cmd,
                                        int64_t timeout_seconds) override;
  // A streaming server of knode's own (streaming/server.h, started at the first call, on
  // 127.0.0.1), as dockershim had: exec and attach through dockerd's exec and attach
  // endpoints on hijacked connections, port-forward by a connection made inside the
  // sandbox's network namespace to its loopback.
  Result<std::string> exec(const runtime::ExecRequest& request) override;
  Result<std::string> attach(const runtime::AttachRequest& request) override;
  Result<std::string> port_forward(const std::string& pod_sandbox_id, const std::vector<int32_t>& ports) override;
  // The copier writes to a new file at the log path (the kubelet renamed the old one).
  Status reopen_container_log(const std::string& id) override;
  Result<runtime::ContainerStats> container_stats(const std::string& id) override;

  Result<std::string> pull_image(const runtime::ImageSpec& image,
                                 const std::optional<runtime::AuthConfig>& auth,
                                 const runtime::PodSandboxConfig* sandbox_config) override;
  Result<std::optional<runtime::Image>> image_status(const runtime::ImageSpec& image) override;
  Result<std::vector<runtime::Image>> list_images() override;
  // Every tag of the image, then the image; an absent image is not an error.
  Status remove_image(const runtime::ImageSpec& image) override;
  Result<std::vector<runtime::FilesystemUsage>> image_fs_info() override;

  const DockerOptions& options() const { return options_; }
  // Log copies in progress (tests: none is left after the containers went).
  size_t active_log_copies() const;

 private:
  struct Answer;
  DockerRuntime(DockerOptions options, std::string socket, std::optional<int64_t> oom_floor);

  Deadline after(std::chrono::milliseconds d) const;
  Result<std::string> api_prefix();
  Result<HttpResponse> send(const std::string& method, const std::string& path,
                            const std::string& body, std::string_view call, std::string_view object,
                            std::chrono::milliseconds timeout,
                            std::vector<std::pair<std::string, std::string>> headers = {});
  Result<nlohmann::json> get_json(const std::string& path, std::string_view call,
                                  std::string_view object);
  // Waits for a finished exec's exit code (recorded a moment after its output ends).
  Result<int32_t> exec_exit_code(const std::string& exec_id, const std::string& id, std::string_view call);

  // streaming::Backend: one session of the streaming server each.
  // The streaming server (started at the first call) for a session on one of knode's
  // running containers or sandboxes.
  Result<streaming::Server*> stream_server(const std::string& id, const char* type, std::string_view call);
  Result<int> exec(const runtime::ExecRequest& request, streaming::Pipe& pipe) override;
  Status attach(const runtime::AttachRequest& request, streaming::Pipe& pipe) override;
  Status port_forward(const std::string& sandbox_id, int32_t port, streaming::Pipe& pipe) override;
  // GET /containers/{id}/json of one of knode's containers of `type` (a sandbox or a
  // container): ENOENT for anything else.
  Result<nlohmann::json> inspect_owned(const std::string& id, const char* type,
                                       std::string_view call, bool size = false);
  Result<std::string> create(const std::string& name, const nlohmann::json& body,
                             std::string_view call, std::string_view object);
  Status stop(const std::string& id, int64_t grace_seconds, std::string_view call);
  Status remove(const std::string& id, std::string_view call);
  Result<std::vector<nlohmann::json>> list(
      const std::map<std::string, std::vector<std::string>>& filters, std::string_view call);
  Status ensure_pod_infra_image();
  Result<nlohmann::json> image_json(const std::string& ref, std::string_view call);
  std::vector<std::string> sandbox_ips(const std::string& id, const nlohmann::json& inspect);
  CniPod cni_pod(const std::string& id, const nlohmann::json& inspect) const;
  Status teardown_network(const std::string& id, const nlohmann::json& inspect);
  Status write_resolv_conf(const nlohmann::json& inspect, const runtime::DnsConfig& dns);
  bool pinned(const runtime::Image& image) const;

  // Log copies.
  void adopt(const std::string& id, const nlohmann::json& labels, runtime::ContainerState state);
  Status start_copy(const nlohmann::json& inspect, bool fresh);
  void end_copy(const std::string& id);
  void reap_copies();  // guarded by copies_mu_

  const DockerOptions options_;
  const UnixHttpClient client_;
  const CniNetwork cni_;
  const std::optional<int64_t> oom_floor_;

  std::mutex mu_;
  std::string api_;                                      // guarded by mu_: "/v1.41"
  std::map<std::string, std::vector<std::string>> ips_;  // guarded by mu_: sandbox -> IPs
  std::map<std::string, nlohmann::json> images_;         // guarded by mu_: image ID -> inspect

  mutable std::mutex copies_mu_;
  std::map<std::string, std::unique_ptr<LogCopier>> copies_;  // guarded by copies_mu_
  std::set<std::string> seen_;  // guarded by copies_mu_: containers whose copy was decided

  std::mutex stream_mu_;
  std::unique_ptr<streaming::Server> stream_server_;  // guarded by stream_mu_; made at first use
};

}  // namespace knode::docker
