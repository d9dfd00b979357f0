#include "cri/cri_runtime.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <optional>

#include "cri/convert.h"
#include "knode/log.h"
#include "kubelet/cri/api.grpc.pb.h"

namespace knode::cri {

namespace rt = knode::runtime;
using std::chrono::milliseconds;

namespace {

// The largest answer accepted: a node's ListContainers can be big. Upstream's kubelet
// uses the same 16 MiB.
constexpr int kMaxMessageBytes = 16 * 1024 * 1024;
// What the kubelet reports as the CRI version it speaks, as upstream's does.
constexpr const char* kKubeRuntimeApiVersion = "0.1.0";

// One unary call with its deadline (none when timeout is nullopt), logged at -v=5.
template <typename Stub, typename Req, typename Resp>
Status invoke(Stub* stub,
              grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
              const Req& req, Resp* resp, std::optional<milliseconds> timeout,
              std::string_view call, std::string_view object) {
  grpc::ClientContext ctx;
  if (timeout) ctx.set_deadline(std::chrono::system_clock::now() + *timeout);
  const auto start = std::chrono::steady_clock::now();
  const grpc::Status s = (stub->*method)(&ctx, req, resp);
  KLOGV(5, "CRI call")
      .kv("method", call)
      .kv("object", object)
      .kv("code", code_name(s.error_code()))
      .kv("tookMs", std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() -
                                                             start)
                        .count());
  return from_grpc(s, call, object);
}

Status missing_part(std::string_view call, std::string_view object, std::string_view part) {
  std::string msg = "CRI ";
  msg += call;
  if (!object.empty()) {
    msg += ' ';
    msg += object;
  }
  msg += ": the runtime answered without ";
  msg += part;
  return Status::Error(std::move(msg), EIO);
}

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

struct CriRuntime::Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::RuntimeService::Stub> runtime;
  std::unique_ptr<pb::ImageService::Stub> image;
};

Result<std::string> grpc_target(const std::string& endpoint) {
  static constexpr std::string_view kUnix = "unix://";
  std::string path;
  if (endpoint.starts_with(kUnix)) {
    path = endpoint.substr(kUnix.size());
  } else if (endpoint.find("://") == std::string::npos) {
    path = endpoint;
  } else {
    return Status::Error("CRI endpoint " + endpoint +
                             ": only unix sockets are supported (unix:///path or /path)",
                         EINVAL);
  }
  if (path.empty() || path.front() != '/') {
    return Status::Error("CRI endpoint \"" + endpoint + "\": not an absolute socket path",
                         EINVAL);
  }
  return std::string(kUnix) + path;
}

Result<std::unique_ptr<CriRuntime>> CriRuntime::connect(const CriOptions& options) {
  auto target = grpc_target(options.endpoint);
  if (!target) return target.status();
  if (options.request_timeout <= milliseconds(0)) {
    return Status::Error("CRI runtime request timeout must be positive", EINVAL);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // gRPC's default back-off grows to 2 minutes: a runtime restarted under us would stay
  // unreachable that long. Upstream's kubelet starts at 100 ms and caps it at 3 s, and
  // gives a connection attempt 5 s (gRPC's "min reconnect back-off" is that timeout).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 3000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);
  auto stubs = std::make_unique<Stubs>();
  stubs->channel = grpc::CreateCustomChannel(*target, grpc::InsecureChannelCredentials(), args);
  stubs->runtime = pb::RuntimeService::NewStub(stubs->channel);
  stubs->image = pb::ImageService::NewStub(stubs->channel);
  KLOGV(2, "CRI runtime client")
      .kv("endpoint", *target)
      .kv("requestTimeout", std::to_string(options.request_timeout.count()) + "ms");
  return std::unique_ptr<CriRuntime>(new CriRuntime(options, std::move(stubs)));
}

CriRuntime::CriRuntime(CriOptions options, std::unique_ptr<Stubs> stubs)
    : options_(std::move(options)), stubs_(std::move(stubs)) {}

CriRuntime::~CriRuntime() = default;

// ---- version, status, configuration ----

Result<rt::VersionInfo> CriRuntime::fetch_version() const {
  pb::VersionRequest req;
  req.set_version(kKubeRuntimeApiVersion);
  pb::VersionResponse resp;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::Version, req, &resp,
                    options_.request_timeout, "Version", "");
  if (!s) return s;
  rt::VersionInfo v = from_proto(resp);
  std::lock_guard lock(mu_);
  if (id_scheme_.empty()) id_scheme_ = lowercase(v.runtime_name);
  return v;
}

std::string CriRuntime::id_scheme() const {
  {
    std::lock_guard lock(mu_);
    if (!id_scheme_.empty()) return id_scheme_;
  }
  auto v = fetch_version();
  if (!v) {
    KLOG(WARNING, "container ID scheme unknown: the runtime did not answer Version")
        .kv("err", v.error());
    return "";
  }
  std::lock_guard lock(mu_);
  return id_scheme_;
}

Result<rt::VersionInfo> CriRuntime::version() { return fetch_version(); }

Result<rt::RuntimeStatus> CriRuntime::status() {
  pb::StatusRequest req;
  pb::StatusResponse resp;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::Status, req, &resp,
                    options_.request_timeout, "Status", "");
  if (!s) return s;
  return from_proto(resp.status());
}

Result<rt::CgroupDriver> CriRuntime::cgroup_driver() {
  pb::RuntimeConfigRequest req;
  pb::RuntimeConfigResponse resp;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::RuntimeConfig, req, &resp,
                    options_.request_timeout, "RuntimeConfig", "");
  if (!s) return s;
  // Without the Linux part the enum's zero value would claim systemd; say "unknown".
  if (!resp.has_linux()) {
    return Status::Error("CRI RuntimeConfig: the runtime answered without a Linux configuration",
                         ENOTSUP);
  }
  return from_proto(resp.linux().cgroup_driver());
}

// ---- sandboxes ----

Result<std::string> CriRuntime::run_pod_sandbox(const rt::PodSandboxConfig& config) {
  pb::RunPodSandboxRequest req;
  to_proto(config, req.mutable_config());
  pb::RunPodSandboxResponse resp;
  const std::string object = config.metadata.ns + "/" + config.metadata.name;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::RunPodSandbox, req, &resp,
                    options_.request_timeout, "RunPodSandbox", object);
  if (!s) return s;
  if (resp.pod_sandbox_id().empty()) return missing_part("RunPodSandbox", object, "a sandbox ID");
  return resp.pod_sandbox_id();
}

Status CriRuntime::stop_pod_sandbox(const std::string& id) {
  pb::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  pb::StopPodSandboxResponse resp;
  return invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::StopPodSandbox, req, &resp,
                options_.request_timeout, "StopPodSandbox", id);
}

Status CriRuntime::remove_pod_sandbox(const std::string& id) {
  pb::RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  pb::RemovePodSandboxResponse resp;
  return invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::RemovePodSandbox, req, &resp,
                options_.request_timeout, "RemovePodSandbox", id);
}

Result<rt::PodSandboxStatus> CriRuntime::pod_sandbox_status(const std::string& id) {
  pb::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(id);
  pb::PodSandboxStatusResponse resp;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::PodSandboxStatus, req, &resp,
                    options_.request_timeout, "PodSandboxStatus", id);
  if (!s) return s;
  if (!resp.has_status()) return missing_part("PodSandboxStatus", id, "a status");
  return from_proto(resp.status());
}

Result<std::vector<rt::PodSandbox>> CriRuntime::list_pod_sandboxes(
    const rt::SandboxFilter& filter) {
  pb::ListPodSandboxRequest req;
  if (!(filter == rt::SandboxFilter{})) to_proto(filter, req.mutable_filter());
  pb::ListPodSandboxResponse resp;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::ListPodSandbox, req, &resp,
                    options_.request_timeout, "ListPodSandbox", "");
  if (!s) return s;
  std::vector<rt::PodSandbox> out;
  out.reserve(resp.items_size());
  for (const auto& item : resp.items()) out.push_back(from_proto(item));
  return out;
}

// ---- containers ----

Result<std::string> CriRuntime::create_container(const std::string& pod_sandbox_id,
                                                 const rt::ContainerConfig& config,
                                                 const rt::PodSandboxConfig& sandbox_config) {
  pb::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod_sandbox_id);
  to_proto(config, req.mutable_config());
  to_proto(sandbox_config, req.mutable_sandbox_config());
  pb::CreateContainerResponse resp;
  const std::string object = config.metadata.name + " in sandbox " + pod_sandbox_id;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::CreateContainer, req, &resp,
                    options_.request_timeout, "CreateContainer", object);
  if (!s) return s;
  if (resp.container_id().empty()) return missing_part("CreateContainer", object, "a container ID");
  return resp.container_id();
}

Status CriRuntime::start_container(const std::string& id) {
  pb::StartContainerRequest req;
  req.set_container_id(id);
  pb::StartContainerResponse resp;
  return invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::StartContainer, req, &resp,
                options_.request_timeout, "StartContainer", id);
}

Status CriRuntime::update_container_resources(const std::string& id, const runtime::LinuxResources& resources) {
  pb::UpdateContainerResourcesRequest req;
  req.set_container_id(id);
  to_proto(resources, req.mutable_linux());
  pb::UpdateContainerResourcesResponse resp;
  return invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::UpdateContainerResources, req, &resp,
                options_.request_timeout, "UpdateContainerResources", id);
}

Status CriRuntime::stop_container(const std::string& id, int64_t timeout_seconds) {
  pb::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(timeout_seconds);
  pb::StopContainerResponse resp;
  // The runtime waits up to the grace period before it kills; the call may take that long.
  const milliseconds deadline =
      options_.request_timeout + std::chrono::seconds(std::max<int64_t>(timeout_seconds, 0));
  return invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::StopContainer, req, &resp,
                deadline, "StopContainer", id);
}

Status CriRuntime::remove_container(const std::string& id) {
  pb::RemoveContainerRequest req;
  req.set_container_id(id);
  pb::RemoveContainerResponse resp;
  return invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::RemoveContainer, req, &resp,
                options_.request_timeout, "RemoveContainer", id);
}

Result<std::vector<rt::Container>> CriRuntime::list_containers(const rt::ContainerFilter& filter) {
  pb::ListContainersRequest req;
  if (!(filter == rt::ContainerFilter{})) to_proto(filter, req.mutable_filter());
  pb::ListContainersResponse resp;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::ListContainers, req, &resp,
                    options_.request_timeout, "ListContainers", "");
  if (!s) return s;
  std::vector<rt::Container> out;
  out.reserve(resp.containers_size());
  for (const auto& c : resp.containers()) out.push_back(from_proto(c));
  return out;
}

Result<rt::ContainerStatus> CriRuntime::container_status(const std::string& id) {
  pb::ContainerStatusRequest req;
  req.set_container_id(id);
  pb::ContainerStatusResponse resp;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::ContainerStatus, req, &resp,
                    options_.request_timeout, "ContainerStatus", id);
  if (!s) return s;
  if (!resp.has_status()) return missing_part("ContainerStatus", id, "a status");
  return from_proto(resp.status());
}

Result<rt::ExecResult> CriRuntime::exec_sync(const std::string& id,
                                             const std::vector<std::string>& cmd,
                                             int64_t timeout_seconds) {
  pb::ExecSyncRequest req;
  req.set_container_id(id);
  for (const auto& arg : cmd) req.add_cmd(arg);
  req.set_timeout(timeout_seconds);
  pb::ExecSyncResponse resp;
  // The command's own timeout, plus the request timeout for the runtime to end it and
  // answer; no timeout means none for the call either.
  std::optional<milliseconds> deadline;
  if (timeout_seconds > 0) {
    deadline = options_.request_timeout + std::chrono::seconds(timeout_seconds);
  }
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::ExecSync, req, &resp,
                    deadline, "ExecSync", id);
  if (!s) return s;
  return from_proto(resp);
}

Result<std::string> CriRuntime::exec(const rt::ExecRequest& request) {
  pb::ExecRequest req;
  to_proto(request, &req);
  pb::ExecResponse resp;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::Exec, req, &resp, options_.request_timeout,
                    "Exec", request.container_id);
  if (!s) return s;
  if (resp.url().empty()) return missing_part("Exec", request.container_id, "a URL");
  return resp.url();
}

Result<std::string> CriRuntime::attach(const rt::AttachRequest& request) {
  pb::AttachRequest req;
  to_proto(request, &req);
  pb::AttachResponse resp;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::Attach, req, &resp, options_.request_timeout,
                    "Attach", request.container_id);
  if (!s) return s;
  if (resp.url().empty()) return missing_part("Attach", request.container_id, "a URL");
  return resp.url();
}

Result<std::string> CriRuntime::port_forward(const std::string& pod_sandbox_id, const std::vector<int32_t>& ports) {
  pb::PortForwardRequest req;
  req.set_pod_sandbox_id(pod_sandbox_id);
  for (int32_t p : ports) req.add_port(p);
  pb::PortForwardResponse resp;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::PortForward, req, &resp,
                    options_.request_timeout, "PortForward", pod_sandbox_id);
  if (!s) return s;
  if (resp.url().empty()) return missing_part("PortForward", pod_sandbox_id, "a URL");
  return resp.url();
}

Status CriRuntime::reopen_container_log(const std::string& id) {
  pb::ReopenContainerLogRequest req;
  req.set_container_id(id);
  pb::ReopenContainerLogResponse resp;
  return invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::ReopenContainerLog, req, &resp,
                options_.request_timeout, "ReopenContainerLog", id);
}

Result<rt::ContainerStats> CriRuntime::container_stats(const std::string& id) {
  pb::ContainerStatsRequest req;
  req.set_container_id(id);
  pb::ContainerStatsResponse resp;
  Status s = invoke(stubs_->runtime.get(), &pb::RuntimeService::Stub::ContainerStats, req, &resp,
                    options_.request_timeout, "ContainerStats", id);
  if (!s) return s;
  if (!resp.has_stats()) return missing_part("ContainerStats", id, "stats");
  return from_proto(resp.stats());
}

// ---- images ----

Result<std::string> CriRuntime::pull_image(const rt::ImageSpec& image,
                                           const std::optional<rt::AuthConfig>& auth,
                                           const rt::PodSandboxConfig* sandbox_config) {
  pb::PullImageRequest req;
  to_proto(image, req.mutable_image());
  if (auth) to_proto(*auth, req.mutable_auth());
  if (sandbox_config) to_proto(*sandbox_config, req.mutable_sandbox_config());
  pb::PullImageResponse resp;
  Status s = invoke(stubs_->image.get(), &pb::ImageService::Stub::PullImage, req, &resp,
                    options_.request_timeout, "PullImage", image.image);
  if (!s) return s;
  if (resp.image_ref().empty()) return missing_part("PullImage", image.image, "an image reference");
  return resp.image_ref();
}

Result<std::optional<rt::Image>> CriRuntime::image_status(const rt::ImageSpec& image) {
  pb::ImageStatusRequest req;
  to_proto(image, req.mutable_image());
  pb::ImageStatusResponse resp;
  Status s = invoke(stubs_->image.get(), &pb::ImageService::Stub::ImageStatus, req, &resp,
                    options_.request_timeout, "ImageStatus", image.image);
  // CRI answers "absent" with an empty response; some runtimes say NOT_FOUND instead.
  if (!s && s.error_number() == ENOENT) return std::optional<rt::Image>();
  if (!s) return s;
  if (!resp.has_image() || resp.image().id().empty()) return std::optional<rt::Image>();
  return std::optional<rt::Image>(from_proto(resp.image()));
}

Result<std::vector<rt::Image>> CriRuntime::list_images() {
  pb::ListImagesRequest req;
  pb::ListImagesResponse resp;
  Status s = invoke(stubs_->image.get(), &pb::ImageService::Stub::ListImages, req, &resp,
                    options_.request_timeout, "ListImages", "");
  if (!s) return s;
  std::vector<rt::Image> out;
  out.reserve(resp.images_size());
  for (const auto& i : resp.images()) out.push_back(from_proto(i));
  return out;
}

Status CriRuntime::remove_image(const rt::ImageSpec& image) {
  pb::RemoveImageRequest req;
  to_proto(image, req.mutable_image());
  pb::RemoveImageResponse resp;
  return invoke(stubs_->image.get(), &pb::ImageService::Stub::RemoveImage, req, &resp,
                options_.request_timeout, "RemoveImage", image.image);
}

Result<std::vector<rt::FilesystemUsage>> CriRuntime::image_fs_info() {
  pb::ImageFsInfoRequest req;
  pb::ImageFsInfoResponse resp;
  Status s = invoke(stubs_->image.get(), &pb::ImageService::Stub::ImageFsInfo, req, &resp,
                    options_.request_timeout, "ImageFsInfo", "");
  if (!s) return s;
  std::vector<rt::FilesystemUsage> out;
  for (const auto& fs : resp.image_filesystems()) out.push_back(from_proto(fs));
  return out;
}

}  // namespace knode::cri
