// The runtime seam's values (include/knode/runtime.h) as Docker Engine API JSON and back.
// Pure: no I/O, so every mapping is unit-tested both ways.
//
// What knode keeps on a Docker container, so that a restarted knode rebuilds its state
// from dockerd alone (dockershim's keys where it had one):
//
//   name    k8s_POD_<pod>_<namespace>_<uid>_<attempt>               a sandbox (pause)
//           k8s_<container>_<pod>_<namespace>_<uid>_<attempt>       a container
//           (a "_<random>" suffix when the name was taken)
//   labels  the kubelet's labels as they are; each annotation as "annotation.<key>";
//           io.kubernetes.docker.type = podsandbox | container;
//           io.kubernetes.sandbox.id (containers: their sandbox);
//           io.kubernetes.container.logpath (containers: the CRI log's absolute path);
//           io.knode.docker.port-mappings (sandboxes: their host ports, JSON).
//
// Only containers with io.kubernetes.docker.type and the kubelet's pod UID label are
// knode's (owned()); every call refuses other containers as if they did not exist.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "knode/runtime.h"
#include "knode/status.h"

namespace knode::docker {

using nlohmann::json;

inline constexpr char kTypeLabel[] = "io.kubernetes.docker.type";
inline constexpr char kTypeSandbox[] = "podsandbox";
inline constexpr char kTypeContainer[] = "container";
inline constexpr char kSandboxIdLabel[] = "io.kubernetes.sandbox.id";
inline constexpr char kLogPathLabel[] = "io.kubernetes.container.logpath";
inline constexpr char kAnnotationPrefix[] = "annotation.";
inline constexpr char kPortMappingsLabel[] = "io.knode.docker.port-mappings";

// ---- API versions ----

// The API versions this client speaks: 1.41 (Docker 20.10, Debian 12) up to 1.47.
inline constexpr char kMinApiVersion[] = "1.41";
inline constexpr char kMaxApiVersion[] = "1.47";
// -1, 0, 1 comparing "1.41"-style versions numerically.
int compare_api_versions(std::string_view a, std::string_view b);
// The version to use with the daemon that answered GET /version: the lower of its
// ApiVersion and kMaxApiVersion. ENOTSUP, naming both, when the daemon is older than 1.41
// or no longer accepts anything up to kMaxApiVersion (its MinAPIVersion is higher).
Result<std::string> negotiate_api_version(const json& version);

// ---- names and labels ----

std::string sandbox_name(const runtime::PodSandboxMetadata& m);
std::string container_name(const runtime::ContainerMetadata& c,
                           const runtime::PodSandboxMetadata& pod);

struct ParsedName {
  bool sandbox = false;
  std::string container;  // "POD" for a sandbox
  runtime::PodSandboxMetadata pod;
  uint32_t attempt = 0;  // the container's (or the sandbox's) attempt
};
// Parses a name made above (a leading '/', as dockerd lists names, is ignored).
std::optional<ParsedName> parse_name(std::string_view name);

// The labels dockerd stores: the kubelet's labels, annotations prefixed, knode's own.
std::map<std::string, std::string> docker_labels(
    const runtime::Labels& labels, const runtime::Labels& annotations,
    const std::map<std::string, std::string>& internal);
// Back: the kubelet's labels (knode's own keys removed) and the annotations.
void split_labels(const json& docker, runtime::Labels* labels, runtime::Labels* annotations);
std::string label_of(const json& docker_labels, const std::string& key);
// Whether knode created the container with these labels.
bool owned(const json& docker_labels);

// ---- what knode asks dockerd to create ----

struct SandboxCreate {
  std::string image;  // the pause image
  // Without CAP_SYS_RESOURCE, runc cannot lower oom_score_adj below the daemon's: every
  // value is raised to at least floor (containerd's restrict_oom_score_adj).
  std::optional<int64_t> oom_score_adj_floor;
  std::map<std::string, std::string> log_options;
};
// POST /containers/create for a pod's pause container.
json sandbox_create_body(const runtime::PodSandboxConfig& config, const SandboxCreate& how);

struct ContainerCreate {
  std::string sandbox_id;    // the pause container whose namespaces the container joins
  std::string log_path;      // absolute: the sandbox's log_directory + config.log_path
  std::string seccomp_json;  // a Localhost profile's contents, read by the caller
  std::optional<int64_t> oom_score_adj_floor;
  std::map<std::string, std::string> log_options;
};
// POST /containers/create for an app or init container; EINVAL for what dockerd cannot
// express (a mount path with ':').
// POST /containers/{id}/update for a resize: shares, CFS quota (-1: none) and period,
// memory (Docker cannot remove a memory limit once set; 0 leaves it as it is).
json update_resources_body(const runtime::LinuxResources& r);

Result<json> container_create_body(const runtime::ContainerConfig& config,
                                   const runtime::PodSandboxConfig& sandbox,
                                   const ContainerCreate& how);

// ---- what dockerd answers ----

// GET /containers/json?all=1 items; the name tells the metadata (nullopt: not a name
// knode makes).
std::optional<runtime::PodSandbox> sandbox_from_list(const json& item);
std::optional<runtime::Container> container_from_list(const json& item);
runtime::ContainerState state_from_list(std::string_view state);

// GET /containers/{id}/json of a pause container; `ips` as the CNI left them.
Result<runtime::PodSandboxStatus> sandbox_status_from_inspect(const json& inspect,
                                                              const std::vector<std::string>& ips);
// GET /containers/{id}/json of a container: state, times, exit code and the reason as
// CRI runtimes give it (OOMKilled, Completed, Error; StartError when it never ran). With
// its image's GET /images/{id}/json (null when unknown), the image is named by its first
// tag and image_ref is its first repo digest, as containerd reports them.
Result<runtime::ContainerStatus> container_status_from_inspect(const json& inspect,
                                                               const json& image);
runtime::SandboxState sandbox_state_of(const json& inspect);

// An image from GET /images/{name}/json or /images/json ("<none>" tags dropped).
runtime::Image image_from_json(const json& image);
// The reference a container's image_ref reports: the image's first repo digest, else its ID.
std::string image_ref_of(const json& image);

// ContainerStats from one GET /containers/{id}/stats?stream=false sample and SizeRw.
runtime::ContainerStats stats_from_json(const std::string& id, const json& stats, uint64_t size_rw);

// ---- images ----

// fromImage and tag of POST /images/create for a reference: "127.0.0.1:5000/kubia:1" is
// ("127.0.0.1:5000/kubia", "1"), "busybox" is ("busybox", "latest"), and a digest
// reference keeps its digest as the tag ("repo", "sha256:...").
std::pair<std::string, std::string> pull_params(const std::string& reference);
// X-Registry-Auth: base64url of the credentials' JSON.
std::string registry_auth(const runtime::AuthConfig& auth);

// Base64 (standard alphabet with padding, or URL-safe), for the auth header and tests.
std::string base64(std::string_view data, bool url_safe);

}  // namespace knode::docker
