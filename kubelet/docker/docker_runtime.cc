#include "docker/docker_runtime.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <thread>

#include "docker/convert.h"
#include "docker/cri_log.h"
#include "docker/log_copier.h"
#include "docker/stream.h"
#include "knode/dataplane/link.h"
#include "knode/dataplane/netns.h"
#include "knode/json_get.h"
#include "knode/log.h"
#include "labels.h"

namespace knode::docker {

namespace rt = knode::runtime;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// CRI's cap on ExecSync output: beyond it the output is cut.
constexpr size_t kMaxExecOutput = 16u << 20;
// How long a pause container gets for SIGTERM before dockerd kills it.
constexpr int64_t kSandboxStopGrace = 2;

int errno_for_http(int status) {
  switch (status) {
    case 404:
      return ENOENT;
    case 400:
      return EINVAL;
    case 501:
      return ENOTSUP;
    default:
      return EIO;
  }
}

// dockerd's errors are {"message": "..."}.
std::string error_message(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    return j["message"].get<std::string>();
  }
  std::string b = r.body;
  while (!b.empty() && (b.back() == '\n' || b.back() == ' ')) b.pop_back();
  return b.substr(0, 500);
}

std::string prefix(std::string_view call, std::string_view object) {
  std::string p = "docker ";
  p += call;
  if (!object.empty()) {
    p += ' ';
    p += object;
  }
  return p;
}

Status http_error(const HttpResponse& r, std::string_view call, std::string_view object) {
  return Status::Error(prefix(call, object) + ": " + std::to_string(r.status) + " " + r.reason +
                           ": " + error_message(r),
                       errno_for_http(r.status));
}

Status not_ours(std::string_view call, const std::string& id) {
  return Status::Error(prefix(call, id) + ": no such container knode created", ENOENT);
}

std::string filters_param(const std::map<std::string, std::vector<std::string>>& filters) {
  json f = json::object();
  for (const auto& [k, vs] : filters) f[k] = vs;
  return query_escape(jget::dump(f));
}

std::string random_suffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rng()));
  return buf;
}

std::optional<int64_t> own_oom_score_adj() {
  std::ifstream in("/proc/self/oom_score_adj");
  int64_t v = 0;
  if (in >> v) return v;
  return std::nullopt;
}

bool has_cap_sys_resource() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("CapEff:")) continue;
    const unsigned long long caps = std::strtoull(line.c_str() + 7, nullptr, 16);
    return (caps >> 24) & 1;  // CAP_SYS_RESOURCE
  }
  return true;
}

std::string short_id(const std::string& id) { return id.substr(0, 12); }

const json& member(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string str(const json& j, const char* key) {
  const json& v = member(j, key);
  return v.is_string() ? v.get<std::string>() : "";
}

bool running(const json& inspect) {
  const json& r = member(member(inspect, "State"), "Running");
  return r.is_boolean() && r.get<bool>();
}

// Numbers from dockerd are read with jget::integer: get<int64_t>() of a float out of range
// is undefined behaviour. A float or a missing field is 0 (a negative size, too).
int64_t pid_of(const json& inspect) {
  return jget::integer<int64_t>(member(inspect, "State"), "Pid");
}

const json& labels_of(const json& inspect) { return member(member(inspect, "Config"), "Labels"); }

bool host_network(const json& inspect) {
  return str(member(inspect, "HostConfig"), "NetworkMode") == "host";
}

// Whether process `pid` (as dockerd reports it, in its PID namespace) runs in the cgroup
// of container `id`: a check before knode signals it, so that a PID namespace knode does
// not share with dockerd can never make it kill another process.
bool in_container_cgroup(int64_t pid, const std::string& id) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::stringstream ss;
  ss << in.rdbuf();
  return !id.empty() && ss.str().find(id) != std::string::npos;
}

}  // namespace

// ---- construction ----

Result<std::unique_ptr<DockerRuntime>> DockerRuntime::connect(DockerOptions options) {
  auto sock = socket_path(options.endpoint);
  if (!sock.ok()) return sock.status();
  if (options.request_timeout <= milliseconds(0)) {
    return Status::Error("docker runtime request timeout must be positive", EINVAL);
  }
  if (options.pod_infra_image.empty())
    return Status::Error("docker: no pod infra (pause) image", EINVAL);
  std::optional<int64_t> floor;
  if (options.restrict_oom_score_adj || !has_cap_sys_resource()) {
    options.restrict_oom_score_adj = true;
    floor = own_oom_score_adj();
  }
  KLOGV(2, "Docker runtime client")
      .kv("endpoint", *sock)
      .kv("podInfraImage", options.pod_infra_image)
      .kv("cniConf", options.cni.conf);
  return std::unique_ptr<DockerRuntime>(new DockerRuntime(std::move(options), *sock, floor));
}

DockerRuntime::DockerRuntime(DockerOptions options, std::string socket,
                             std::optional<int64_t> oom_floor)
    : options_(std::move(options)),
      client_(std::move(socket)),
      cni_(options_.cni),
      oom_floor_(oom_floor) {}

DockerRuntime::~DockerRuntime() {
  // Sessions first: they call into this object.
  {
    std::lock_guard lock(stream_mu_);
    stream_server_.reset();
  }
  std::map<std::string, std::unique_ptr<LogCopier>> copies;
  {
    std::lock_guard lock(copies_mu_);
    copies.swap(copies_);
  }
  copies.clear();  // each stops and joins its thread
}

size_t DockerRuntime::active_log_copies() const {
  std::lock_guard lock(copies_mu_);
  size_t n = 0;
  for (const auto& [id, c] : copies_) n += c->done() ? 0 : 1;
  return n;
}

// ---- requests ----

Deadline DockerRuntime::after(milliseconds d) const { return std::chrono::steady_clock::now() + d; }

Result<std::string> DockerRuntime::api_prefix() {
  {
    std::lock_guard lock(mu_);
    if (!api_.empty()) return api_;
  }
  auto r = client_.request({"GET", "/version", "", {}}, after(options_.request_timeout));
  if (!r.ok()) return r.status().Wrap("docker Version");
  if (r->status != 200) return http_error(*r, "Version", "");
  json v = json::parse(r->body, nullptr, false);
  auto use = negotiate_api_version(v);
  if (!use.ok()) return use.status();
  std::lock_guard lock(mu_);
  if (api_.empty()) {
    api_ = "/v" + *use;
    KLOG(INFO, "Docker Engine API negotiated")
        .kv("daemon", str(v, "Version"))
        .kv("daemonApi", str(v, "ApiVersion"))
        .kv("using", *use);
  }
  return api_;
}

Result<HttpResponse> DockerRuntime::send(const std::string& method, const std::string& path,
                                         const std::string& body, std::string_view call,
                                         std::string_view object, milliseconds timeout,
                                         std::vector<std::pair<std::string, std::string>> headers) {
  auto api = api_prefix();
  if (!api.ok()) return api.status();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = client_.request({method, *api + path, body, std::move(headers)}, after(timeout));
  KLOGV(5, "docker call")
      .kv("call", call)
      .kv("object", object)
      .kv("status", r.ok() ? r->status : 0)
      .kv("tookMs",
          std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count());
  if (!r.ok()) return r.status().Wrap(prefix(call, object));
  return r;
}

Result<json> DockerRuntime::get_json(const std::string& path, std::string_view call,
                                     std::string_view object) {
  auto r = send("GET", path, "", call, object, options_.request_timeout);
  if (!r.ok()) return r.status();
  if (r->status != 200) return http_error(*r, call, object);
  json j = json::parse(r->body, nullptr, false);
  if (j.is_discarded())
    return Status::Error(prefix(call, object) + ": the answer is not JSON", EIO);
  return j;
}

Result<json> DockerRuntime::inspect_owned(const std::string& id, const char* type,
                                          std::string_view call, bool size) {
  if (id.empty()) return Status::Error(prefix(call, "") + ": no ID given", EINVAL);
  auto j =
      get_json("/containers/" + query_escape(id) + "/json" + (size ? "?size=1" : ""), call, id);
  if (!j.ok()) return j.status();
  const json& labels = labels_of(*j);
  if (!owned(labels) || label_of(labels, kTypeLabel) != type) return not_ours(call, id);
  return j;
}

Result<std::string> DockerRuntime::create(const std::string& name, const json& body,
                                          std::string_view call, std::string_view object) {
  const std::string payload = jget::dump(body);
  for (int attempt = 0; attempt < 2; ++attempt) {
    // A name still taken (a container of an earlier knode that was never removed) gets a
    // random suffix, as dockershim did; parse_name() reads both forms.
    const std::string n = attempt == 0 ? name : name + "_" + random_suffix();
    auto r = send("POST", "/containers/create?name=" + query_escape(n), payload, call, object,
                  options_.request_timeout);
    if (!r.ok()) return r.status();
    if (r->status == 409 && attempt == 0) continue;
    if (r->status != 201) return http_error(*r, call, object);
    json j = json::parse(r->body, nullptr, false);
    const std::string id = str(j, "Id");
    if (id.empty()) return Status::Error(prefix(call, object) + ": the answer has no Id", EIO);
    return id;
  }
  return Status::Error(prefix(call, object) + ": the container name stays taken", EEXIST);
}

Status DockerRuntime::stop(const std::string& id, int64_t grace_seconds, std::string_view call) {
  grace_seconds = std::max<int64_t>(grace_seconds, 0);
  auto r =
      send("POST", "/containers/" + query_escape(id) + "/stop?t=" + std::to_string(grace_seconds),
           "", call, id, options_.request_timeout + seconds(grace_seconds));
  if (!r.ok()) return r.status();
  if (r->status == 204 || r->status == 304) return Status::Ok();  // 304: not running
  return http_error(*r, call, id);
}

Status DockerRuntime::remove(const std::string& id, std::string_view call) {
  auto r = send("DELETE", "/containers/" + query_escape(id) + "?v=1&force=1", "", call, id,
                options_.request_timeout);
  if (!r.ok()) return r.status();
  if (r->status == 204 || r->status == 404) return Status::Ok();
  return http_error(*r, call, id);
}

Result<std::vector<json>> DockerRuntime::list(
    const std::map<std::string, std::vector<std::string>>& filters, std::string_view call) {
  auto j = get_json("/containers/json?all=1&filters=" + filters_param(filters), call, "");
  if (!j.ok()) return j.status();
  if (!j->is_array()) return Status::Error(prefix(call, "") + ": the answer is not a list", EIO);
  std::vector<json> out;
  for (auto& item : *j) {
    if (owned(member(item, "Labels"))) out.push_back(std::move(item));
  }
  return out;
}

// ---- version, status, configuration ----

Result<rt::VersionInfo> DockerRuntime::version() {
  auto api = api_prefix();
  if (!api.ok()) return api.status();
  auto v = get_json("/version", "Version", "");
  if (!v.ok()) return v.status();
  return rt::VersionInfo{"0.1.0", "docker", str(*v, "Version"), api->substr(2)};
}

Result<rt::RuntimeStatus> DockerRuntime::status() {
  auto r = send("GET", "/_ping", "", "Status", "", options_.request_timeout);
  if (!r.ok()) return r.status();
  rt::RuntimeStatus out;
  rt::RuntimeCondition runtime_ready{"RuntimeReady", r->status == 200, "", ""};
  if (!runtime_ready.status) {
    runtime_ready.reason = "DockerDaemonNotReady";
    runtime_ready.message = "docker: /_ping answered " + std::to_string(r->status);
  }
  rt::RuntimeCondition network_ready{"NetworkReady", true, "", ""};
  if (Status s = cni_.ready(); !s.ok()) {
    network_ready = {"NetworkReady", false, "NetworkPluginNotReady",
                     "docker: network plugin is not ready: " + s.message()};
  }
  out.conditions = {runtime_ready, network_ready};
  return out;
}

Result<rt::CgroupDriver> DockerRuntime::cgroup_driver() {
  auto info = get_json("/info", "Info", "");
  if (!info.ok()) return info.status();
  const std::string d = str(*info, "CgroupDriver");
  if (d == "cgroupfs") return rt::CgroupDriver::kCgroupfs;
  if (d == "systemd") return rt::CgroupDriver::kSystemd;
  return Status::Error("docker Info: cgroup driver \"" + d + "\" is neither cgroupfs nor systemd",
                       ENOTSUP);
}

// ---- sandboxes ----

Status DockerRuntime::ensure_pod_infra_image() {
  auto present = image_status({options_.pod_infra_image, {}});
  if (!present.ok()) return present.status();
  if (present->has_value()) return Status::Ok();
  auto pulled = pull_image({options_.pod_infra_image, {}}, std::nullopt, nullptr);
  return pulled.ok() ? Status::Ok() : pulled.status();
}

CniPod DockerRuntime::cni_pod(const std::string& id, const json& inspect) const {
  const json& labels = labels_of(inspect);
  CniPod pod;
  pod.container_id = id;
  pod.name = label_of(labels, kubelet::kPodNameLabel);
  pod.ns = label_of(labels, kubelet::kPodNamespaceLabel);
  pod.uid = label_of(labels, kubelet::kPodUidLabel);
  if (running(inspect) && pid_of(inspect) > 0) {
    pod.netns = "/proc/" + std::to_string(pid_of(inspect)) + "/ns/net";
  }
  json pms = json::parse(label_of(labels, kPortMappingsLabel), nullptr, false);
  if (pms.is_array()) {
    for (const auto& m : pms) {
      rt::PortMapping pm;
      const std::string proto = str(m, "protocol");
      pm.protocol = proto == "UDP"    ? rt::Protocol::kUDP
                    : proto == "SCTP" ? rt::Protocol::kSCTP
                                      : rt::Protocol::kTCP;
      pm.container_port = jget::integer<int32_t>(m, "containerPort");
      pm.host_port = jget::integer<int32_t>(m, "hostPort");
      pm.host_ip = str(m, "hostIP");
      pod.port_mappings.push_back(pm);
    }
  }
  return pod;
}

Status DockerRuntime::teardown_network(const std::string& id, const json& inspect) {
  {
    std::lock_guard lock(mu_);
    ips_.erase(id);
  }
  if (host_network(inspect)) return Status::Ok();
  return cni_.del(cni_pod(id, inspect))
      .Wrap("docker StopPodSandbox " + id + ": tear the pod network down");
}

Status DockerRuntime::write_resolv_conf(const json& inspect, const rt::DnsConfig& dns) {
  // What containerd writes for a pod: dockerd's own file would carry the node's entries.
  const std::string path = str(inspect, "ResolvConfPath");
  if (path.empty()) return Status::Ok();
  std::string text;
  if (!dns.searches.empty()) {
    text += "search";
    for (const auto& s : dns.searches) text += " " + s;
    text += "\n";
  }
  for (const auto& s : dns.servers) text += "nameserver " + s + "\n";
  if (!dns.options.empty()) {
    text += "options";
    for (const auto& o : dns.options) text += " " + o;
    text += "\n";
  }
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::FromErrno("docker RunPodSandbox: write " + path, errno);
  return Status::Ok();
}

Result<std::string> DockerRuntime::run_pod_sandbox(const rt::PodSandboxConfig& config) {
  const std::string object = config.metadata.ns + "/" + config.metadata.name;
  if (Status s = ensure_pod_infra_image(); !s.ok()) {
    return s.Wrap("docker RunPodSandbox " + object + ": pause image " + options_.pod_infra_image);
  }
  SandboxCreate how{options_.pod_infra_image, oom_floor_, options_.json_log_options};
  auto id = create(sandbox_name(config.metadata), sandbox_create_body(config, how), "RunPodSandbox",
                   object);
  if (!id.ok()) return id.status();
  auto fail = [&](Status why) {
    if (Status s = remove(*id, "RunPodSandbox"); !s.ok()) {
      KLOG(WARNING, "cannot remove a sandbox that failed to start")
          .kv("sandbox", short_id(*id))
          .kv("err", s.message());
    }
    return why;
  };
  auto started = send("POST", "/containers/" + *id + "/start", "", "RunPodSandbox", object,
                      options_.request_timeout);
  if (!started.ok()) return fail(started.status());
  if (started->status != 204 && started->status != 304)
    return fail(http_error(*started, "RunPodSandbox", object));
  auto inspect = get_json("/containers/" + *id + "/json", "RunPodSandbox", object);
  if (!inspect.ok()) return fail(inspect.status());
  if (config.namespaces.network != rt::NamespaceMode::kNode) {
    if (!running(*inspect) || pid_of(*inspect) <= 0) {
      return fail(Status::Error(
          prefix("RunPodSandbox", object) + ": the pause container exited at once", EIO));
    }
    const CniPod pod = cni_pod(*id, *inspect);
    auto ips = cni_.add(pod);
    if (!ips.ok()) {
      // Whatever the chain set up before it failed goes again.
      if (Status s = cni_.del(pod); !s.ok()) {
        KLOG(WARNING, "CNI DEL after a failed ADD failed")
            .kv("sandbox", short_id(*id))
            .kv("err", s.message());
      }
      return fail(ips.status().Wrap(prefix("RunPodSandbox", object) + ": set up the pod network"));
    }
    std::lock_guard lock(mu_);
    ips_[*id] = *ips;
  }
  const auto& dns = config.dns;
  if (!dns.servers.empty() || !dns.searches.empty() || !dns.options.empty()) {
    if (config.namespaces.network != rt::NamespaceMode::kNode) {
      if (Status s = write_resolv_conf(*inspect, dns); !s.ok()) {
        (void)teardown_network(*id, *inspect);
        return fail(s);
      }
    }
  }
  KLOGV(2, "pod sandbox running").kv("pod", object).kv("sandbox", short_id(*id));
  return *id;
}

Status DockerRuntime::stop_pod_sandbox(const std::string& id) {
  auto inspect = inspect_owned(id, kTypeSandbox, "StopPodSandbox");
  if (!inspect.ok()) return inspect.status();
  auto members = list(
      {{"label",
        {std::string(kTypeLabel) + "=" + kTypeContainer, std::string(kSandboxIdLabel) + "=" + id}}},
      "StopPodSandbox");
  if (!members.ok()) return members.status();
  // The kubelet stopped them with their grace periods already; what is left is killed.
  for (const auto& c : *members) {
    if (state_from_list(str(c, "State")) != rt::ContainerState::kRunning) continue;
    if (Status s = stop(str(c, "Id"), 0, "StopPodSandbox"); !s.ok() && s.error_number() != ENOENT)
      return s;
  }
  // The network goes while the pause container still holds its namespace.
  if (Status s = teardown_network(id, *inspect); !s.ok()) return s;
  return stop(id, kSandboxStopGrace, "StopPodSandbox");
}

Status DockerRuntime::remove_pod_sandbox(const std::string& id) {
  auto inspect = inspect_owned(id, kTypeSandbox, "RemovePodSandbox");
  if (!inspect.ok())
    return inspect.status().error_number() == ENOENT ? Status::Ok() : inspect.status();
  auto members = list(
      {{"label",
        {std::string(kTypeLabel) + "=" + kTypeContainer, std::string(kSandboxIdLabel) + "=" + id}}},
      "RemovePodSandbox");
  if (!members.ok()) return members.status();
  for (const auto& c : *members) {
    const std::string cid = str(c, "Id");
    end_copy(cid);
    if (Status s = remove(cid, "RemovePodSandbox"); !s.ok()) return s;
  }
  // DEL again: a pause container that died by itself never had its network torn down.
  if (Status s = teardown_network(id, *inspect); !s.ok()) return s;
  return remove(id, "RemovePodSandbox");
}

std::vector<std::string> DockerRuntime::sandbox_ips(const std::string& id, const json& inspect) {
  if (host_network(inspect) || !running(inspect)) return {};
  {
    std::lock_guard lock(mu_);
    if (auto it = ips_.find(id); it != ips_.end()) return it->second;
  }
  // A restarted knode: the addresses are where the CNI put them, in the pause
  // container's network namespace (as dockershim read them).
  const std::string netns = "/proc/" + std::to_string(pid_of(inspect)) + "/ns/net";
  auto found = netns::with_netns(netns, [&]() -> Result<std::vector<std::string>> {
    auto sock = link::Socket::Open();
    if (!sock.ok()) return sock.status();
    std::vector<std::string> out;
    for (int family : {AF_INET, AF_INET6}) {
      auto addrs = link::list_addresses(*sock, cni_.options().ifname, family);
      if (!addrs.ok()) return addrs.status();
      for (const auto& a : *addrs) {
        // IPv6 link-local addresses are the interface's own, not the pod's.
        if (family == AF_INET6 && a.ip.str().starts_with("fe80:")) continue;
        out.push_back(a.ip.str());
      }
    }
    return out;
  });
  if (!found.ok()) {
    KLOGV(2, "cannot read the pod's addresses from its network namespace")
        .kv("sandbox", short_id(id))
        .kv("netns", netns)
        .kv("err", found.error());
    return {};
  }
  std::lock_guard lock(mu_);
  ips_[id] = *found;
  return *found;
}

Result<rt::PodSandboxStatus> DockerRuntime::pod_sandbox_status(const std::string& id) {
  auto inspect = inspect_owned(id, kTypeSandbox, "PodSandboxStatus");
  if (!inspect.ok()) return inspect.status();
  return sandbox_status_from_inspect(*inspect, sandbox_ips(id, *inspect));
}

Result<std::vector<rt::PodSandbox>> DockerRuntime::list_pod_sandboxes(
    const rt::SandboxFilter& filter) {
  std::vector<std::string> labels = {std::string(kTypeLabel) + "=" + kTypeSandbox};
  for (const auto& [k, v] : filter.label_selector) labels.push_back(k + "=" + v);
  auto items = list({{"label", labels}}, "ListPodSandbox");
  if (!items.ok()) return items.status();
  std::vector<rt::PodSandbox> out;
  for (const auto& item : *items) {
    auto sb = sandbox_from_list(item);
    if (!sb) continue;
    if (!filter.id.empty() && !sb->id.starts_with(filter.id)) continue;
    if (filter.state && sb->state != *filter.state) continue;
    out.push_back(std::move(*sb));
  }
  return out;
}

// ---- containers ----

Result<std::string> DockerRuntime::create_container(const std::string& pod_sandbox_id,
                                                    const rt::ContainerConfig& config,
                                                    const rt::PodSandboxConfig& sandbox_config) {
  const std::string object = config.metadata.name + " in sandbox " + short_id(pod_sandbox_id);
  auto sandbox = inspect_owned(pod_sandbox_id, kTypeSandbox, "CreateContainer");
  if (!sandbox.ok()) return sandbox.status();
  ContainerCreate how;
  how.sandbox_id = str(*sandbox, "Id");
  if (!config.log_path.empty() && !sandbox_config.log_directory.empty()) {
    how.log_path = sandbox_config.log_directory + "/" + config.log_path;
  }
  how.oom_score_adj_floor = oom_floor_;
  how.log_options = options_.json_log_options;
  const auto& seccomp = config.security.seccomp;
  if (seccomp && seccomp->type == rt::SecurityProfile::Type::kLocalhost) {
    std::ifstream in(seccomp->localhost_ref);
    if (!in) {
      return Status::Error(prefix("CreateContainer", object) + ": cannot read seccomp profile " +
                               seccomp->localhost_ref,
                           EINVAL);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    how.seccomp_json = ss.str();
  }
  auto body = container_create_body(config, sandbox_config, how);
  if (!body.ok()) return body.status().Wrap(prefix("CreateContainer", object));
  auto id = create(container_name(config.metadata, sandbox_config.metadata), *body,
                   "CreateContainer", object);
  if (!id.ok()) return id.status();
  std::lock_guard lock(copies_mu_);
  seen_.insert(*id);  // its copy starts with it
  return id;
}

Status DockerRuntime::start_container(const std::string& id) {
  auto inspect = inspect_owned(id, kTypeContainer, "StartContainer");
  if (!inspect.ok()) return inspect.status();
  // The log file exists before the container runs (containerd opens it at start too), so
  // a path that cannot be written fails the start rather than the copy.
  const std::string log_path = label_of(labels_of(*inspect), kLogPathLabel);
  if (!log_path.empty()) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
      return Status::FromErrno(
          prefix("StartContainer", id) + ": create the container log " + log_path, errno);
    ::close(fd);
  }
  auto r = send("POST", "/containers/" + query_escape(id) + "/start", "", "StartContainer", id,
                options_.request_timeout);
  if (!r.ok()) return r.status();
  if (r->status != 204 && r->status != 304) return http_error(*r, "StartContainer", id);
  if (!log_path.empty()) {
    if (Status s = start_copy(*inspect, true); !s.ok()) {
      KLOG(WARNING, "container log copy did not start")
          .kv("container", short_id(id))
          .kv("err", s.message());
    }
  }
  return Status::Ok();
}

Status DockerRuntime::update_container_resources(const std::string& id, const rt::LinuxResources& resources) {
  auto inspect = inspect_owned(id, kTypeContainer, "UpdateContainerResources");
  if (!inspect.ok()) return inspect.status();
  auto r = send("POST", "/containers/" + query_escape(id) + "/update", jget::dump(update_resources_body(resources)),
                "UpdateContainerResources", id, options_.request_timeout);
  if (!r.ok()) return r.status();
  if (r->status == 200) return Status::Ok();
  return http_error(*r, "UpdateContainerResources", id);
}

Status DockerRuntime::stop_container(const std::string& id, int64_t timeout_seconds) {
  auto inspect = inspect_owned(id, kTypeContainer, "StopContainer");
  if (!inspect.ok()) return inspect.status();
  return stop(id, timeout_seconds, "StopContainer");
}

Status DockerRuntime::remove_container(const std::string& id) {
  auto inspect = inspect_owned(id, kTypeContainer, "RemoveContainer");
  if (!inspect.ok())
    return inspect.status().error_number() == ENOENT ? Status::Ok() : inspect.status();
  end_copy(str(*inspect, "Id"));
  return remove(id, "RemoveContainer");
}

Result<std::vector<rt::Container>> DockerRuntime::list_containers(
    const rt::ContainerFilter& filter) {
  std::vector<std::string> labels = {std::string(kTypeLabel) + "=" + kTypeContainer};
  if (!filter.pod_sandbox_id.empty())
    labels.push_back(std::string(kSandboxIdLabel) + "=" + filter.pod_sandbox_id);
  for (const auto& [k, v] : filter.label_selector) labels.push_back(k + "=" + v);
  auto items = list({{"label", labels}}, "ListContainers");
  if (!items.ok()) return items.status();
  std::vector<rt::Container> out;
  for (const auto& item : *items) {
    auto c = container_from_list(item);
    if (!c) continue;
    adopt(c->id, member(item, "Labels"), c->state);
    if (!filter.id.empty() && !c->id.starts_with(filter.id)) continue;
    if (filter.state && c->state != *filter.state) continue;
    out.push_back(std::move(*c));
  }
  return out;
}

Result<json> DockerRuntime::image_json(const std::string& ref, std::string_view call) {
  {
    std::lock_guard lock(mu_);
    if (auto it = images_.find(ref); it != images_.end()) return it->second;
  }
  auto r =
      send("GET", "/images/" + path_escape(ref) + "/json", "", call, ref, options_.request_timeout);
  if (!r.ok()) return r.status();
  if (r->status != 200) return http_error(*r, call, ref);
  json j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return Status::Error(prefix(call, ref) + ": the answer is not JSON", EIO);
  // Only IDs are cached: an ID names one image forever, a tag may move.
  if (ref.starts_with("sha256:")) {
    std::lock_guard lock(mu_);
    if (images_.size() > 512) images_.clear();
    images_[ref] = j;
  }
  return j;
}

Result<rt::ContainerStatus> DockerRuntime::container_status(const std::string& id) {
  auto inspect = inspect_owned(id, kTypeContainer, "ContainerStatus");
  if (!inspect.ok()) return inspect.status();
  json image;
  if (auto img = image_json(str(*inspect, "Image"), "ContainerStatus"); img.ok())
    image = std::move(*img);
  auto st = container_status_from_inspect(*inspect, image);
  if (st.ok()) adopt(str(*inspect, "Id"), labels_of(*inspect), st->state);
  if (st.ok() && st->state == rt::ContainerState::kExited) {
    // An exited container's status comes with its whole log, as containerd drains a
    // container's output before it reports the exit: the kubelet reads the log's end
    // for FallbackToLogsOnError at once. dockerd ends the logs answer at the exit; the
    // copy writes what is left within milliseconds, so the wait is bounded, not long.
    std::lock_guard lock(copies_mu_);
    if (auto it = copies_.find(str(*inspect, "Id")); it != copies_.end()) {
      (void)it->second->wait_done(std::chrono::seconds(2));
    }
  }
  return st;
}

Result<rt::ExecResult> DockerRuntime::exec_sync(const std::string& id,
                                                const std::vector<std::string>& cmd,
                                                int64_t timeout_seconds) {
  auto inspect = inspect_owned(id, kTypeContainer, "ExecSync");
  if (!inspect.ok()) return inspect.status();
  if (cmd.empty()) return Status::Error(prefix("ExecSync", id) + ": no command", EINVAL);
  json create = {{"AttachStdout", true},
                 {"AttachStderr", true},
                 {"AttachStdin", false},
                 {"Tty", false},
                 {"Cmd", cmd}};
  auto made = send("POST", "/containers/" + query_escape(id) + "/exec", jget::dump(create), "ExecSync",
                   id, options_.request_timeout);
  if (!made.ok()) return made.status();
  if (made->status != 201) return http_error(*made, "ExecSync", id);
  const std::string exec_id = str(json::parse(made->body, nullptr, false), "Id");
  if (exec_id.empty())
    return Status::Error(prefix("ExecSync", id) + ": the answer has no exec Id", EIO);

  auto api = api_prefix();
  if (!api.ok()) return api.status();
  rt::ExecResult out;
  StreamDemuxer demux;
  Status demuxed;
  const Deadline deadline = timeout_seconds > 0 ? after(seconds(timeout_seconds)) : Deadline();
  auto r =
      client_.hijack({"POST",
                      *api + "/exec/" + exec_id + "/start",
                      jget::dump(json{{"Detach", false}, {"Tty", false}}),
                      {}},
                     deadline, [&](std::string_view data) {
                       demuxed = demux.feed(data, [&](StreamType st, std::string_view payload) {
                         std::string& sink = st == StreamType::kStderr ? out.stderr_ : out.stdout_;
                         if (sink.size() < kMaxExecOutput)
                           sink.append(payload.substr(0, kMaxExecOutput - sink.size()));
                         return true;
                       });
                       return demuxed.ok();
                     });
  if (!r.ok() && r.status().error_number() == ETIMEDOUT) {
    // dockerd has no call that ends an exec: kill its process, as CRI runtimes do.
    auto ex = get_json("/exec/" + exec_id + "/json", "ExecSync", id);
    if (ex.ok()) {
      const int64_t pid = jget::integer<int64_t>(*ex, "Pid");
      if (in_container_cgroup(pid, str(*inspect, "Id"))) ::kill(static_cast<pid_t>(pid), SIGKILL);
    }
    return Status::Error(prefix("ExecSync", id) + ": command timed out after " +
                             std::to_string(timeout_seconds) + "s",
                         ETIMEDOUT);
  }
  if (!r.ok()) return r.status().Wrap(prefix("ExecSync", id));
  if (r->status != 101 && r->status != 200) return http_error(*r, "ExecSync", id);
  if (!demuxed.ok()) return demuxed.Wrap(prefix("ExecSync", id));
  auto code = exec_exit_code(exec_id, id, "ExecSync");
  if (!code.ok()) return code.status();
  out.exit_code = *code;
  return out;
}

Result<int32_t> DockerRuntime::exec_exit_code(const std::string& exec_id, const std::string& id,
                                              std::string_view call) {
  // The output ends when the process closes it; its exit code is recorded a moment later.
  const auto limit = std::chrono::steady_clock::now() + options_.request_timeout;
  for (auto wait = milliseconds(5);; wait = std::min(wait * 2, milliseconds(200))) {
    auto ex = get_json("/exec/" + exec_id + "/json", call, id);
    if (!ex.ok()) return ex.status();
    const json& code = member(*ex, "ExitCode");
    const json& still = member(*ex, "Running");
    if (!(still.is_boolean() && still.get<bool>()) && code.is_number()) {
      // An exit code that is not an int32 (a float, say) is an error: get<int32_t>() of an
      // out-of-range float is undefined behaviour.
      constexpr int64_t kNotInt32 = std::numeric_limits<int64_t>::max();
      const int64_t c = jget::integer<int64_t>(*ex, "ExitCode", kNotInt32);
      if (c < std::numeric_limits<int32_t>::min() || c > std::numeric_limits<int32_t>::max()) {
        return Status::Error(
            prefix(call, id) + ": the exit code " + jget::dump(code) + " is not an int32", EIO);
      }
      return static_cast<int32_t>(c);
    }
    if (std::chrono::steady_clock::now() + wait > limit) {
      return Status::Error(prefix(call, id) + ": the command's exit code did not come",
                           ETIMEDOUT);
    }
    std::this_thread::sleep_for(wait);
  }
}

Status DockerRuntime::reopen_container_log(const std::string& id) {
  auto inspect = inspect_owned(id, kTypeContainer, "ReopenContainerLog");
  if (!inspect.ok()) return inspect.status();
  if (!running(*inspect)) {
    return Status::Error(prefix("ReopenContainerLog", id) + ": container is not running", EIO);
  }
  if (label_of(labels_of(*inspect), kLogPathLabel).empty()) {
    return Status::Error(prefix("ReopenContainerLog", id) + ": container has no log path", EINVAL);
  }
  {
    std::lock_guard lock(copies_mu_);
    if (auto it = copies_.find(id); it != copies_.end() && !it->second->done())
      return it->second->reopen();
  }
  return start_copy(*inspect, false);
}

Result<rt::ContainerStats> DockerRuntime::container_stats(const std::string& id) {
  auto inspect = inspect_owned(id, kTypeContainer, "ContainerStats", true);
  if (!inspect.ok()) return inspect.status();
  auto stats = get_json("/containers/" + query_escape(id) + "/stats?stream=false&one-shot=true",
                        "ContainerStats", id);
  if (!stats.ok()) return stats.status();
  return stats_from_json(str(*inspect, "Id"), *stats, jget::integer<uint64_t>(*inspect, "SizeRw"));
}

// ---- log copies ----

void DockerRuntime::reap_copies() {
  for (auto it = copies_.begin(); it != copies_.end();) {
    it = it->second->done() ? copies_.erase(it) : std::next(it);
  }
}

void DockerRuntime::adopt(const std::string& id, const json& labels, rt::ContainerState state) {
  if (label_of(labels, kLogPathLabel).empty()) return;
  {
    std::lock_guard lock(copies_mu_);
    if (!seen_.insert(id).second) return;
  }
  // A container knode did not start in this process: it ran while knode was down. Its
  // copy resumes where the file ends; an exited one is drained once, unless its log is
  // gone already (the kubelet cleaned up).
  if (state != rt::ContainerState::kRunning && state != rt::ContainerState::kExited) return;
  auto inspect = get_json("/containers/" + query_escape(id) + "/json", "ContainerStatus", id);
  if (!inspect.ok()) return;
  const std::string path = label_of(labels, kLogPathLabel);
  if (state == rt::ContainerState::kExited && ::access(path.c_str(), F_OK) != 0) return;
  if (Status s = start_copy(*inspect, false); !s.ok()) {
    KLOG(WARNING, "container log copy did not resume")
        .kv("container", short_id(id))
        .kv("err", s.message());
  }
}

Status DockerRuntime::start_copy(const json& inspect, bool fresh) {
  LogCopier::Options o;
  o.container_id = str(inspect, "Id");
  o.path = label_of(labels_of(inspect), kLogPathLabel);
  o.tty = member(member(inspect, "Config"), "Tty").is_boolean() &&
          member(member(inspect, "Config"), "Tty").get<bool>();
  o.after = fresh ? 0 : resume_point(o.path);
  o.retry = options_.log_retry;
  const std::string cid = o.container_id;
  LogSource source = [this, cid](rt::UnixNanos since, const OnData& on_data,
                                 Cancel& cancel) -> Status {
    auto api = api_prefix();
    if (!api.ok()) return api.status();
    std::string target =
        *api + "/containers/" + cid + "/logs?follow=1&stdout=1&stderr=1&timestamps=1";
    if (since > 0) target += "&since=" + since_param(since);
    auto r = client_.stream({"GET", target, "", {}}, std::nullopt, on_data, &cancel);
    if (!r.ok()) return r.status();
    if (r->status != 200) return http_error(*r, "ContainerLogs", cid);
    return Status::Ok();
  };
  RunningCheck check = [this, cid]() -> Result<bool> {
    auto j = get_json("/containers/" + cid + "/json", "ContainerStatus", cid);
    if (!j.ok()) return j.status();
    return running(*j);
  };
  auto copier = LogCopier::start(std::move(o), std::move(source), std::move(check));
  if (!copier.ok()) return copier.status();
  std::unique_ptr<LogCopier> old;
  {
    std::lock_guard lock(copies_mu_);
    reap_copies();
    seen_.insert(cid);
    auto& slot = copies_[cid];
    old = std::move(slot);
    slot = std::move(*copier);
  }
  return Status::Ok();  // `old` (a finished or superseded copy) stops outside the lock
}

void DockerRuntime::end_copy(const std::string& id) {
  std::unique_ptr<LogCopier> c;
  {
    std::lock_guard lock(copies_mu_);
    reap_copies();
    if (auto it = copies_.find(id); it != copies_.end()) {
      c = std::move(it->second);
      copies_.erase(it);
    }
    seen_.erase(id);
  }
  // Outside the lock: stopping joins the thread.
}

// ---- images ----

Result<std::string> DockerRuntime::pull_image(const rt::ImageSpec& image,
                                              const std::optional<rt::AuthConfig>& auth,
                                              const rt::PodSandboxConfig* /*sandbox_config*/) {
  const auto [from, tag] = pull_params(image.image);
  std::vector<std::pair<std::string, std::string>> headers;
  if (auth) headers.emplace_back("X-Registry-Auth", registry_auth(*auth));
  auto api = api_prefix();
  if (!api.ok()) return api.status();
  JsonMessages messages;
  std::string failure;
  Status parsed;
  auto r = client_.stream(
      {"POST",
       *api + "/images/create?fromImage=" + query_escape(from) + "&tag=" + query_escape(tag), "",
       headers},
      after(options_.request_timeout), [&](std::string_view data) {
        parsed = messages.feed(data, [&](const json& m) {
          if (std::string e = progress_error(m); !e.empty()) failure = e;
          return Status::Ok();
        });
        return parsed.ok();
      });
  if (!r.ok()) return r.status().Wrap(prefix("PullImage", image.image));
  if (r->status != 200) return http_error(*r, "PullImage", image.image);
  if (!parsed.ok()) return parsed.Wrap(prefix("PullImage", image.image));
  if (!failure.empty()) {
    const bool missing = failure.find("not found") != std::string::npos ||
                         failure.find("manifest unknown") != std::string::npos;
    return Status::Error(prefix("PullImage", image.image) + ": " + failure, missing ? ENOENT : EIO);
  }
  auto pulled = image_json(image.image, "PullImage");
  if (!pulled.ok()) return pulled.status();
  const std::string id = str(*pulled, "Id");
  if (id.empty())
    return Status::Error(prefix("PullImage", image.image) + ": the image has no ID", EIO);
  return id;
}

bool DockerRuntime::pinned(const rt::Image& image) const {
  const std::string& pause = options_.pod_infra_image;
  for (const auto& t : image.repo_tags) {
    if (t == pause || t == pause + ":latest") return true;
  }
  for (const auto& d : image.repo_digests) {
    if (d == pause) return true;
  }
  return image.id == pause;
}

Result<std::optional<rt::Image>> DockerRuntime::image_status(const rt::ImageSpec& image) {
  auto r = send("GET", "/images/" + path_escape(image.image) + "/json", "", "ImageStatus",
                image.image, options_.request_timeout);
  if (!r.ok()) return r.status();
  if (r->status == 404) return std::optional<rt::Image>();
  if (r->status != 200) return http_error(*r, "ImageStatus", image.image);
  json j = json::parse(r->body, nullptr, false);
  rt::Image out = image_from_json(j);
  out.pinned = pinned(out);
  return std::optional<rt::Image>(std::move(out));
}

Result<std::vector<rt::Image>> DockerRuntime::list_images() {
  auto j = get_json("/images/json", "ListImages", "");
  if (!j.ok()) return j.status();
  std::vector<rt::Image> out;
  if (!j->is_array()) return out;
  for (const auto& item : *j) {
    rt::Image img = image_from_json(item);
    img.pinned = pinned(img);
    out.push_back(std::move(img));
  }
  return out;
}

Status DockerRuntime::remove_image(const rt::ImageSpec& image) {
  auto found = image_status(image);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return Status::Ok();
  const rt::Image& img = **found;
  auto del = [&](const std::string& ref) -> Status {
    auto r = send("DELETE", "/images/" + path_escape(ref), "", "RemoveImage", image.image,
                  options_.request_timeout);
    if (!r.ok()) return r.status();
    if (r->status == 200 || r->status == 404) return Status::Ok();
    return http_error(*r, "RemoveImage", image.image);
  };
  // Tag by tag, as dockershim did: removing by ID refuses an image with several tags.
  for (const auto& tag : img.repo_tags) {
    if (Status s = del(tag); !s.ok()) return s;
  }
  auto left = image_status({img.id, {}});
  if (!left.ok()) return left.status();
  if (left->has_value()) return del(img.id);
  return Status::Ok();
}

Result<std::vector<rt::FilesystemUsage>> DockerRuntime::image_fs_info() {
  auto info = get_json("/info", "ImageFsInfo", "");
  if (!info.ok()) return info.status();
  auto df = get_json("/system/df", "ImageFsInfo", "");
  if (!df.ok()) return df.status();
  rt::FilesystemUsage fs;
  fs.mountpoint = str(*info, "DockerRootDir");
  fs.used_bytes = jget::integer<uint64_t>(*df, "LayersSize");
  return std::vector<rt::FilesystemUsage>{fs};
}

// ---- streaming: exec, attach and port-forward through knode's own streaming server ----

namespace {

// A socket that the pipe's callbacks (called from the session's reader thread) share
// with the backend: it is closed when the last of them lets go, never under a callback.
struct SharedSocket {
  explicit SharedSocket(int f) : fd(f) {}
  ~SharedSocket() { ::close(fd); }
  SharedSocket(const SharedSocket&) = delete;
  SharedSocket& operator=(const SharedSocket&) = delete;

  void send(std::string_view data) {
    std::lock_guard lock(mu);  // pieces in order, whole
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  const int fd;
  std::mutex mu;
};

// Copies what the socket carries to the client until it ends (or the client goes, which
// shuts the socket), stdin the other way: a TTY's output as it is, else dockerd's
// multiplexed frames to stdout and stderr.
// ECONNABORTED when the client went away first.
Status pump(const std::shared_ptr<SharedSocket>& sock, std::string ahead, bool tty, bool with_stdin,
            streaming::Pipe& pipe) {
  auto gone = std::make_shared<std::atomic<bool>>(false);
  pipe.on_gone([sock, gone] {
    gone->store(true);
    ::shutdown(sock->fd, SHUT_RDWR);
  });
  if (with_stdin) {
    pipe.on_input([sock](std::string_view data) { sock->send(data); },
                  [sock] { ::shutdown(sock->fd, SHUT_WR); });
  }
  StreamDemuxer demux;
  Status demuxed;
  bool client_there = true;
  auto deliver = [&](std::string_view data) {
    if (tty) {
      client_there = pipe.write(1, data) && client_there;
      return;
    }
    demuxed = demux.feed(data, [&](StreamType st, std::string_view payload) {
      if (st == StreamType::kStdout || st == StreamType::kStderr)
        client_there = pipe.write(st == StreamType::kStderr ? 2 : 1, payload) && client_there;
      return true;
    });
  };
  deliver(ahead);
  char buf[32 * 1024];
  while (demuxed.ok() && client_there) {
    ssize_t n = ::recv(sock->fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    deliver(std::string_view(buf, static_cast<size_t>(n)));
  }
  // The callbacks may still hold the socket: they find it shut.
  ::shutdown(sock->fd, SHUT_RDWR);
  if (gone->load() || !client_there) return Status::Error("the client went away", ECONNABORTED);
  return demuxed;
}

}  // namespace

Result<streaming::Server*> DockerRuntime::stream_server(const std::string& id, const char* type,
                                                        std::string_view call) {
  auto inspect = inspect_owned(id, type, call);
  if (!inspect.ok()) return inspect.status();
  if (!running(*inspect)) return Status::Error(prefix(call, id) + ": not running", EINVAL);
  std::lock_guard lock(stream_mu_);
  if (!stream_server_) {
    auto server = streaming::Server::start(*this);
    if (!server.ok()) return server.status().Wrap("docker: start the streaming server");
    stream_server_ = std::move(*server);
  }
  return stream_server_.get();
}

Result<std::string> DockerRuntime::exec(const rt::ExecRequest& request) {
  auto server = stream_server(request.container_id, kTypeContainer, "Exec");
  if (!server.ok()) return server.status();
  return (*server)->exec_url(request);
}

Result<std::string> DockerRuntime::attach(const rt::AttachRequest& request) {
  auto server = stream_server(request.container_id, kTypeContainer, "Attach");
  if (!server.ok()) return server.status();
  return (*server)->attach_url(request);
}

Result<std::string> DockerRuntime::port_forward(const std::string& pod_sandbox_id, const std::vector<int32_t>&) {
  auto server = stream_server(pod_sandbox_id, kTypeSandbox, "PortForward");
  if (!server.ok()) return server.status();
  return (*server)->port_forward_url(pod_sandbox_id);
}

Result<int> DockerRuntime::exec(const rt::ExecRequest& request, streaming::Pipe& pipe) {
  const std::string& id = request.container_id;
  auto inspect = inspect_owned(id, kTypeContainer, "Exec");
  if (!inspect.ok()) return inspect.status();
  json create = {{"AttachStdin", request.stdin_},
                 {"AttachStdout", request.stdout_},
                 {"AttachStderr", request.stderr_ || request.tty},
                 {"Tty", request.tty},
                 {"Cmd", request.cmd}};
  auto made = send("POST", "/containers/" + query_escape(id) + "/exec", jget::dump(create), "Exec", id,
                   options_.request_timeout);
  if (!made.ok()) return made.status();
  if (made->status != 201) return http_error(*made, "Exec", id);
  const std::string exec_id = str(json::parse(made->body, nullptr, false), "Id");
  if (exec_id.empty()) return Status::Error(prefix("Exec", id) + ": the answer has no exec Id", EIO);
  auto api = api_prefix();
  if (!api.ok()) return api.status();
  auto hijacked = client_.hijack_connection(
      {"POST", *api + "/exec/" + exec_id + "/start", jget::dump(json{{"Detach", false}, {"Tty", request.tty}}), {}},
      after(options_.request_timeout));
  if (!hijacked.ok()) return hijacked.status().Wrap(prefix("Exec", id));
  if (hijacked->fd < 0) return http_error(hijacked->head, "Exec", id);
  auto sock = std::make_shared<SharedSocket>(hijacked->fd);
  if (request.tty) {
    pipe.on_resize([this, exec_id, id](streaming::TerminalSize size) {
      // The first size can come before dockerd started the process (its 101 comes first):
      // asked again a few times, as the docker CLI does.
      Result<HttpResponse> r = Status::Error("not sent", EIO);
      for (int attempt = 1; attempt <= 5; ++attempt) {
        r = send("POST",
                 "/exec/" + exec_id + "/resize?h=" + std::to_string(size.height) + "&w=" + std::to_string(size.width),
                 "", "Exec", id, options_.request_timeout);
        if (r.ok() && r->status < 300) return;
        if (r.ok() && error_message(*r).find("stopped") != std::string::npos) break;  // it ended
        std::this_thread::sleep_for(milliseconds(10 * attempt));
      }
      if (!r.ok() || r->status >= 300) {
        KLOGV(2, "docker: resize an exec's terminal failed")
            .kv("container", id)
            .kv("error", r.ok() ? http_error(*r, "resize", id).message() : r.status().message());
      }
    });
  }
  Status pumped = pump(sock, std::move(hijacked->ahead), request.tty, request.stdin_, pipe);
  if (!pumped.ok()) return pumped.Wrap(prefix("Exec", id));
  return exec_exit_code(exec_id, id, "Exec");
}

Status DockerRuntime::attach(const rt::AttachRequest& request, streaming::Pipe& pipe) {
  const std::string& id = request.container_id;
  auto inspect = inspect_owned(id, kTypeContainer, "Attach");
  if (!inspect.ok()) return inspect.status();
  // The stream's framing is the container's: raw with its TTY, multiplexed without.
  const json& config = member(*inspect, "Config");
  const bool tty = member(config, "Tty").is_boolean() && member(config, "Tty").get<bool>();
  auto api = api_prefix();
  if (!api.ok()) return api.status();
  const std::string target = *api + "/containers/" + query_escape(id) + "/attach?stream=1&stdin=" +
                             (request.stdin_ ? "1" : "0") + "&stdout=" + (request.stdout_ ? "1" : "0") +
                             "&stderr=" + (request.stderr_ ? "1" : "0");
  auto hijacked = client_.hijack_connection({"POST", target, "", {}}, after(options_.request_timeout));
  if (!hijacked.ok()) return hijacked.status().Wrap(prefix("Attach", id));
  if (hijacked->fd < 0) return http_error(hijacked->head, "Attach", id);
  auto sock = std::make_shared<SharedSocket>(hijacked->fd);
  if (tty) {
    pipe.on_resize([this, id](streaming::TerminalSize size) {
      auto r = send("POST",
                    "/containers/" + query_escape(id) + "/resize?h=" + std::to_string(size.height) +
                        "&w=" + std::to_string(size.width),
                    "", "Attach", id, options_.request_timeout);
      if (!r.ok() || r->status >= 300) {
        KLOGV(2, "docker: resize a container's terminal failed")
            .kv("container", id)
            .kv("error", r.ok() ? http_error(*r, "resize", id).message() : r.status().message());
      }
    });
  }
  Status pumped = pump(sock, std::move(hijacked->ahead), tty, request.stdin_, pipe);
  return pumped.ok() ? Status::Ok() : pumped.Wrap(prefix("Attach", id));
}

Status DockerRuntime::port_forward(const std::string& sandbox_id, int32_t port, streaming::Pipe& pipe) {
  auto inspect = inspect_owned(sandbox_id, kTypeSandbox, "PortForward");
  if (!inspect.ok()) return inspect.status();
  if (!running(*inspect) || pid_of(*inspect) <= 0)
    return Status::Error(prefix("PortForward", sandbox_id) + ": sandbox is not running", EINVAL);
  // The pod's "localhost", as the kubelet's port-forward means it: the loopback of the
  // sandbox's network namespace. The socket is made there and stays there.
  const std::string netns = "/proc/" + std::to_string(pid_of(*inspect)) + "/ns/net";
  auto connected = netns::with_netns(netns, [&]() -> Result<int> {
    int err = ECONNREFUSED;
    for (int family : {AF_INET, AF_INET6}) {
      int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        err = errno;
        continue;
      }
      sockaddr_storage ss{};
      socklen_t len;
      if (family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(static_cast<uint16_t>(port));
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(sockaddr_in);
      } else {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(static_cast<uint16_t>(port));
        a->sin6_addr = in6addr_loopback;
        len = sizeof(sockaddr_in6);
      }
      if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) return fd;
      err = errno;
      ::close(fd);
    }
    return Status::FromErrno("connect to localhost:" + std::to_string(port) + " in the pod's network namespace", err);
  });
  if (!connected.ok()) return connected.status();
  auto sock = std::make_shared<SharedSocket>(*connected);
  pipe.on_gone([sock] { ::shutdown(sock->fd, SHUT_RDWR); });
  pipe.on_input([sock](std::string_view data) { sock->send(data); }, [sock] { ::shutdown(sock->fd, SHUT_WR); });
  char buf[32 * 1024];
  for (;;) {
    ssize_t n = ::recv(sock->fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!pipe.write(1, std::string_view(buf, static_cast<size_t>(n)))) break;
  }
  ::shutdown(sock->fd, SHUT_RDWR);
  return Status::Ok();
}

}  // namespace knode::docker
