#include "docker/convert.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <limits>

#include "docker/cri_log.h"
#include "labels.h"
#include "knode/json_get.h"

namespace knode::docker {

namespace rt = knode::runtime;

namespace {

// dockershim's oom_score_adj for pause containers: the last thing the OOM killer takes.
constexpr int64_t kSandboxOomScoreAdj = -998;

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A number member as int64, 0 when absent or not representable: get<int64_t>() of a float
// out of range (1e300, NaN) is undefined behaviour, and of an unsigned above INT64_MAX wraps.
// dockerd writes integers; a finite float in range is truncated as Go would convert it.
int64_t num(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    return u <= kMax ? static_cast<int64_t>(u) : 0;
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) {
    const double d = it->get<double>();
    // 2^63 is exact as a double; [-2^63, 2^63) is what fits (false for NaN too).
    constexpr double kLimit = 9223372036854775808.0;
    return std::isfinite(d) && d >= -kLimit && d < kLimit ? static_cast<int64_t>(d) : 0;
  }
  return 0;
}

// Seconds to nanoseconds; 0 (unknown) when the product does not fit.
rt::UnixNanos seconds_to_nanos(int64_t secs) {
  int64_t out = 0;
  return __builtin_mul_overflow(secs, int64_t{1'000'000'000}, &out) ? 0 : out;
}

bool flag(const json& j, const char* key) {
  if (!j.is_object()) return false;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

const json& member(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::vector<std::string> strings(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

json log_config(const std::map<std::string, std::string>& options) {
  return {{"Type", "json-file"}, {"Config", options}};
}

int64_t oom_adj(int64_t want, const std::optional<int64_t>& floor) {
  return floor && want < *floor ? *floor : want;
}

const char* protocol_name(rt::Protocol p) {
  switch (p) {
    case rt::Protocol::kUDP:
      return "UDP";
    case rt::Protocol::kSCTP:
      return "SCTP";
    case rt::Protocol::kTCP:
      break;
  }
  return "TCP";
}

void put_dns(const rt::DnsConfig& dns, json& hc) {
  if (!dns.servers.empty()) hc["Dns"] = dns.servers;
  if (!dns.searches.empty()) hc["DnsSearch"] = dns.searches;
  if (!dns.options.empty()) hc["DnsOptions"] = dns.options;
}

std::string user_of(const std::optional<int64_t>& uid, const std::optional<int64_t>& gid,
                    const std::string& username) {
  std::string u = uid ? std::to_string(*uid) : username;
  if (u.empty()) return "";
  if (gid) u += ":" + std::to_string(*gid);
  return u;
}

json group_add(const std::vector<int64_t>& groups) {
  json out = json::array();
  for (int64_t g : groups) out.push_back(std::to_string(g));
  return out;
}

Result<std::string> bind_of(const rt::Mount& m) {
  if (!m.image.image.empty()) {
    // Docker mounts images from API 1.48 (Docker 28) on; this client speaks up to 1.47.
    return Status::Error("docker: image volume " + m.image.image + " -> " + m.container_path +
                             ": the Docker backend cannot mount images (Engine API " +
                             kMaxApiVersion + " has no image mounts); use CRI (containerd 2.1+)",
                         ENOTSUP);
  }
  if (m.host_path.find(':') != std::string::npos ||
      m.container_path.find(':') != std::string::npos) {
    return Status::Error("docker: mount " + m.host_path + " -> " + m.container_path +
                             ": a path with ':' cannot be a bind",
                         EINVAL);
  }
  std::vector<std::string> opts;
  if (m.readonly) opts.emplace_back("ro");
  if (m.selinux_relabel) opts.emplace_back("Z");
  if (m.propagation == rt::MountPropagation::kHostToContainer) opts.emplace_back("rslave");
  if (m.propagation == rt::MountPropagation::kBidirectional) opts.emplace_back("rshared");
  std::string b = m.host_path + ":" + m.container_path;
  for (size_t i = 0; i < opts.size(); ++i) b += (i == 0 ? ":" : ",") + opts[i];
  return b;
}

rt::MountPropagation propagation_of(std::string_view p) {
  if (p == "rslave" || p == "slave") return rt::MountPropagation::kHostToContainer;
  if (p == "rshared" || p == "shared") return rt::MountPropagation::kBidirectional;
  return rt::MountPropagation::kPrivate;
}

rt::UnixNanos time_of(const json& j, const char* key) {
  auto t = parse_time(str(j, key));
  return t.ok() ? *t : 0;
}

std::optional<uint32_t> parse_attempt(std::string_view s) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string first_name(const json& item) {
  auto names = strings(member(item, "Names"));
  return names.empty() ? "" : names.front();
}

}  // namespace

// ---- API versions ----

int compare_api_versions(std::string_view a, std::string_view b) {
  auto parts = [](std::string_view v) {
    std::vector<int> out;
    while (!v.empty()) {
      size_t dot = v.find('.');
      std::string_view p = v.substr(0, dot);
      int n = 0;
      std::from_chars(p.data(), p.data() + p.size(), n);
      out.push_back(n);
      if (dot == std::string_view::npos) break;
      v.remove_prefix(dot + 1);
    }
    return out;
  };
  auto pa = parts(a), pb = parts(b);
  pa.resize(std::max(pa.size(), pb.size()));
  pb.resize(pa.size());
  return pa < pb ? -1 : (pa == pb ? 0 : 1);
}

Result<std::string> negotiate_api_version(const json& version) {
  const std::string server = str(version, "ApiVersion");
  const std::string server_min = str(version, "MinAPIVersion");
  if (server.empty()) return Status::Error("docker: GET /version answered without ApiVersion", EIO);
  if (compare_api_versions(server, kMinApiVersion) < 0) {
    return Status::Error("docker: the daemon speaks Engine API " + server + "; knode needs " +
                             kMinApiVersion + " or newer (Docker 20.10+)",
                         ENOTSUP);
  }
  std::string use = compare_api_versions(server, kMaxApiVersion) < 0 ? server : kMaxApiVersion;
  if (!server_min.empty() && compare_api_versions(server_min, use) > 0) {
    return Status::Error("docker: the daemon accepts Engine API " + server_min + " to " + server +
                             "; knode speaks " + kMinApiVersion + " to " + kMaxApiVersion,
                         ENOTSUP);
  }
  return use;
}

// ---- names and labels ----

std::string sandbox_name(const rt::PodSandboxMetadata& m) {
  return "k8s_POD_" + m.name + "_" + m.ns + "_" + m.uid + "_" + std::to_string(m.attempt);
}

std::string container_name(const rt::ContainerMetadata& c, const rt::PodSandboxMetadata& pod) {
  return "k8s_" + c.name + "_" + pod.name + "_" + pod.ns + "_" + pod.uid + "_" +
         std::to_string(c.attempt);
}

std::optional<ParsedName> parse_name(std::string_view name) {
  if (name.starts_with('/')) name.remove_prefix(1);
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t us = name.find('_', start);
    parts.push_back(name.substr(start, us == std::string_view::npos ? us : us - start));
    if (us == std::string_view::npos) break;
    start = us + 1;
  }
  // k8s_<container>_<pod>_<ns>_<uid>_<attempt>[_<random>]
  if ((parts.size() != 6 && parts.size() != 7) || parts[0] != "k8s") return std::nullopt;
  auto attempt = parse_attempt(parts[5]);
  if (!attempt) return std::nullopt;
  ParsedName out;
  out.container = std::string(parts[1]);
  out.sandbox = parts[1] == "POD";
  out.pod = {std::string(parts[2]), std::string(parts[4]), std::string(parts[3]), 0};
  out.attempt = *attempt;
  if (out.sandbox) out.pod.attempt = *attempt;
  return out;
}

std::map<std::string, std::string> docker_labels(
    const rt::Labels& labels, const rt::Labels& annotations,
    const std::map<std::string, std::string>& internal) {
  std::map<std::string, std::string> out = labels;
  for (const auto& [k, v] : annotations) out[kAnnotationPrefix + k] = v;
  for (const auto& [k, v] : internal) out[k] = v;
  return out;
}

void split_labels(const json& docker, rt::Labels* labels, rt::Labels* annotations) {
  if (!docker.is_object()) return;
  for (const auto& [k, v] : docker.items()) {
    if (!v.is_string()) continue;
    if (k.starts_with(kAnnotationPrefix)) {
      (*annotations)[k.substr(sizeof kAnnotationPrefix - 1)] = v.get<std::string>();
    } else if (k != kTypeLabel && k != kSandboxIdLabel && k != kLogPathLabel &&
               k != kPortMappingsLabel) {
      (*labels)[k] = v.get<std::string>();
    }
  }
}

std::string label_of(const json& docker_labels, const std::string& key) {
  return str(docker_labels, key.c_str());
}

bool owned(const json& docker_labels) {
  const std::string type = str(docker_labels, kTypeLabel);
  return (type == kTypeSandbox || type == kTypeContainer) &&
         !str(docker_labels, kubelet::kPodUidLabel).empty();
}

// ---- create ----

json sandbox_create_body(const rt::PodSandboxConfig& c, const SandboxCreate& how) {
  std::map<std::string, std::string> internal = {{kTypeLabel, kTypeSandbox}};
  if (!c.port_mappings.empty()) {
    json pms = json::array();
    for (const auto& pm : c.port_mappings) {
      pms.push_back({{"protocol", protocol_name(pm.protocol)},
                     {"containerPort", pm.container_port},
                     {"hostPort", pm.host_port},
                     {"hostIP", pm.host_ip}});
    }
    internal[kPortMappingsLabel] = jget::dump(pms);
  }
  const bool host_net = c.namespaces.network == rt::NamespaceMode::kNode;
  json hc = {{"NetworkMode", host_net ? "host" : "none"},
             // Others join it with container:<id>: dockerd lets them only when shareable.
             {"IpcMode", c.namespaces.ipc == rt::NamespaceMode::kNode ? "host" : "shareable"},
             {"RestartPolicy", {{"Name", "no"}}},
             {"LogConfig", log_config(how.log_options)},
             {"OomScoreAdj", oom_adj(kSandboxOomScoreAdj, how.oom_score_adj_floor)}};
  if (host_net) hc["UTSMode"] = "host";
  if (c.namespaces.pid == rt::NamespaceMode::kNode) hc["PidMode"] = "host";
  if (!c.cgroup_parent.empty()) hc["CgroupParent"] = c.cgroup_parent;
  if (!c.sysctls.empty()) hc["Sysctls"] = c.sysctls;
  if (c.privileged) hc["Privileged"] = true;
  if (!host_net) put_dns(c.dns, hc);
  if (c.seccomp && c.seccomp->type == rt::SecurityProfile::Type::kUnconfined) {
    hc["SecurityOpt"] = {"seccomp=unconfined"};
  }
  if (!c.supplemental_groups.empty()) hc["GroupAdd"] = group_add(c.supplemental_groups);
  json body = {{"Image", how.image},
               {"Labels", docker_labels(c.labels, c.annotations, internal)},
               {"HostConfig", std::move(hc)}};
  if (!host_net && !c.hostname.empty()) body["Hostname"] = c.hostname;
  const std::string user = user_of(c.run_as_user, c.run_as_group, "");
  if (!user.empty()) body["User"] = user;
  return body;
}

json update_resources_body(const rt::LinuxResources& r) {
  json out = json::object();
  if (r.cpu_shares > 0) out["CpuShares"] = r.cpu_shares;
  out["CpuQuota"] = r.cpu_quota > 0 ? r.cpu_quota : -1;
  if (r.cpu_period > 0) out["CpuPeriod"] = r.cpu_period;
  if (r.memory_limit_in_bytes > 0) {
    out["Memory"] = r.memory_limit_in_bytes;
    out["MemorySwap"] = r.memory_swap_limit_in_bytes > 0 ? r.memory_swap_limit_in_bytes : r.memory_limit_in_bytes;
  }
  return out;
}

Result<json> container_create_body(const rt::ContainerConfig& c,
                                   const rt::PodSandboxConfig& sandbox,
                                   const ContainerCreate& how) {
  const std::string join = "container:" + how.sandbox_id;
  const auto& ns = c.security.namespaces;
  json hc = {{"RestartPolicy", {{"Name", "no"}}}, {"LogConfig", log_config(how.log_options)}};
  hc["NetworkMode"] = ns.network == rt::NamespaceMode::kNode ? "host" : join;
  if (ns.network == rt::NamespaceMode::kNode) hc["UTSMode"] = "host";
  hc["IpcMode"] = ns.ipc == rt::NamespaceMode::kNode ? "host" : join;
  switch (ns.pid) {
    case rt::NamespaceMode::kNode:
      hc["PidMode"] = "host";
      break;
    case rt::NamespaceMode::kPod:
      hc["PidMode"] = join;
      break;
    case rt::NamespaceMode::kTarget:
      hc["PidMode"] = "container:" + ns.target_id;
      break;
    case rt::NamespaceMode::kContainer:
      break;
  }
  if (!sandbox.cgroup_parent.empty()) hc["CgroupParent"] = sandbox.cgroup_parent;

  json binds = json::array();
  for (const auto& m : c.mounts) {
    auto b = bind_of(m);
    if (!b.ok()) return b.status();
    binds.push_back(*b);
  }
  if (!binds.empty()) hc["Binds"] = std::move(binds);

  const auto& r = c.resources;
  if (r.cpu_shares > 0) hc["CpuShares"] = r.cpu_shares;
  if (r.cpu_quota > 0) hc["CpuQuota"] = r.cpu_quota;
  if (r.cpu_period > 0) hc["CpuPeriod"] = r.cpu_period;
  if (r.memory_limit_in_bytes > 0) {
    hc["Memory"] = r.memory_limit_in_bytes;
    if (r.memory_swap_limit_in_bytes > 0) hc["MemorySwap"] = r.memory_swap_limit_in_bytes;
  }
  if (!r.cpuset_cpus.empty()) hc["CpusetCpus"] = r.cpuset_cpus;
  if (!r.cpuset_mems.empty()) hc["CpusetMems"] = r.cpuset_mems;
  const int64_t adj = oom_adj(r.oom_score_adj, how.oom_score_adj_floor);
  if (adj != 0) hc["OomScoreAdj"] = adj;

  const auto& s = c.security;
  if (s.privileged) hc["Privileged"] = true;
  if (!s.add_capabilities.empty()) hc["CapAdd"] = s.add_capabilities;
  if (!s.drop_capabilities.empty()) hc["CapDrop"] = s.drop_capabilities;
  if (s.readonly_rootfs) hc["ReadonlyRootfs"] = true;
  if (!s.supplemental_groups.empty()) hc["GroupAdd"] = group_add(s.supplemental_groups);
  json secopt = json::array();
  if (s.no_new_privs) secopt.push_back("no-new-privileges");
  if (s.seccomp) {
    switch (s.seccomp->type) {
      case rt::SecurityProfile::Type::kUnconfined:
        secopt.push_back("seccomp=unconfined");
        break;
      case rt::SecurityProfile::Type::kLocalhost:
        if (how.seccomp_json.empty()) {
          return Status::Error("docker: seccomp profile " + s.seccomp->localhost_ref + " is empty",
                               EINVAL);
        }
        secopt.push_back("seccomp=" + how.seccomp_json);
        break;
      case rt::SecurityProfile::Type::kRuntimeDefault:
        break;  // dockerd's default profile
    }
  }
  if (!secopt.empty()) hc["SecurityOpt"] = std::move(secopt);
  if (!s.privileged) {
    // Exactly the kubelet's lists, as containerd applies them (empty: none masked).
    hc["MaskedPaths"] = s.masked_paths;
    hc["ReadonlyPaths"] = s.readonly_paths;
  }

  json env = json::array();
  for (const auto& kv : c.envs) env.push_back(kv.key + "=" + kv.value);
  std::map<std::string, std::string> internal = {{kTypeLabel, kTypeContainer},
                                                 {kSandboxIdLabel, how.sandbox_id}};
  if (!how.log_path.empty()) internal[kLogPathLabel] = how.log_path;
  json body = {{"Image", c.image.image},
               {"Env", std::move(env)},
               {"Labels", docker_labels(c.labels, c.annotations, internal)},
               {"HostConfig", std::move(hc)}};
  // CRI's rule, which is also dockerd's: command replaces ENTRYPOINT (and then the image's
  // CMD is not used), args replace CMD.
  if (!c.command.empty()) body["Entrypoint"] = c.command;
  if (!c.args.empty()) body["Cmd"] = c.args;
  if (!c.working_dir.empty()) body["WorkingDir"] = c.working_dir;
  if (c.tty) body["Tty"] = true;
  if (c.stdin_) {
    body["OpenStdin"] = true;
    if (c.stdin_once) body["StdinOnce"] = true;
  }
  const std::string user = user_of(s.run_as_user, s.run_as_group, s.run_as_username);
  if (!user.empty()) body["User"] = user;
  return body;
}

// ---- answers ----

rt::ContainerState state_from_list(std::string_view state) {
  if (state == "created") return rt::ContainerState::kCreated;
  if (state == "running" || state == "paused" || state == "restarting") {
    return rt::ContainerState::kRunning;
  }
  if (state == "exited" || state == "dead") return rt::ContainerState::kExited;
  return rt::ContainerState::kUnknown;  // "removing"
}

std::optional<rt::PodSandbox> sandbox_from_list(const json& item) {
  auto name = parse_name(first_name(item));
  if (!name || !name->sandbox) return std::nullopt;
  rt::PodSandbox out;
  out.id = str(item, "Id");
  out.metadata = name->pod;
  out.state = state_from_list(str(item, "State")) == rt::ContainerState::kRunning
                  ? rt::SandboxState::kReady
                  : rt::SandboxState::kNotReady;
  out.created_at = seconds_to_nanos(num(item, "Created"));
  split_labels(member(item, "Labels"), &out.labels, &out.annotations);
  return out;
}

std::optional<rt::Container> container_from_list(const json& item) {
  auto name = parse_name(first_name(item));
  if (!name || name->sandbox) return std::nullopt;
  rt::Container out;
  out.id = str(item, "Id");
  const json& labels = member(item, "Labels");
  out.pod_sandbox_id = str(labels, kSandboxIdLabel);
  out.metadata = {name->container, name->attempt};
  out.image.image = str(item, "Image");
  out.image_ref = str(item, "ImageID");
  out.state = state_from_list(str(item, "State"));
  out.created_at = seconds_to_nanos(num(item, "Created"));
  split_labels(labels, &out.labels, &out.annotations);
  return out;
}

rt::SandboxState sandbox_state_of(const json& inspect) {
  const json& state = member(inspect, "State");
  return flag(state, "Running") ? rt::SandboxState::kReady : rt::SandboxState::kNotReady;
}

Result<rt::PodSandboxStatus> sandbox_status_from_inspect(const json& inspect,
                                                         const std::vector<std::string>& ips) {
  rt::PodSandboxStatus out;
  out.id = str(inspect, "Id");
  const json& config = member(inspect, "Config");
  const json& labels = member(config, "Labels");
  if (auto name = parse_name(str(inspect, "Name")); name && name->sandbox) {
    out.metadata = name->pod;
  } else {
    // Renamed by hand: the labels still say which pod it is.
    out.metadata = {str(labels, kubelet::kPodNameLabel), str(labels, kubelet::kPodUidLabel),
                    str(labels, kubelet::kPodNamespaceLabel), 0};
  }
  out.state = sandbox_state_of(inspect);
  out.created_at = time_of(inspect, "Created");
  if (out.state == rt::SandboxState::kReady && !ips.empty()) {
    out.ip = ips.front();
    out.additional_ips.assign(ips.begin() + 1, ips.end());
  }
  const json& hc = member(inspect, "HostConfig");
  out.namespaces.network =
      str(hc, "NetworkMode") == "host" ? rt::NamespaceMode::kNode : rt::NamespaceMode::kPod;
  out.namespaces.ipc =
      str(hc, "IpcMode") == "host" ? rt::NamespaceMode::kNode : rt::NamespaceMode::kPod;
  out.namespaces.pid =
      str(hc, "PidMode") == "host" ? rt::NamespaceMode::kNode : rt::NamespaceMode::kContainer;
  split_labels(labels, &out.labels, &out.annotations);
  return out;
}

Result<rt::ContainerStatus> container_status_from_inspect(const json& inspect, const json& image) {
  rt::ContainerStatus out;
  out.id = str(inspect, "Id");
  const json& config = member(inspect, "Config");
  const json& labels = member(config, "Labels");
  if (auto name = parse_name(str(inspect, "Name")); name && !name->sandbox) {
    out.metadata = {name->container, name->attempt};
  } else {
    out.metadata = {str(labels, kubelet::kContainerNameLabel), 0};
  }
  out.created_at = time_of(inspect, "Created");
  const json& st = member(inspect, "State");
  const std::string status = str(st, "Status");
  const rt::UnixNanos started = time_of(st, "StartedAt");
  const rt::UnixNanos finished = time_of(st, "FinishedAt");
  out.exit_code = static_cast<int32_t>(num(st, "ExitCode"));
  const std::string error = str(st, "Error");
  if (flag(st, "Running") || status == "running" || status == "paused" || status == "restarting") {
    out.state = rt::ContainerState::kRunning;
    out.started_at = started;
  } else if (finished != 0) {
    // It ran and ended. OOMKilled first: a program may exit 0 after the kill of a child.
    out.state = rt::ContainerState::kExited;
    out.started_at = started;
    out.finished_at = finished;
    out.reason = flag(st, "OOMKilled") ? "OOMKilled" : out.exit_code == 0 ? "Completed" : "Error";
    out.message = error;
  } else if (out.exit_code != 0 || !error.empty()) {
    // It never ran: dockerd could not start it (no such executable, a bad mount). CRI
    // runtimes call that StartError; dockerd keeps no time of the failure, so the
    // creation time stands in for it.
    out.state = rt::ContainerState::kExited;
    out.finished_at = out.created_at;
    out.reason = "StartError";
    out.message = error;
    if (out.exit_code == 0) out.exit_code = 128;
  } else if (status == "created") {
    out.state = rt::ContainerState::kCreated;
  } else {
    out.state = rt::ContainerState::kUnknown;  // "removing", "dead" without a record
  }
  out.image.image = str(config, "Image");
  out.image_ref = str(inspect, "Image");
  if (image.is_object()) {
    auto tags = strings(member(image, "RepoTags"));
    std::erase(tags, "<none>:<none>");
    if (!tags.empty()) out.image.image = tags.front();
    out.image_ref = image_ref_of(image);
  }
  split_labels(labels, &out.labels, &out.annotations);
  out.log_path = str(labels, kLogPathLabel);
  const json& mounts = member(inspect, "Mounts");
  if (mounts.is_array()) {
    for (const auto& m : mounts) {
      if (str(m, "Type") != "bind") continue;
      rt::Mount mount;
      mount.host_path = str(m, "Source");
      mount.container_path = str(m, "Destination");
      mount.readonly = m.contains("RW") && !flag(m, "RW");
      const std::string mode = str(m, "Mode");
      mount.selinux_relabel =
          mode.find('Z') != std::string::npos || mode.find('z') != std::string::npos;
      mount.propagation = propagation_of(str(m, "Propagation"));
      out.mounts.push_back(std::move(mount));
    }
  }
  return out;
}

// ---- images ----

rt::Image image_from_json(const json& image) {
  rt::Image out;
  out.id = str(image, "Id");
  out.repo_tags = strings(member(image, "RepoTags"));
  out.repo_digests = strings(member(image, "RepoDigests"));
  std::erase(out.repo_tags, "<none>:<none>");
  std::erase(out.repo_digests, "<none>@<none>");
  const int64_t size = num(image, "Size");
  out.size = size > 0 ? static_cast<uint64_t>(size) : 0;
  return out;
}

std::string image_ref_of(const json& image) {
  auto digests = strings(member(image, "RepoDigests"));
  std::erase(digests, "<none>@<none>");
  return digests.empty() ? str(image, "Id") : digests.front();
}

rt::ContainerStats stats_from_json(const std::string& id, const json& stats, uint64_t size_rw) {
  rt::ContainerStats out;
  out.id = id;
  out.timestamp = time_of(stats, "read");
  const json& cpu = member(member(stats, "cpu_stats"), "cpu_usage");
  const int64_t total = num(cpu, "total_usage");
  out.cpu_usage_core_nanoseconds = total > 0 ? static_cast<uint64_t>(total) : 0;
  // The working set as cAdvisor and `docker stats` count it: usage without the inactive
  // page cache (cgroup v1 total_inactive_file, v2 inactive_file).
  const json& mem = member(stats, "memory_stats");
  // Negative counters are nonsense and are 0: usage - inactive below cannot overflow then.
  const int64_t usage = std::max<int64_t>(num(mem, "usage"), 0);
  const json& ms = member(mem, "stats");
  int64_t inactive = std::max<int64_t>(num(ms, "total_inactive_file"), 0);
  if (inactive == 0) inactive = std::max<int64_t>(num(ms, "inactive_file"), 0);
  out.memory_working_set_bytes = usage > inactive ? static_cast<uint64_t>(usage - inactive) : 0;
  out.writable_layer_used_bytes = size_rw;
  return out;
}

std::pair<std::string, std::string> pull_params(const std::string& reference) {
  if (size_t at = reference.find('@'); at != std::string::npos) {
    return {reference.substr(0, at), reference.substr(at + 1)};
  }
  const size_t slash = reference.rfind('/');
  const size_t colon = reference.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return {reference.substr(0, colon), reference.substr(colon + 1)};
  }
  return {reference, "latest"};
}

std::string base64(std::string_view data, bool url_safe) {
  static constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* alphabet = url_safe ? kUrl : kStd;
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<unsigned char>(data[i])} << 16) |
                       (uint32_t{static_cast<unsigned char>(data[i + 1])} << 8) |
                       static_cast<unsigned char>(data[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i < data.size()) {
    uint32_t v = uint32_t{static_cast<unsigned char>(data[i])} << 16;
    if (i + 1 < data.size()) v |= uint32_t{static_cast<unsigned char>(data[i + 1])} << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < data.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string registry_auth(const rt::AuthConfig& a) {
  json j = json::object();
  if (!a.username.empty()) j["username"] = a.username;
  if (!a.password.empty()) j["password"] = a.password;
  if (!a.auth.empty()) j["auth"] = a.auth;
  if (!a.server_address.empty()) j["serveraddress"] = a.server_address;
  if (!a.identity_token.empty()) j["identitytoken"] = a.identity_token;
  if (!a.registry_token.empty()) j["registrytoken"] = a.registry_token;
  return base64(jget::dump(j), true);
}

}  // namespace knode::docker
