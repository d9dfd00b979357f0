// A pod's volumes on the host, as the upstream kubelet lays them out and fills them:
//
//   <pods dir>/<pod uid>/volumes/kubernetes.io~empty-dir/<volume>   emptyDir (tmpfs for Memory)
//                                kubernetes.io~configmap/<volume>   configMap (on disk)
//                                kubernetes.io~secret/<volume>      secret (tmpfs)
//                                kubernetes.io~downward-api/<volume> downwardAPI (tmpfs)
//                                kubernetes.io~projected/<volume>   projected (tmpfs)
//                                kubernetes.io~nfs/<volume>         nfs (inline, or a claim's NFS PV)
//   <pods dir>/<pod uid>/volume-subpaths/<volume>/<container>/<mount index>   subPath binds
//
// Image volumes have no directory here: the runtime mounts the image itself (CRI's
// Mount.image), after the pod worker has pulled it and put the pulled reference in the
// mount that mounts_for() returns with the volume's reference.
//
// hostPath volumes stay where they are (their type checked). configMap, secret, downwardAPI
// and projected contents are written by the AtomicWriter (volume/atomic_writer.h). The pod
// worker calls setup() before it creates the pod's containers, mounts_for() for each
// container, refresh() when the objects they read change, and teardown() once the pod's
// containers are gone. Everything is idempotent, also across a restart of knode: state
// lives on disk and in the mount table only.
//
// Calls for different pods may run concurrently; calls for one pod must not overlap (its
// worker serializes them).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "knode/api/pod.h"
#include "knode/runtime.h"
#include "knode/status.h"
#include "pod/env.h"
#include "volume/mounter.h"

namespace knode::kubelet {

// One volume of a pod, ready on the host.
struct PodVolume {
  std::string name;
  std::string plugin;     // upstream's plugin name: "kubernetes.io/empty-dir", ...
  std::string host_path;  // what a container's volumeMount binds
  // The plugin's own attribute: configMap, secret, downwardAPI and projected volumes are
  // always mounted read-only, whatever the volumeMount says.
  bool read_only = false;
  bool memory_backed = false;  // a tmpfs of its own
  // An image volume: the image reference and pull policy from its spec (host_path empty).
  std::string image, image_pull_policy;
  bool operator==(const PodVolume&) const = default;
};

struct PodVolumes {
  std::string pod_uid;
  std::map<std::string, PodVolume> by_name;
  bool operator==(const PodVolumes&) const = default;
};

// A container's final environment, as make_environment() returns it (Environment::vars);
// subPathExpr expands against it.
using EnvMap = std::vector<runtime::KeyValue>;

class VolumeManager {
 public:
  static constexpr const char* kDefaultPodsDir = "/var/lib/kubelet/pods";

  // `lookup` (ConfigMaps, Secrets, the node's allocatable) and `mounter` are borrowed and
  // must outlive the manager.
  VolumeManager(std::string pods_dir, const EnvLookup& lookup, volume::Mounter& mounter);

  // Makes every volume of `pod` ready, in spec order, and says where each is. The first
  // volume that cannot be set up stops it with an error naming the pod, the volume and the
  // field: `pod default/web volume "config": spec.volumes[1].configMap.name: configmap
  // "app" not found`. Volumes already in place (an earlier call, a previous knode) are
  // checked and kept: a tmpfs is not mounted twice, unchanged contents are not rewritten.
  Result<PodVolumes> setup(const api::Pod& pod);

  // Brings configMap, secret, downwardAPI and projected volumes up to date with the objects
  // they read and with the pod's metadata; volumes whose files are unchanged are not
  // touched. Every such volume is tried (one not set up yet is set up); the error names
  // each that failed, which keep their previous contents.
  Status refresh(const api::Pod& pod);

  // The container's volumeMounts as runtime mounts, in order: readOnly, mountPropagation
  // (Bidirectional only for privileged containers), and subPath / subPathExpr (expanded
  // against `container_env`; absolute paths and ".." refused; a missing directory created
  // with the volume's mode; symlinks resolved by the kernel without leaving the volume; the
  // result bind-mounted under volume-subpaths/ so the runtime mounts exactly what was
  // checked). An image volume's mount has `image` (the volume's reference, to be replaced
  // by what the pull returns) and image_sub_path instead of a host path, and is read-only.
  Result<std::vector<runtime::Mount>> mounts_for(const api::Pod& pod,
                                                 const api::Container& container,
                                                 const PodVolumes& volumes,
                                                 const EnvMap& container_env);

  // Unmounts the pod's subPath binds and tmpfs volumes and removes its volumes/ and
  // volume-subpaths/ directories, then the pod's directory when nothing else is left in it.
  // Symlinks are never followed and mount points found below a volume are not entered (an
  // error names them). Success when nothing is there.
  Status teardown(const std::string& pod_uid);

  std::string pod_dir(const std::string& pod_uid) const { return pods_dir_ + "/" + pod_uid; }

 private:
  Result<PodVolume> setup_volume(const api::Pod& pod, const api::Volume& v,
                                 const std::string& field);
  Status write_contents(const api::Pod& pod, const api::Volume& v, const std::string& field,
                        const PodVolume& pv);
  Result<PodVolume> setup_nfs(const api::Pod& pod, const std::string& name, const std::string& field,
                              const std::string& server, const std::string& path, bool read_only,
                              std::vector<std::string> options);
  Status ensure_dir(const api::Pod& pod, const PodVolume& pv, int64_t tmpfs_size, bool* created);
  Result<std::string> prepare_subpath(const api::Pod& pod, const api::Container& c, size_t index,
                                      const api::VolumeMount& m, const PodVolume& pv,
                                      const std::string& sub);

  std::string pods_dir_;
  const EnvLookup& lookup_;
  volume::Mounter& mounter_;
};

}  // namespace knode::kubelet
