#include "volume/volume_manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <set>

#include "knode/log.h"
#include "volume/atomic_writer.h"
#include "volume/fs_util.h"
#include "volume/host_path.h"
#include "volume/payload.h"

namespace knode::kubelet {
namespace {

using volume::UniqueFd;

constexpr char kEmptyDir[] = "kubernetes.io/empty-dir";
constexpr char kHostPath[] = "kubernetes.io/host-path";
constexpr char kConfigMap[] = "kubernetes.io/configmap";
constexpr char kSecret[] = "kubernetes.io/secret";
constexpr char kDownwardAPI[] = "kubernetes.io/downward-api";
constexpr char kProjected[] = "kubernetes.io/projected";
constexpr char kImage[] = "kubernetes.io/image";
constexpr char kNfs[] = "kubernetes.io/nfs";
constexpr char kVolumesDir[] = "volumes";
constexpr char kSubpathsDir[] = "volume-subpaths";
// emptyDir's directory mode (upstream's `perm`); the wrapped emptyDir of configMap,
// secret, downwardAPI and projected volumes gets it too.
constexpr mode_t kVolumeDirMode = 0777;
constexpr mode_t kPodDirMode = 0750;

// "kubernetes.io/empty-dir" -> "kubernetes.io~empty-dir", as upstream names plugin folders.
std::string escape(const std::string& plugin) {
  std::string out = plugin;
  std::replace(out.begin(), out.end(), '/', '~');
  return out;
}

std::string pod_ref(const api::Pod& pod) {
  return pod.metadata.namespace_ + "/" + pod.metadata.name;
}

std::string volume_ref(const api::Pod& pod, const std::string& volume) {
  return "pod " + pod_ref(pod) + " volume \"" + volume + "\"";
}

// A single path element we may join under our own directories.
bool safe_component(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

bool is_atomic_writer(const api::Volume& v) {
  return v.config_map || v.secret || v.downward_api || v.projected;
}

Status make_dir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return Status::Ok();
  return Status::FromErrno("mkdir " + path, errno);
}

// The memory the pod may use when every container declares it (upstream's
// ResourceConfigForPod): regular containers and sidecars add up, an init container runs
// beside the sidecars started before it.
std::optional<int64_t> pod_memory_limit(const api::Pod& pod) {
  auto limit_of = [](const api::Container& c) -> int64_t {
    auto it = c.resources.limits.find("memory");
    return it == c.resources.limits.end() ? 0 : it->second.value();
  };
  int64_t sum = 0;
  for (const auto& c : pod.spec.containers) {
    if (limit_of(c) <= 0) return std::nullopt;
    sum += limit_of(c);
  }
  int64_t sidecars = 0, init_peak = 0;
  for (const auto& c : pod.spec.init_containers) {
    bool sidecar = c.restart_policy && *c.restart_policy == "Always";
    if (sidecar) {
      if (limit_of(c) <= 0) return std::nullopt;
      sidecars += limit_of(c);
      init_peak = std::max(init_peak, sidecars);
    } else {
      init_peak = std::max(init_peak, sidecars + limit_of(c));
    }
  }
  return std::max(sum + sidecars, init_peak);
}

// Upstream's calculateEmptyDirMemorySize: the smallest of the node's allocatable memory,
// the pod's memory limit and the volume's sizeLimit, each counted when known and positive.
int64_t memory_volume_size(const api::Pod& pod, const api::Quantity* size_limit,
                           const api::ResourceList& allocatable) {
  int64_t size = 0;
  auto smaller = [&size](int64_t candidate) {
    if (candidate > 0 && (size == 0 || candidate <= size)) size = candidate;
  };
  if (auto it = allocatable.find("memory"); it != allocatable.end()) smaller(it->second.value());
  if (auto limit = pod_memory_limit(pod)) smaller(*limit);
  if (size_limit != nullptr && !size_limit->empty()) smaller(size_limit->value());
  return size;
}

std::optional<gid_t> fs_group(const api::Pod& pod) {
  const auto& sc = pod.spec.security_context;
  if (!sc || !sc->fs_group) return std::nullopt;
  return static_cast<gid_t>(*sc->fs_group);
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// Entries of a directory we own, without following anything.
std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool is_real_dir(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<runtime::MountPropagation> propagation_of(const api::Container& c,
                                                 const api::VolumeMount& m) {
  const std::string& mode = m.mount_propagation;
  if (mode.empty() || mode == "None") return runtime::MountPropagation::kPrivate;
  if (mode == "HostToContainer") return runtime::MountPropagation::kHostToContainer;
  if (mode == "Bidirectional") {
    bool privileged = c.security_context && c.security_context->privileged.value_or(false);
    if (!privileged) {
      return Status::Error(
          "Bidirectional mount propagation is available only to privileged containers", EPERM);
    }
    return runtime::MountPropagation::kBidirectional;
  }
  return Status::Error("invalid MountPropagation mode: \"" + mode + "\"", EINVAL);
}

// Upstream's ExpandContainerVolumeMounts: $(VAR) from the container's environment, every
// referenced variable being required and non-empty.
Result<std::string> expand_subpath_expr(const std::string& expr, const EnvMap& env) {
  std::map<std::string, std::string, std::less<>> vars;
  for (const auto& kv : env) vars[kv.key] = kv.value;
  std::set<std::string> missing;
  std::string out = expand(expr, [&](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end() || it->second.empty()) {
      missing.insert(std::string(name));
      return std::string();
    }
    return it->second;
  });
  if (!missing.empty()) {
    return Status::Error("missing value for " + join({missing.begin(), missing.end()}, ", "),
                         EINVAL);
  }
  return out;
}

}  // namespace

VolumeManager::VolumeManager(std::string pods_dir, const EnvLookup& lookup,
                             volume::Mounter& mounter)
    : pods_dir_(std::move(pods_dir)), lookup_(lookup), mounter_(mounter) {
  while (pods_dir_.size() > 1 && pods_dir_.back() == '/') pods_dir_.pop_back();
}

Status VolumeManager::ensure_dir(const api::Pod& pod, const PodVolume& pv, int64_t tmpfs_size,
                                 bool* created) {
  const std::string& uid = pod.metadata.uid;
  std::string plugin_dir = pod_dir(uid) + "/" + kVolumesDir + "/" + escape(pv.plugin);
  for (const std::string& d :
       {pods_dir_, pod_dir(uid), pod_dir(uid) + "/" + kVolumesDir, plugin_dir}) {
    if (Status s = make_dir(d, kPodDirMode); !s.ok()) return s;
  }
  *created = false;
  if (::mkdir(pv.host_path.c_str(), kVolumeDirMode) == 0) {
    *created = true;
    // Set explicitly: mkdir(2) is masked by the umask.
    if (::chmod(pv.host_path.c_str(), kVolumeDirMode) != 0)
      return Status::FromErrno("chmod " + pv.host_path, errno);
  } else if (errno != EEXIST) {
    return Status::FromErrno("mkdir " + pv.host_path, errno);
  } else if (!is_real_dir(pv.host_path)) {
    return Status::Error(pv.host_path + " exists and is not a directory", ENOTDIR);
  }
  if (!pv.memory_backed) return Status::Ok();
  auto mounted = mounter_.is_mountpoint(pv.host_path);
  if (!mounted.ok()) return mounted.status();
  if (*mounted) return Status::Ok();
  KLOGV(3, "mounting tmpfs for volume")
      .kv("pod", pod_ref(pod))
      .kv("volume", pv.name)
      .kv("size", tmpfs_size);
  return mounter_.mount_tmpfs(pv.host_path, tmpfs_size);
}

Status VolumeManager::write_contents(const api::Pod& pod, const api::Volume& v,
                                     const std::string& field, const PodVolume& pv) {
  auto payload = volume::make_payload(pod, v, field, lookup_);
  if (!payload.ok()) return payload.status();
  int64_t size = memory_volume_size(pod, nullptr, lookup_.node_allocatable());
  bool created = false;
  if (Status s = ensure_dir(pod, pv, size, &created); !s.ok()) return s;
  volume::AtomicWriter writer(pv.host_path, pv.host_path);
  volume::AtomicWriter::SetPermissions set_permissions;
  if (auto gid = fs_group(pod)) {
    // Upstream re-owns the whole volume, not only the new data directory: the first write
    // also created the visible links and the volume's own directory.
    std::string dir = pv.host_path;
    set_permissions = [dir, gid = *gid](const std::string&) {
      return volume::set_volume_ownership(dir, gid, true);
    };
  }
  auto wrote = writer.write(*payload, set_permissions);
  if (wrote.ok()) {
    if (*wrote) KLOGV(2, "volume contents written").kv("pod", pod_ref(pod)).kv("volume", v.name);
    return Status::Ok();
  }
  if (created) {
    // A volume this call created and could not fill is taken away again, so the next
    // attempt starts clean (upstream tears the wrapped emptyDir down the same way).
    if (pv.memory_backed) {
      auto mounted = mounter_.is_mountpoint(pv.host_path);
      if (mounted.ok() && *mounted) (void)mounter_.unmount(pv.host_path);
    }
    std::string rel = std::string(kVolumesDir) + "/" + escape(pv.plugin) + "/" + pv.name;
    if (Status s = volume::remove_beneath(pod_dir(pod.metadata.uid), rel); !s.ok()) {
      KLOG(WARNING, "cannot remove a volume that failed").kv("err", s.message());
    }
  }
  return wrote.status();
}

Result<PodVolume> VolumeManager::setup_nfs(const api::Pod& pod, const std::string& name, const std::string& field,
                                           const std::string& server, const std::string& path, bool read_only,
                                           std::vector<std::string> options) {
  if (server.empty()) return Status::Error(field + ".server: required", EINVAL);
  // mount(8) would read a leading '-' as an option.
  if (server[0] == '-') return Status::Error(field + ".server: \"" + server + "\" is not a server", EINVAL);
  if (path.empty() || path[0] != '/') return Status::Error(field + ".path: must be an absolute path", EINVAL);
  PodVolume pv;
  pv.name = name;
  pv.plugin = kNfs;
  pv.host_path = pod_dir(pod.metadata.uid) + "/" + kVolumesDir + "/" + escape(kNfs) + "/" + name;
  pv.read_only = read_only;
  // Mounted already (an earlier sync, a previous knode)? Asked first, and of the mount
  // table only: a stat of the mounted directory would wait on a server that is gone.
  if (auto mounted = mounter_.is_mountpoint(pv.host_path); mounted.ok() && *mounted) return pv;
  bool created = false;
  if (Status s = ensure_dir(pod, pv, 0, &created); !s.ok()) return s;
  // The PV's options without empty or repeated ones, in their order; "ro" last, so that a
  // read-only claim wins over an "rw" among them.
  std::vector<std::string> opts;
  for (auto& o : options) {
    if (!o.empty() && o != "ro" && std::find(opts.begin(), opts.end(), o) == opts.end()) opts.push_back(std::move(o));
  }
  if (read_only) opts.emplace_back("ro");
  // An IPv6 address in brackets, as mount.nfs wants it.
  const bool v6 = server.find(':') != std::string::npos && server.front() != '[';
  const std::string source = (v6 ? "[" + server + "]" : server) + ":" + path;
  const std::string dir = pv.host_path;
  auto give_up = [&](const Status& s) -> Status {
    // The directory goes, so that the next attempt starts clean: rmdir only, so a
    // directory that is a mount or holds anything stays (nothing is deleted).
    auto still = mounter_.is_mountpoint(dir);
    if (still.ok() && !*still) ::rmdir(dir.c_str());
    return Status::Error(field + ": " + s.message(), s.error_number());
  };
  KLOGV(2, "mounting an NFS volume").kv("pod", pod_ref(pod)).kv("volume", name).kv("source", source);
  if (Status s = mounter_.mount_nfs(source, dir, opts); !s.ok()) return give_up(s);
  // mount(8) may exit 0 without a mount (the "bg" option mounts later, in the background):
  // the container would write to the node's disk instead. Refused.
  auto mounted = mounter_.is_mountpoint(dir);
  if (!mounted.ok() || !*mounted) {
    return give_up(Status::Error("mount -t nfs " + source + " returned, but " + dir +
                                     " is not a mount (\"bg\" in the mount options?)",
                                 EIO));
  }
  return pv;
}

Result<PodVolume> VolumeManager::setup_volume(const api::Pod& pod, const api::Volume& v,
                                              const std::string& field) {
  PodVolume pv;
  pv.name = v.name;
  auto dir_of = [&](const char* plugin) {
    return pod_dir(pod.metadata.uid) + "/" + kVolumesDir + "/" + escape(plugin) + "/" + v.name;
  };
  if (v.host_path) {
    pv.plugin = kHostPath;
    pv.host_path = v.host_path->path;
    if (Status s = volume::check_host_path(*v.host_path); !s.ok()) {
      return Status::Error(field + ".hostPath: " + s.message(), s.error_number());
    }
    return pv;
  }
  if (v.empty_dir) {
    const std::string& medium = v.empty_dir->medium;
    if (!medium.empty() && medium != "Memory") {
      bool hugepages = medium.rfind("HugePages", 0) == 0;
      return Status::Error(field + ".emptyDir.medium: " +
                               (hugepages ? "medium \"" + medium + "\" is not supported by knode"
                                          : "unknown storage medium \"" + medium + "\""),
                           EINVAL);
    }
    pv.plugin = kEmptyDir;
    pv.host_path = dir_of(kEmptyDir);
    pv.memory_backed = medium == "Memory";
    int64_t size = pv.memory_backed ? memory_volume_size(pod, &v.empty_dir->size_limit,
                                                         lookup_.node_allocatable())
                                    : 0;
    bool created = false;
    if (Status s = ensure_dir(pod, pv, size, &created); !s.ok()) return s;
    if (auto gid = fs_group(pod)) {
      if (Status s = volume::set_volume_ownership(pv.host_path, *gid, false); !s.ok()) return s;
    }
    return pv;
  }
  if (is_atomic_writer(v)) {
    const char* plugin = v.config_map     ? kConfigMap
                         : v.secret       ? kSecret
                         : v.downward_api ? kDownwardAPI
                                          : kProjected;
    pv.plugin = plugin;
    pv.host_path = dir_of(plugin);
    pv.read_only = true;
    // configMap sits on disk (upstream's wrapper is a plain emptyDir); the others, which
    // may hold secrets, on a tmpfs.
    pv.memory_backed = !v.config_map;
    if (Status s = write_contents(pod, v, field, pv); !s.ok()) return s;
    return pv;
  }
  if (v.image) {
    if (v.image->reference.empty()) return Status::Error(field + ".image.reference: required", EINVAL);
    pv.plugin = kImage;
    pv.read_only = true;
    pv.image = v.image->reference;
    pv.image_pull_policy = v.image->pull_policy;
    return pv;
  }
  if (v.nfs) {
    return setup_nfs(pod, v.name, field + ".nfs", v.nfs->server, v.nfs->path, v.nfs->read_only, {});
  }
  if (v.persistent_volume_claim) {
    // A claim bound to a PersistentVolume that is a directory of this node (hostPath,
    // local): mounted like a hostPath volume, read-only when the claim says so.
    const auto& c = *v.persistent_volume_claim;
    auto bound = lookup_.claimed_volume(pod.metadata.namespace_, c.claim_name);
    if (!bound.ok()) {
      return Status::Error(field + ".persistentVolumeClaim: " + bound.status().message(), bound.status().error_number());
    }
    if (bound->kind == "nfs") {
      // An NFS PersistentVolume: mounted under the pod as an inline nfs volume would be,
      // read-only when the volume or the claim says so, with the PV's mountOptions.
      return setup_nfs(pod, v.name, field + ".persistentVolumeClaim: PersistentVolume " + bound->pv_name + ": nfs",
                       bound->server, bound->path, bound->read_only || c.read_only, bound->mount_options);
    }
    api::HostPathVolumeSource src{bound->path, bound->kind == "hostPath" ? bound->host_path_type : "Directory"};
    if (Status s = volume::check_host_path(src); !s.ok()) {
      return Status::Error(field + ".persistentVolumeClaim: PersistentVolume " + bound->pv_name + ": " + s.message(),
                           s.error_number());
    }
    pv.plugin = bound->kind == "local" ? "kubernetes.io/local-volume" : kHostPath;
    pv.host_path = bound->path;
    pv.read_only = c.read_only;
    return pv;
  }
  return Status::Error(
      field +
          ": no volume source knode supports (emptyDir, hostPath, configMap, secret, "
          "downwardAPI, projected, persistentVolumeClaim, image, nfs)",
      ENOTSUP);
}

Result<PodVolumes> VolumeManager::setup(const api::Pod& pod) {
  if (!safe_component(pod.metadata.uid)) {
    return Status::Error("pod " + pod_ref(pod) + ": metadata.uid: \"" + pod.metadata.uid +
                             "\" cannot name the pod's directory",
                         EINVAL);
  }
  PodVolumes out;
  out.pod_uid = pod.metadata.uid;
  for (size_t i = 0; i < pod.spec.volumes.size(); ++i) {
    const auto& v = pod.spec.volumes[i];
    std::string field = "spec.volumes[" + std::to_string(i) + "]";
    if (!safe_component(v.name)) {
      return Status::Error("pod " + pod_ref(pod) + ": " + field + ".name: \"" + v.name +
                               "\" is not a valid volume name",
                           EINVAL);
    }
    auto pv = setup_volume(pod, v, field);
    if (!pv.ok()) return pv.status().Wrap(volume_ref(pod, v.name));
    out.by_name[v.name] = std::move(*pv);
  }
  return out;
}

Status VolumeManager::refresh(const api::Pod& pod) {
  if (!safe_component(pod.metadata.uid)) {
    return Status::Error("pod " + pod_ref(pod) + ": metadata.uid: \"" + pod.metadata.uid +
                             "\" cannot name the pod's directory",
                         EINVAL);
  }
  std::vector<std::string> errors;
  int err = 0;
  for (size_t i = 0; i < pod.spec.volumes.size(); ++i) {
    const auto& v = pod.spec.volumes[i];
    if (!is_atomic_writer(v) || !safe_component(v.name)) continue;
    auto pv = setup_volume(pod, v, "spec.volumes[" + std::to_string(i) + "]");
    if (!pv.ok()) {
      errors.push_back(pv.status().Wrap(volume_ref(pod, v.name)).message());
      err = pv.status().error_number();
    }
  }
  if (errors.empty()) return Status::Ok();
  return Status::Error(join(errors, "; "), err);
}

Result<std::string> VolumeManager::prepare_subpath(const api::Pod& pod, const api::Container& c,
                                                   size_t index, const api::VolumeMount& m,
                                                   const PodVolume& pv, const std::string& sub) {
  const std::string what = "failed to prepare subPath for volumeMount \"" + m.name +
                           "\" of container \"" + c.name + "\"";
  UniqueFd base(::open(pv.host_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!base.valid()) return Status::FromErrno(what + ": open volume " + pv.host_path, errno);
  struct stat base_st {};
  if (::fstat(base.get(), &base_st) != 0)
    return Status::FromErrno(what + ": stat " + pv.host_path, errno);

  auto fd = volume::open_beneath(base.get(), sub, O_PATH);
  if (!fd.ok() && fd.status().error_number() == ENOENT) {
    // Created now, with the volume's mode, so that the group an fsGroup gives can write.
    if (Status s = volume::make_dirs_beneath(base.get(), sub, base_st.st_mode & 07777); !s.ok()) {
      return Status::Error("failed to create subPath directory for volumeMount \"" + m.name +
                               "\" of container \"" + c.name + "\": " + s.message(),
                           s.error_number());
    }
    fd = volume::open_beneath(base.get(), sub, O_PATH);
  }
  if (!fd.ok()) {
    if (fd.status().error_number() == EXDEV) {
      return Status::Error(
          what + ": subPath `" + sub + "` resolves outside of volume \"" + m.name + "\"", EXDEV);
    }
    return fd.status().Wrap(what);
  }
  struct stat src {};
  if (::fstat(fd->get(), &src) != 0) return Status::FromErrno(what + ": stat", errno);

  // The pod's directory may not exist yet: a pod with only hostPath volumes has none.
  std::string dir = pod_dir(pod.metadata.uid) + "/" + kSubpathsDir + "/" + m.name + "/" + c.name;
  for (const std::string& d :
       {pods_dir_, pod_dir(pod.metadata.uid), pod_dir(pod.metadata.uid) + "/" + kSubpathsDir,
        pod_dir(pod.metadata.uid) + "/" + kSubpathsDir + "/" + m.name, dir}) {
    if (Status s = make_dir(d, kPodDirMode); !s.ok()) return s.Wrap(what);
  }
  std::string target = dir + "/" + std::to_string(index);
  auto mounted = mounter_.is_mountpoint(target);
  if (!mounted.ok() && mounted.status().error_number() != ENOENT)
    return mounted.status().Wrap(what);
  if (mounted.ok() && *mounted) {
    struct stat cur {};
    if (::stat(target.c_str(), &cur) == 0 && cur.st_dev == src.st_dev && cur.st_ino == src.st_ino)
      return target;
    if (Status s = mounter_.unmount(target); !s.ok()) return s.Wrap(what);
  }
  // The mount point must be of the source's kind: a directory for a directory, an empty
  // file for anything else.
  bool want_dir = S_ISDIR(src.st_mode);
  struct stat cur {};
  if (::lstat(target.c_str(), &cur) == 0 && S_ISDIR(cur.st_mode) != want_dir) {
    if (Status s = volume::remove_beneath(dir, std::to_string(index)); !s.ok()) return s.Wrap(what);
  }
  if (want_dir) {
    if (Status s = make_dir(target, kPodDirMode); !s.ok()) return s.Wrap(what);
  } else {
    int tfd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (tfd < 0) return Status::FromErrno(what + ": create " + target, errno);
    ::close(tfd);
  }
  // What gets mounted is the file the descriptor holds, which the kernel resolved beneath
  // the volume: swapping a path element for a symlink now changes nothing.
  std::string source = "/proc/self/fd/" + std::to_string(fd->get());
  if (Status s = mounter_.bind_mount(source, target); !s.ok()) return s.Wrap(what);
  return target;
}

Result<std::vector<runtime::Mount>> VolumeManager::mounts_for(const api::Pod& pod,
                                                              const api::Container& c,
                                                              const PodVolumes& volumes,
                                                              const EnvMap& container_env) {
  std::vector<runtime::Mount> out;
  for (size_t i = 0; i < c.volume_mounts.size(); ++i) {
    const auto& m = c.volume_mounts[i];
    std::string where = "pod " + pod_ref(pod) + " container \"" + c.name + "\" volumeMounts[" +
                        std::to_string(i) + "]";
    auto it = volumes.by_name.find(m.name);
    if (it == volumes.by_name.end()) {
      return Status::Error(where + ": cannot find volume \"" + m.name +
                               "\" to mount into container \"" + c.name + "\"",
                           ENOENT);
    }
    const PodVolume& pv = it->second;
    if (m.mount_path.empty()) return Status::Error(where + ".mountPath: required", EINVAL);
    auto propagation = propagation_of(c, m);
    if (!propagation.ok()) return propagation.status().Wrap(where + ".mountPropagation");

    std::string host_path = pv.host_path;
    std::string sub = m.sub_path;
    if (!m.sub_path_expr.empty()) {
      if (!m.sub_path.empty()) {
        return Status::Error(where + ".subPathExpr: subPath and subPathExpr are mutually exclusive",
                             EINVAL);
      }
      auto expanded = expand_subpath_expr(m.sub_path_expr, container_env);
      if (!expanded.ok()) return expanded.status().Wrap(where + ".subPathExpr");
      sub = *expanded;
    }
    if (!sub.empty()) {
      std::string f = where + (m.sub_path_expr.empty() ? ".subPath" : ".subPathExpr");
      if (sub.front() == '/')
        return Status::Error(f + ": error SubPath `" + sub + "` must not be an absolute path",
                             EINVAL);
      if (volume::has_backsteps(sub)) {
        return Status::Error(
            f + ": unable to provision SubPath `" + sub + "`: must not contain '..'", EINVAL);
      }
      if (!pv.image.empty()) {
        // Inside the image: the runtime resolves it, and fails when it is missing.
        out.push_back(runtime::Mount{.container_path = m.mount_path, .readonly = true,
                                     .image = {pv.image, {}}, .image_sub_path = sub});
        continue;
      }
      auto prepared = prepare_subpath(pod, c, i, m, pv, sub);
      if (!prepared.ok()) return prepared.status().Wrap(f);
      host_path = *prepared;
    }
    if (!pv.image.empty()) {
      out.push_back(runtime::Mount{.container_path = m.mount_path, .readonly = true, .image = {pv.image, {}}});
      continue;
    }
    runtime::Mount mount;
    mount.container_path = m.mount_path;
    mount.host_path = host_path;
    mount.readonly = m.read_only || pv.read_only;
    mount.propagation = *propagation;
    out.push_back(std::move(mount));
  }
  return out;
}

Status VolumeManager::teardown(const std::string& pod_uid) {
  if (!safe_component(pod_uid)) {
    return Status::Error(
        "tear down volumes: pod UID \"" + pod_uid + "\" cannot name a pod directory", EINVAL);
  }
  const std::string dir = pod_dir(pod_uid);
  if (!is_real_dir(dir)) return Status::Ok();
  std::vector<std::string> errors;
  int err = 0;
  auto note = [&](const Status& s) {
    if (s.ok()) return;
    errors.push_back(s.message());
    err = s.error_number();
  };
  // Unmounts everything stacked on `path`; a mount point that will not go stays an error.
  auto unmount_all = [&](const std::string& path) -> Status {
    for (int i = 0; i < 16; ++i) {
      auto mounted = mounter_.is_mountpoint(path);
      if (!mounted.ok()) {
        const int e = mounted.status().error_number();
        if (e == ENOENT) return Status::Ok();
        // A mount whose filesystem went away (an NFS server gone, a stale handle) is still
        // a mount: unmounted, not left behind.
        if (e != ESTALE && e != EIO && e != ENOTCONN) return mounted.status();
        if (Status s = mounter_.unmount(path); !s.ok()) return s;
        continue;
      }
      if (!*mounted) return Status::Ok();
      if (Status s = mounter_.unmount(path); !s.ok()) return s;
    }
    return Status::Error(path + " is still a mount point after 16 unmounts", EBUSY);
  };

  // subPath binds first: they may pin a volume's tmpfs.
  const std::string subpaths = dir + "/" + kSubpathsDir;
  bool subpaths_clean = true;
  if (is_real_dir(subpaths)) {
    for (const auto& vol : list_dir(subpaths)) {
      std::string vdir = subpaths + "/" + vol;
      if (!is_real_dir(vdir)) continue;
      for (const auto& ctr : list_dir(vdir)) {
        std::string cdir = vdir + "/" + ctr;
        if (!is_real_dir(cdir)) continue;
        for (const auto& index : list_dir(cdir)) {
          Status s = unmount_all(cdir + "/" + index);
          subpaths_clean = subpaths_clean && s.ok();
          note(s);
        }
      }
    }
    if (subpaths_clean) note(volume::remove_beneath(dir, kSubpathsDir));
  }

  const std::string volumes = dir + "/" + kVolumesDir;
  if (is_real_dir(volumes)) {
    for (const auto& plugin : list_dir(volumes)) {
      std::string pdir = volumes + "/" + plugin;
      if (!is_real_dir(pdir)) {
        // A file or symlink where a plugin folder belongs is removed, not followed.
        note(volume::remove_beneath(dir, std::string(kVolumesDir) + "/" + plugin));
        continue;
      }
      for (const auto& name : list_dir(pdir)) {
        Status s = unmount_all(pdir + "/" + name);
        note(s);
        if (s.ok())
          note(volume::remove_beneath(dir, std::string(kVolumesDir) + "/" + plugin + "/" + name));
      }
      if (::rmdir(pdir.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY) {
        note(Status::FromErrno("remove " + pdir, errno));
      }
    }
    if (::rmdir(volumes.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY) {
      note(Status::FromErrno("remove " + volumes, errno));
    }
  }
  // The pod's directory goes when it is empty; what others keep there (the runtime's
  // files) is theirs to remove.
  if (errors.empty() && ::rmdir(dir.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY &&
      errno != EEXIST) {
    note(Status::FromErrno("remove " + dir, errno));
  }
  if (errors.empty()) return Status::Ok();
  return Status::Error("tear down volumes of pod " + pod_uid + ": " + join(errors, "; "), err);
}

}  // namespace knode::kubelet
