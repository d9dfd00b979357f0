#include "cluster/node_status.h"

#include <sys/statvfs.h>
#include <sys/utsname.h>

#include <cerrno>
#include <dirent.h>
#include <fstream>
#include <sstream>

#include "knode/api/codec.h"
#include "knode/json_get.h"
#include "knode/kube/informer.h"
#include "knode/log.h"

namespace knode::kubelet {

using nlohmann::json;

namespace {

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string os_image() {
  std::ifstream in("/etc/os-release");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("PRETTY_NAME=")) {
      std::string v = line.substr(12);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return v;
    }
  }
  return "Linux";
}

int64_t mem_field(const std::string& field) {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb) {
    std::getline(in, unit);
    if (key == field + ":") return kb * 1024;
  }
  return -1;
}

api::Quantity quantity(int64_t v) { return *api::Quantity::Parse(std::to_string(v)); }

api::NodeCondition condition(const std::string& type, bool status, const std::string& reason,
                             const std::string& message) {
  api::NodeCondition c;
  c.type = type;
  c.status = status ? "True" : "False";
  c.reason = reason;
  c.message = message;
  return c;
}

}  // namespace

NodeFacts read_node_facts(const std::string& name, const std::vector<std::string>& ips, const std::string& root_dir) {
  NodeFacts f;
  f.name = name;
  f.hostname = name;
  f.internal_ips = ips;
  f.cpus = std::max(1u, std::thread::hardware_concurrency());
  f.memory_bytes = std::max<int64_t>(0, mem_field("MemTotal"));
  struct statvfs st {};
  if (::statvfs(root_dir.c_str(), &st) == 0) f.ephemeral_storage_bytes = static_cast<int64_t>(st.f_blocks) * st.f_frsize;
  struct utsname u {};
  if (::uname(&u) == 0) {
    f.kernel_version = u.release;
    std::string m = u.machine;
    f.architecture = m == "x86_64" ? "amd64" : m == "aarch64" ? "arm64" : m;
  }
  f.os_image = os_image();
  f.machine_id = first_line("/etc/machine-id");
  f.boot_id = first_line("/proc/sys/kernel/random/boot_id");
  f.kubelet_version = "v1.37.2+knode.0.1.0";
  return f;
}

NodeSignals sample_pressure(const std::string& root_dir) {
  NodeSignals s;
  // The upstream kubelet's default hard eviction thresholds.
  int64_t avail = mem_field("MemAvailable");
  s.memory_pressure = avail >= 0 && avail < (100ll << 20);
  struct statvfs st {};
  if (::statvfs(root_dir.c_str(), &st) == 0 && st.f_blocks > 0) {
    s.disk_pressure = static_cast<double>(st.f_bavail) / static_cast<double>(st.f_blocks) < 0.10;
  }
  int64_t pid_max = 0;
  std::istringstream(first_line("/proc/sys/kernel/pid_max")) >> pid_max;
  int64_t procs = 0;
  if (DIR* d = ::opendir("/proc")) {
    while (auto* e = ::readdir(d)) procs += e->d_name[0] >= '0' && e->d_name[0] <= '9';
    ::closedir(d);
  }
  s.pid_pressure = pid_max > 0 && pid_max - procs < pid_max / 20;
  return s;
}

api::Node registration(const NodeFacts& f) {
  api::Node n;
  n.metadata.name = f.name;
  n.metadata.labels = {{"kubernetes.io/hostname", f.hostname},
                       {"kubernetes.io/os", "linux"},
                       {"kubernetes.io/arch", f.architecture},
                       {"beta.kubernetes.io/os", "linux"},
                       {"beta.kubernetes.io/arch", f.architecture}};
  n.metadata.annotations = {{"volumes.kubernetes.io/controller-managed-attach-detach", "true"}};
  return n;
}

api::NodeStatus node_status(const NodeFacts& f, const NodeSignals& s, const std::vector<api::NodeCondition>& prev,
                            api::Time now) {
  api::NodeStatus st;
  st.capacity["cpu"] = quantity(f.cpus);
  st.capacity["memory"] = *api::Quantity::Parse(std::to_string(f.memory_bytes / 1024) + "Ki");
  st.capacity["pods"] = quantity(f.max_pods);
  st.capacity["ephemeral-storage"] = *api::Quantity::Parse(std::to_string(f.ephemeral_storage_bytes / 1024) + "Ki");
  st.allocatable = st.capacity;
  for (const auto& ip : f.internal_ips) st.addresses.push_back({"InternalIP", ip});
  st.addresses.push_back({"Hostname", f.hostname});
  st.daemon_endpoints.kubelet_endpoint.port = f.kubelet_port;
  auto& ni = st.node_info;
  ni.machine_id = f.machine_id;
  ni.system_uuid = f.machine_id;
  ni.boot_id = f.boot_id;
  ni.kernel_version = f.kernel_version;
  ni.os_image = f.os_image;
  ni.container_runtime_version = s.runtime_version;
  ni.kubelet_version = f.kubelet_version;
  ni.kube_proxy_version = f.kubelet_version;
  ni.operating_system = "linux";
  ni.architecture = f.architecture;
  st.conditions = {
      s.memory_pressure ? condition("MemoryPressure", true, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
                        : condition("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
      s.disk_pressure ? condition("DiskPressure", true, "KubeletHasDiskPressure", "kubelet has disk pressure")
                      : condition("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
      s.pid_pressure ? condition("PIDPressure", true, "KubeletHasInsufficientPID", "kubelet has insufficient PID available")
                     : condition("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
      s.runtime_ready ? condition("Ready", true, "KubeletReady", "kubelet is posting ready status")
                      : condition("Ready", false, "KubeletNotReady", s.not_ready_message),
  };
  for (auto& c : st.conditions) {
    c.last_heartbeat_time = now;
    c.last_transition_time = now;
    for (const auto& p : prev) {
      if (p.type == c.type && p.status == c.status && p.last_transition_time.is_set()) {
        c.last_transition_time = p.last_transition_time;
      }
    }
  }
  return st;
}

bool status_differs(const api::NodeStatus& a, const api::NodeStatus& b) {
  api::NodeStatus x = a, y = b;
  for (auto* s : {&x, &y}) {
    for (auto& c : s->conditions) c.last_heartbeat_time = api::Time();
  }
  return !(x == y);
}

std::string micro_time(api::Time t) {
  std::string base = api::Time::FromUnixNanos(t.unix_seconds() * 1000000000).str();  // "...:05Z"
  char frac[16];
  snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>((t.unix_nanos() % 1000000000) / 1000));
  return base.substr(0, base.size() - 1) + frac + "Z";
}

json lease_object(const std::string& node, const std::string& node_uid, int duration_seconds, api::Time renew) {
  json meta = {{"name", node}, {"namespace", "kube-node-lease"}};
  if (!node_uid.empty()) {
    meta["ownerReferences"] = json::array({{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}, {"uid", node_uid}}});
  }
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", meta},
          {"spec", {{"holderIdentity", node}, {"leaseDurationSeconds", duration_seconds}, {"renewTime", micro_time(renew)}}}};
}

// ---- NodeReporter ----

NodeReporter::NodeReporter(kube::RestClient& client, NodeFacts facts, std::function<NodeSignals()> signals,
                           NodeReporterOptions options)
    : client_(client), facts_(std::move(facts)), signals_(std::move(signals)), options_(options) {}

NodeReporter::~NodeReporter() { stop(); }

void NodeReporter::start() {
  worker_.start([this] { run(); });
}

void NodeReporter::stop() {
  worker_.stop([this] { cancel_.cancel(); });
}

namespace {

Status http_error(const std::string& what, const kube::Response& r) {
  return Status::Error(what + ": HTTP " + std::to_string(r.status) + ": " + kube::status_message(r), r.status);
}

}  // namespace

Status NodeReporter::register_node() {
  const std::string what = "register node " + facts_.name;
  json body = api::to_json(api::Object(registration(facts_)));
  auto r = client_.request("POST", kube::collection_path(api::Kind::kNode), jget::dump(body), "application/json", &cancel_);
  if (!r.ok()) return r.status().Wrap(what);
  if (r->status == 409) {  // registered before: take it over
    r = client_.request("GET", kube::object_path(api::Kind::kNode, "", facts_.name), "", "application/json", &cancel_);
    if (!r.ok()) return r.status().Wrap(what);
  }
  if (!r->ok()) return http_error(what, *r);
  json node = json::parse(r->body, nullptr, false);
  if (node.is_object() && node.contains("metadata")) node_uid_ = jget::str(node["metadata"], "uid");
  KLOG(INFO, "node registered").kv("node", facts_.name).kv("uid", node_uid_);
  registered_ = true;
  return Status::Ok();
}

Status NodeReporter::write_status(bool force) {
  NodeSignals s = signals_();
  // The conditions as the API has them, which need not be the ones written last: the node
  // lifecycle controller sets them Unknown when it has not seen the Lease renewed for its
  // grace period (an API server away that long), and only a write from here sets them
  // back. Upstream's kubelet reads the Node before each status update for this reason.
  std::vector<api::NodeCondition> prev = last_written_.conditions;
  bool overwritten = false;
  if (!force) {
    // (Unread, it is taken to be what was written: the write decides as it did before.)
    auto cur = client_.request("GET", kube::object_path(api::Kind::kNode, "", facts_.name) + "?resourceVersion=0", "",
                               "application/json", &cancel_);
    const json node = cur.ok() && cur->ok() ? json::parse(cur->body, nullptr, false) : json();
    const json& conditions = jget::member(jget::member(node, "status"), "conditions");
    for (const auto& c : conditions.is_array() ? conditions : json::array()) {
      const std::string type = jget::str(c, "type"), status = jget::str(c, "status");
      // A condition the API has otherwise changes now: its transition time is new.
      overwritten |= std::erase_if(prev, [&](const api::NodeCondition& p) {
        return p.type == type && p.status != status;
      }) > 0;
    }
  }
  api::NodeStatus st = node_status(facts_, s, prev, api::Time::Now());
  const auto now = std::chrono::steady_clock::now();
  if (!force && !overwritten && !status_differs(st, last_written_) && now - last_write_ < options_.report_interval) {
    return Status::Ok();
  }
  if (overwritten) KLOG(INFO, "node status changed in the API; writing it again").kv("node", facts_.name);
  api::Node n;
  n.metadata.name = facts_.name;
  n.status = st;
  json full = api::to_json(api::Object(n));
  json patch = {{"status", full["status"]}};
  const std::string what = "update node " + facts_.name + " status";
  auto r = client_.request("PATCH", kube::object_path(api::Kind::kNode, "", facts_.name) + "/status", jget::dump(patch),
                           "application/merge-patch+json", &cancel_);
  if (!r.ok()) return r.status().Wrap(what);
  if (!r->ok()) return http_error(what, *r);
  if (status_differs(st, last_written_)) {
    KLOG(INFO, "node status written").kv("node", facts_.name).kv("ready", s.runtime_ready ? "True" : "False");
  }
  last_written_ = st;
  last_write_ = now;
  ++status_writes_;
  return Status::Ok();
}

Status NodeReporter::renew_lease() {
  const std::string path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
  const std::string what = "renew lease " + facts_.name;
  json lease = lease_object(facts_.name, node_uid_, options_.lease_duration_seconds, api::Time::Now());
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto cur = client_.request("GET", path + "/" + facts_.name, "", "application/json", &cancel_);
    if (!cur.ok()) return cur.status().Wrap(what);
    if (cur->status == 404) {
      auto r = client_.request("POST", path, jget::dump(lease), "application/json", &cancel_);
      if (!r.ok()) return r.status().Wrap(what);
      if (r->status == 409) continue;
      if (!r->ok()) return http_error(what, *r);
      ++renewals_;
      return Status::Ok();
    }
    if (!cur->ok()) return http_error(what, *cur);
    json existing = json::parse(cur->body, nullptr, false);
    if (!existing.is_object()) return Status::Error(what + ": the answer is not JSON", EIO);
    // The fields below are set with operator[], which throws on a spec or metadata that is
    // not an object (null is fine: it becomes one).
    for (const char* k : {"spec", "metadata"}) {
      const json& v = jget::member(existing, k);
      if (!v.is_null() && !v.is_object()) return Status::Error(what + ": the Lease's " + k + " is not an object", EIO);
    }
    existing["spec"]["holderIdentity"] = facts_.name;
    existing["spec"]["leaseDurationSeconds"] = options_.lease_duration_seconds;
    existing["spec"]["renewTime"] = lease["spec"]["renewTime"];
    if (!node_uid_.empty() && !existing["metadata"].contains("ownerReferences")) {
      existing["metadata"]["ownerReferences"] = lease["metadata"]["ownerReferences"];
    }
    auto r = client_.request("PUT", path + "/" + facts_.name, jget::dump(existing), "application/json", &cancel_);
    if (!r.ok()) return r.status().Wrap(what);
    if (r->status == 409) continue;  // changed meanwhile: read it again
    if (!r->ok()) return http_error(what, *r);
    ++renewals_;
    return Status::Ok();
  }
  return Status::Error(what + ": conflicting updates", EAGAIN);
}

void NodeReporter::run() {
  auto backoff = std::chrono::milliseconds(500);
  while (!registered_) {
    Status s = register_node();
    if (s.ok()) break;
    if (s.error_number() == ECANCELED) return;
    KLOG(WARNING, "cannot register the node; retrying").kv("err", s.message());
    if (!worker_.wait(backoff)) return;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(7000));
  }
  auto next_status = std::chrono::steady_clock::now();
  auto next_lease = next_status;
  bool force = true;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_status) {
      Status s = write_status(force);
      if (s.ok()) {
        force = false;
        next_status = now + options_.status_interval;
      } else {
        if (s.error_number() == ECANCELED) return;
        KLOG(WARNING, "cannot update the node's status").kv("err", s.message());
        next_status = now + std::min<std::chrono::milliseconds>(options_.status_interval, std::chrono::seconds(2));
      }
    }
    if (now >= next_lease) {
      Status s = renew_lease();
      if (s.ok()) {
        next_lease = now + options_.lease_renew_interval;
      } else {
        if (s.error_number() == ECANCELED) return;
        KLOG(WARNING, "cannot renew the node's lease").kv("err", s.message());
        next_lease = now + std::min<std::chrono::milliseconds>(options_.lease_renew_interval, std::chrono::seconds(1));
      }
    }
    auto until = std::min(next_status, next_lease);
    if (!worker_.wait(std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()) +
                      std::chrono::milliseconds(1))) {
      return;
    }
  }
}

}  // namespace knode::kubelet
