// The seam between the kubelet and a container runtime. CRI-shaped (a pod is a sandbox
// holding containers; images are pulled by reference), in plain values with no protobuf
// and no Kubernetes API types, so the CRI client (kubelet/cri/) and the Docker Engine
// client (kubelet/docker/) implement it alike and the pod lifecycle never knows which.
//
// Calls are synchronous and may block up to the runtime's request timeout; the kubelet
// runs them off its event loop. Errors are Status values naming the call and the object
// ("CRI StartContainer 3f2a...: DeadlineExceeded: context deadline exceeded"), with an
// errno-style code the caller can branch on: ENOENT for an object the runtime does not
// know, ETIMEDOUT for a deadline, ECONNREFUSED for a runtime that is down.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "knode/status.h"

namespace knode::runtime {

using Labels = std::map<std::string, std::string>;
// Nanoseconds since the Unix epoch, as CRI reports times; 0 when unset.
using UnixNanos = int64_t;

// ---- shared pieces ----

enum class Protocol : uint8_t { kTCP, kUDP, kSCTP };

// CRI's NamespaceMode: POD (shared by the pod), CONTAINER (own), NODE (the host's),
// TARGET (another container's, `target_id`).
enum class NamespaceMode : uint8_t { kPod = 0, kContainer = 1, kNode = 2, kTarget = 3 };
struct NamespaceOptions {
  NamespaceMode network = NamespaceMode::kPod;
  NamespaceMode pid = NamespaceMode::kContainer;
  NamespaceMode ipc = NamespaceMode::kPod;
  std::string target_id;
  bool operator==(const NamespaceOptions&) const = default;
};

// Linux cgroup settings of a container (CRI LinuxContainerResources). 0 leaves one unset.
struct LinuxResources {
  int64_t cpu_period = 0;             // CFS period, microseconds
  int64_t cpu_quota = 0;              // CFS quota, microseconds per period
  int64_t cpu_shares = 0;             // relative weight (2..262144)
  int64_t memory_limit_in_bytes = 0;
  // Memory plus swap (cgroup v1). The kubelet sets it to memory_limit_in_bytes so a
  // container without swap permission cannot swap.
  int64_t memory_swap_limit_in_bytes = 0;
  int64_t oom_score_adj = 0;
  std::string cpuset_cpus, cpuset_mems;
  // cgroup v2 files and values, e.g. {"memory.swap.max", "0"}.
  std::map<std::string, std::string> unified;
  bool operator==(const LinuxResources&) const = default;
};

// A seccomp profile (CRI SecurityProfile). Where it is std::optional, nullopt leaves the
// field unset, and the runtime then applies none (unconfined), as with Kubernetes'
// default of no seccompProfile; CRI's zero value would mean RuntimeDefault instead.
struct SecurityProfile {
  enum class Type : uint8_t { kRuntimeDefault = 0, kUnconfined = 1, kLocalhost = 2 };
  Type type = Type::kRuntimeDefault;
  std::string localhost_ref;  // the profile's path on the node, for kLocalhost
  bool operator==(const SecurityProfile&) const = default;
};

struct ImageSpec {
  std::string image;  // a reference ("127.0.0.1:5000/kubia:1") or an image ID
  Labels annotations;
  bool operator==(const ImageSpec&) const = default;
};

// Credentials for one registry (from a pod's imagePullSecrets).
struct AuthConfig {
  std::string username, password, auth, server_address, identity_token, registry_token;
  bool operator==(const AuthConfig&) const = default;
};

// ---- sandboxes ----

struct PodSandboxMetadata {
  std::string name, uid, ns;  // the pod's name, UID and namespace
  uint32_t attempt = 0;
  bool operator==(const PodSandboxMetadata&) const = default;
};

struct DnsConfig {
  std::vector<std::string> servers, searches, options;
  bool operator==(const DnsConfig&) const = default;
};

struct PortMapping {
  Protocol protocol = Protocol::kTCP;
  int32_t container_port = 0;
  int32_t host_port = 0;
  std::string host_ip;
  bool operator==(const PortMapping&) const = default;
};

struct PodSandboxConfig {
  PodSandboxMetadata metadata;
  // Empty for a host-network pod: it shares the node's UTS namespace, and runc refuses to
  // set a hostname there (RunPodSandbox fails), so upstream's kubelet sends none either.
  std::string hostname;
  std::string log_directory;  // /var/log/pods/<ns>_<name>_<uid>
  DnsConfig dns;
  std::vector<PortMapping> port_mappings;
  Labels labels, annotations;
  // Linux
  std::string cgroup_parent;
  std::map<std::string, std::string> sysctls;
  NamespaceOptions namespaces;  // network kNode for hostNetwork
  bool privileged = false;
  std::optional<int64_t> run_as_user, run_as_group;
  std::vector<int64_t> supplemental_groups;
  std::optional<SecurityProfile> seccomp;
  bool operator==(const PodSandboxConfig&) const = default;
};

enum class SandboxState : uint8_t { kReady = 0, kNotReady = 1 };

struct PodSandbox {
  std::string id;
  PodSandboxMetadata metadata;
  SandboxState state = SandboxState::kNotReady;
  UnixNanos created_at = 0;
  Labels labels, annotations;
  std::string runtime_handler;
  bool operator==(const PodSandbox&) const = default;
};

struct PodSandboxStatus {
  std::string id;
  PodSandboxMetadata metadata;
  SandboxState state = SandboxState::kNotReady;
  UnixNanos created_at = 0;
  std::string ip;                           // the primary pod IP; empty for none
  std::vector<std::string> additional_ips;  // further IPs (dual stack)
  NamespaceOptions namespaces;
  Labels labels, annotations;
  std::string runtime_handler;
  bool operator==(const PodSandboxStatus&) const = default;
};

struct SandboxFilter {
  std::string id;                     // empty: any
  std::optional<SandboxState> state;  // none: any
  Labels label_selector;              // every pair must match
  bool operator==(const SandboxFilter&) const = default;
};

// ---- containers ----

enum class MountPropagation : uint8_t { kPrivate = 0, kHostToContainer = 1, kBidirectional = 2 };
struct Mount {
  std::string container_path, host_path;
  bool readonly = false;
  bool selinux_relabel = false;
  MountPropagation propagation = MountPropagation::kPrivate;
  // An image volume: the image (the ID or reference a pull returned) the runtime mounts,
  // read-only, instead of host_path; image_sub_path a directory inside it.
  ImageSpec image;
  std::string image_sub_path;
  bool operator==(const Mount&) const = default;
};

struct ContainerMetadata {
  std::string name;
  uint32_t attempt = 0;  // the restart count: a new attempt per restart
  bool operator==(const ContainerMetadata&) const = default;
};

struct ContainerSecurity {
  bool privileged = false;
  std::vector<std::string> add_capabilities, drop_capabilities;  // "NET_ADMIN", "ALL"
  std::optional<int64_t> run_as_user, run_as_group;
  std::string run_as_username;
  std::vector<int64_t> supplemental_groups;
  bool readonly_rootfs = false;
  bool no_new_privs = false;
  NamespaceOptions namespaces;
  std::optional<SecurityProfile> seccomp;
  // Paths hidden from and made read-only in the container. containerd applies exactly
  // these lists, so empty means none: the kubelet sends the procMount Default lists for an
  // unprivileged container, as upstream's does.
  std::vector<std::string> masked_paths, readonly_paths;
  bool operator==(const ContainerSecurity&) const = default;
};

struct KeyValue {
  std::string key, value;
  bool operator==(const KeyValue&) const = default;
};

struct ContainerConfig {
  ContainerMetadata metadata;
  ImageSpec image;
  // As the runtime takes them: command replaces the image's ENTRYPOINT and args its CMD;
  // empty keeps the image's.
  std::vector<std::string> command, args;
  std::string working_dir;
  std::vector<KeyValue> envs;
  std::vector<Mount> mounts;
  Labels labels, annotations;
  std::string log_path;  // relative to the sandbox's log_directory: "<name>/<attempt>.log"
  bool stdin_ = false, stdin_once = false, tty = false;
  LinuxResources resources;
  ContainerSecurity security;
  bool operator==(const ContainerConfig&) const = default;
};

enum class ContainerState : uint8_t { kCreated = 0, kRunning = 1, kExited = 2, kUnknown = 3 };
const char* to_string(ContainerState s);  // "CONTAINER_RUNNING"

struct Container {
  std::string id, pod_sandbox_id;
  ContainerMetadata metadata;
  ImageSpec image;
  std::string image_ref;
  ContainerState state = ContainerState::kUnknown;
  UnixNanos created_at = 0;
  Labels labels, annotations;
  bool operator==(const Container&) const = default;
};

struct ContainerStatus {
  std::string id;
  ContainerMetadata metadata;
  ContainerState state = ContainerState::kUnknown;
  UnixNanos created_at = 0, started_at = 0, finished_at = 0;
  int32_t exit_code = 0;
  ImageSpec image;
  std::string image_ref;  // the image ID or digest the container runs
  std::string reason;     // e.g. "OOMKilled", "Completed", "Error"
  std::string message;
  Labels labels, annotations;
  std::vector<Mount> mounts;
  std::string log_path;  // absolute
  bool operator==(const ContainerStatus&) const = default;
};

struct ContainerFilter {
  std::string id, pod_sandbox_id;       // empty: any
  std::optional<ContainerState> state;  // none: any
  Labels label_selector;
  bool operator==(const ContainerFilter&) const = default;
};

struct ExecResult {
  std::string stdout_, stderr_;
  int32_t exit_code = 0;
  bool operator==(const ExecResult&) const = default;
};

// A streaming session the runtime serves itself (CRI Exec and Attach): the kubelet gets its
// URL and passes the client's upgraded connection through to it.
struct ExecRequest {
  std::string container_id;
  std::vector<std::string> cmd;
  bool tty = false, stdin_ = false, stdout_ = false, stderr_ = false;
  bool operator==(const ExecRequest&) const = default;
};
struct AttachRequest {
  std::string container_id;
  bool tty = false, stdin_ = false, stdout_ = false, stderr_ = false;
  bool operator==(const AttachRequest&) const = default;
};

struct ContainerStats {
  std::string id;
  UnixNanos timestamp = 0;
  uint64_t cpu_usage_core_nanoseconds = 0;
  uint64_t memory_working_set_bytes = 0;
  uint64_t writable_layer_used_bytes = 0;
  bool operator==(const ContainerStats&) const = default;
};

// ---- images ----

struct Image {
  std::string id;
  std::vector<std::string> repo_tags, repo_digests;
  uint64_t size = 0;
  bool pinned = false;  // never garbage collected (the sandbox image)
  bool operator==(const Image&) const = default;
};

// Usage of the filesystem that holds the images (image GC thresholds).
struct FilesystemUsage {
  std::string mountpoint;
  uint64_t used_bytes = 0;
  uint64_t capacity_bytes = 0;  // 0: unknown (the kubelet then asks statfs on mountpoint)
  bool operator==(const FilesystemUsage&) const = default;
};

// ---- the runtime ----

struct VersionInfo {
  std::string version;              // of the API: "0.1.0"
  std::string runtime_name;         // "containerd", "docker"
  std::string runtime_version;      // "v2.4.2"
  std::string runtime_api_version;  // "v1", or the Docker Engine API version
  bool operator==(const VersionInfo&) const = default;
};

struct RuntimeCondition {
  std::string type;  // "RuntimeReady", "NetworkReady"
  bool status = false;
  std::string reason, message;
  bool operator==(const RuntimeCondition&) const = default;
};
struct RuntimeStatus {
  std::vector<RuntimeCondition> conditions;
  // Whether every condition of this type is true; false when absent.
  bool condition(const std::string& type) const;
  bool operator==(const RuntimeStatus&) const = default;
};

enum class CgroupDriver : uint8_t { kCgroupfs, kSystemd };
const char* to_string(CgroupDriver d);  // "cgroupfs", "systemd"

class ContainerRuntime {
 public:
  virtual ~ContainerRuntime() = default;

  // The scheme of container IDs in pod status: "containerd" ("containerd://<id>"), "docker".
  virtual std::string id_scheme() const = 0;

  virtual Result<VersionInfo> version() = 0;
  virtual Result<RuntimeStatus> status() = 0;
  // The cgroup driver the runtime uses; the kubelet's must match.
  virtual Result<CgroupDriver> cgroup_driver() = 0;

  // Sandboxes. run_pod_sandbox sets up the pod's network (CNI) and returns its ID.
  virtual Result<std::string> run_pod_sandbox(const PodSandboxConfig& config) = 0;
  // Stops every container of the sandbox and tears its network down; idempotent.
  virtual Status stop_pod_sandbox(const std::string& id) = 0;
  virtual Status remove_pod_sandbox(const std::string& id) = 0;
  virtual Result<PodSandboxStatus> pod_sandbox_status(const std::string& id) = 0;
  virtual Result<std::vector<PodSandbox>> list_pod_sandboxes(const SandboxFilter& filter = {}) = 0;

  // Containers.
  virtual Result<std::string> create_container(const std::string& pod_sandbox_id, const ContainerConfig& config,
                                               const PodSandboxConfig& sandbox_config) = 0;
  virtual Status start_container(const std::string& id) = 0;
  // SIGTERM (or the image's STOPSIGNAL), then SIGKILL after timeout_seconds.
  virtual Status stop_container(const std::string& id, int64_t timeout_seconds) = 0;
  // A running container's cgroup limits, changed in place (in-place pod resize).
  virtual Status update_container_resources(const std::string& id, const LinuxResources& resources) = 0;
  virtual Status remove_container(const std::string& id) = 0;
  virtual Result<std::vector<Container>> list_containers(const ContainerFilter& filter = {}) = 0;
  virtual Result<ContainerStatus> container_status(const std::string& id) = 0;
  // Runs cmd in the container and waits up to timeout_seconds (0: no limit).
  virtual Result<ExecResult> exec_sync(const std::string& id, const std::vector<std::string>& cmd,
                                       int64_t timeout_seconds) = 0;
  // Streaming: the URL of the runtime's streaming server for one session ("http://
  // 127.0.0.1:37xxx/exec/<token>"), which the client's upgraded connection (SPDY or
  // WebSocket) is proxied to. ENOTSUP when the runtime has no streaming server.
  virtual Result<std::string> exec(const ExecRequest& request) = 0;
  virtual Result<std::string> attach(const AttachRequest& request) = 0;
  // Ports of the sandbox's network namespace (empty: the ones the client names).
  virtual Result<std::string> port_forward(const std::string& pod_sandbox_id, const std::vector<int32_t>& ports) = 0;
  // Makes the runtime reopen the container's log file (after the kubelet rotated it).
  virtual Status reopen_container_log(const std::string& id) = 0;
  virtual Result<ContainerStats> container_stats(const std::string& id) = 0;

  // Images. pull_image returns the image reference (ID or digest) pulled.
  virtual Result<std::string> pull_image(const ImageSpec& image, const std::optional<AuthConfig>& auth,
                                         const PodSandboxConfig* sandbox_config) = 0;
  // std::nullopt when the image is not present.
  virtual Result<std::optional<Image>> image_status(const ImageSpec& image) = 0;
  virtual Result<std::vector<Image>> list_images() = 0;
  virtual Status remove_image(const ImageSpec& image) = 0;
  virtual Result<std::vector<FilesystemUsage>> image_fs_info() = 0;
};

using ContainerRuntimePtr = std::unique_ptr<ContainerRuntime>;

}  // namespace knode::runtime
