#include "node_environment.h"

#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "knode/file.h"
#include "knode/log.h"
#include "logs/log_reader.h"
#include "pod/etc_hosts.h"
#include "pod/image_policy.h"
#include "prober/lifecycle.h"
#include "pod/status.h"

namespace knode::kubelet {

NodeEnvironment::NodeEnvironment(runtime::ContainerRuntime& rt, ObjectCache& cache, LogManager& logs,
                                 std::string pods_dir, const Clock& clock, std::string cluster_domain,
                                 std::string host_etc_hosts)
    : rt_(rt),
      cache_(cache),
      logs_(logs),
      images_(rt, clock),
      pods_dir_(std::move(pods_dir)),
      cluster_domain_(std::move(cluster_domain)),
      host_etc_hosts_(std::move(host_etc_hosts)) {}

Result<std::optional<runtime::Mount>> NodeEnvironment::etc_hosts(const api::Pod& pod,
                                                                 const std::vector<std::string>& pod_ips) {
  // As upstream: a pod IP is needed (none yet: nothing is managed), and host-network pods
  // get the node's file with their aliases.
  if (!pod.spec.host_network && pod_ips.empty()) return std::optional<runtime::Mount>();
  std::string host;
  if (pod.spec.host_network) {
    auto text = read_file(host_etc_hosts_);
    if (!text.ok()) return text.status();
    host = std::move(*text);
  }
  const std::string content = managed_etc_hosts(pod, pod_ips, cluster_domain_, host);
  const std::string dir = pods_dir_ + "/" + pod.metadata.uid;
  const std::string path = dir + "/etc-hosts";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Error("create " + dir + ": " + ec.message());
  // Written when it differs, in place (not renamed over): the bind mounts of the pod's
  // running containers keep the inode and never see it half written for nothing.
  if (auto had = read_file(path); !had.ok() || *had != content) {
    std::ofstream out(path, std::ios::trunc);
    out << content;
    if (!out.good()) return Status::Error("write " + path);
  }
  runtime::Mount m;
  m.container_path = kEtcHostsPath;
  m.host_path = path;
  return std::optional<runtime::Mount>(m);
}

PodEnvironment::Image NodeEnvironment::ensure_image(const api::Pod& pod, const api::Container& c,
                                                    const EnvLookup& lookup, const runtime::PodSandboxConfig& sandbox) {
  Image out;
  std::vector<const api::Secret*> secrets;
  for (const auto& s : pod.spec.image_pull_secrets) {
    if (const auto* secret = lookup.secret(pod.metadata.namespace_, s.name)) secrets.push_back(secret);
  }
  auto creds = credentials_for(c.image, secrets);
  if (!creds.ok()) {
    out.waiting = StartFailure{kErrImagePull, creds.error()};
    return out;
  }
  EnsureResult r = images_.ensure_image(pod, c, *creds, &sandbox);
  out.events = r.events;
  if (!r.ok()) {
    out.waiting = StartFailure{r.reason, r.message};
    return out;
  }
  out.ref = r.image_ref;
  return out;
}

// Idempotent: the pod worker calls it on every sync, which also brings configMap, secret
// and downwardAPI contents up to date in a running pod.
Status NodeEnvironment::setup_volumes(const api::Pod& pod, const EnvLookup& lookup) {
  if (pod.spec.volumes.empty()) return Status::Ok();
  VolumeManager vm(pods_dir_, lookup, mounter_);
  auto v = vm.setup(pod);
  if (!v.ok()) return v.status();
  if (Status s = vm.refresh(pod); !s.ok()) return s;
  std::lock_guard lock(mu_);
  volumes_[pod.metadata.uid] = std::move(*v);
  return Status::Ok();
}

Result<std::vector<runtime::Mount>> NodeEnvironment::mounts(const api::Pod& pod, const api::Container& c,
                                                            const std::vector<runtime::KeyValue>& env) {
  if (c.volume_mounts.empty()) return std::vector<runtime::Mount>{};
  PodVolumes volumes;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(pod.metadata.uid);
    if (it != volumes_.end()) volumes = it->second;
  }
  auto lookup = cache_.snapshot();
  VolumeManager vm(pods_dir_, *lookup, mounter_);
  return vm.mounts_for(pod, c, volumes, env);
}

Result<std::optional<runtime::Mount>> NodeEnvironment::termination_log(const api::Pod& pod, const api::Container& c,
                                                                       uint32_t attempt) {
  if (c.termination_message_path.empty()) return std::optional<runtime::Mount>();
  const std::string dir = pods_dir_ + "/" + pod.metadata.uid + "/containers/" + c.name;
  const std::string path = dir + "/" + std::to_string(attempt);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Error("create " + dir + ": " + ec.message());
  {
    std::ofstream out(path, std::ios::trunc);  // empty: a new attempt starts with no message
    if (!out.good()) return Status::Error("create " + path);
  }
  // Any user may write it (upstream: 0666): the container need not run as root.
  std::filesystem::permissions(path, std::filesystem::perms(0666), ec);
  runtime::Mount m;
  m.container_path = c.termination_message_path;
  m.host_path = path;
  return std::optional<runtime::Mount>(m);
}

std::string NodeEnvironment::termination_message(const api::Container& c, const runtime::ContainerStatus& status) {
  constexpr size_t kMaxFileBytes = 4096;
  std::string message;
  if (!c.termination_message_path.empty()) {
    for (const auto& m : status.mounts) {
      if (m.container_path != c.termination_message_path) continue;
      std::ifstream in(m.host_path, std::ios::binary);
      message.resize(kMaxFileBytes);
      in.read(message.data(), static_cast<std::streamsize>(kMaxFileBytes));
      message.resize(static_cast<size_t>(in.gcount()));
      break;
    }
  }
  if (message.empty() && c.termination_message_policy == "FallbackToLogsOnError" && status.exit_code != 0 &&
      !status.log_path.empty()) {
    LogReadOptions o;
    o.tail_lines = 80;
    o.limit_bytes = 2048;
    std::string tail;
    if (read_container_log(status.log_path, o, [&](std::string_view piece) {
          tail.append(piece);
          return true;
        }).ok()) {
      message = std::move(tail);
    }
  }
  return message;
}

Status NodeEnvironment::teardown_volumes(const std::string& pod_uid) {
  const std::string hosts = pods_dir_ + "/" + pod_uid + "/etc-hosts";
  if (::unlink(hosts.c_str()) != 0 && errno != ENOENT) return Status::FromErrno("remove " + hosts, errno);
  std::error_code ec;
  std::filesystem::remove_all(pods_dir_ + "/" + pod_uid + "/containers", ec);  // termination logs
  if (ec) return Status::Error("remove the termination logs of pod " + pod_uid + ": " + ec.message());
  auto lookup = cache_.snapshot();
  VolumeManager vm(pods_dir_, *lookup, mounter_);
  Status s = vm.teardown(pod_uid);
  if (s.ok()) {
    cache_.pod_gone(pod_uid);
    std::lock_guard lock(mu_);
    volumes_.erase(pod_uid);
  }
  return s;
}

Status NodeEnvironment::prepare_logs(const api::Pod& pod, const api::Container& c) {
  return logs_.ensure_container_log_directory(pod.metadata.namespace_, pod.metadata.name, pod.metadata.uid, c.name)
      .status();
}

void NodeEnvironment::container_started(const api::Pod& pod, const api::Container& c,
                                        const std::string& container_id, const std::string& log_path) {
  if (Status s = logs_.link_container_log(pod.metadata.namespace_, pod.metadata.name, c.name, container_id, log_path);
      !s.ok()) {
    KLOG(WARNING, "cannot link the container's log").kv("id", container_id.substr(0, 12)).kv("err", s.message());
  }
}

Status NodeEnvironment::run_hook(const api::LifecycleHandler& h, const api::Pod& pod, const api::Container& c,
                                 const std::string& container_id, const std::string& pod_ip,
                                 std::chrono::seconds budget) {
  prober::ProbeTarget target;
  target.pod_name = pod.metadata.name;
  target.pod_namespace = pod.metadata.namespace_;
  target.pod_uid = pod.metadata.uid;
  target.pod_ip = pod_ip;
  target.container_name = c.name;
  target.container_id = container_id;
  target.ports = c.ports;
  target.env = c.env;
  target.runtime = &rt_;
  return prober::run_handler(h, target, budget);
}

}  // namespace knode::kubelet
