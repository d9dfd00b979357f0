// The kernel's mount table as the volume manager needs it: memory-backed volumes (tmpfs),
// subPath bind mounts, unmounting, and whether a path is a mount point. LinuxMounter speaks
// mount(2)/umount2(2)/statx(2); unit tests use a fake (tests/kubelet/volume/fake_mounter.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "knode/status.h"

namespace knode::kubelet::volume {

class Mounter {
 public:
  virtual ~Mounter() = default;
  // tmpfs on `target` (a directory), `size_bytes` big; 0 leaves the kernel's default (half
  // the node's memory).
  virtual Status mount_tmpfs(const std::string& target, int64_t size_bytes) = 0;
  // An NFS export ("server:/export") on `target`, with mount options ("ro", "vers=4.1",
  // a PersistentVolume's mountOptions).
  virtual Status mount_nfs(const std::string& source, const std::string& target,
                           const std::vector<std::string>& options) = 0;
  // A bind mount of `source` on `target`. The volume manager passes /proc/self/fd/<n> of a
  // file it opened safely, so what is mounted is that file, whatever the path says by now.
  virtual Status bind_mount(const std::string& source, const std::string& target) = 0;
  virtual Status unmount(const std::string& target) = 0;
  // Whether `path` (not followed if a symlink) is the root of a mount. ENOENT when missing.
  virtual Result<bool> is_mountpoint(const std::string& path) = 0;
};

// The real one. mount_tmpfs adds `noswap` where the kernel has it (6.4 and later), as the
// upstream kubelet does, so memory-backed volumes (secrets) never reach swap. mount_nfs
// runs `mount -t nfs [-o OPTIONS] SOURCE TARGET`, as the upstream kubelet does: the node
// needs the NFS client (nfs-common's mount.nfs, the kernel's nfs modules); it may take as
// long as mount.nfs retries (2 minutes by default) and is killed after 150 s.
class LinuxMounter final : public Mounter {
 public:
  Status mount_tmpfs(const std::string& target, int64_t size_bytes) override;
  Status mount_nfs(const std::string& source, const std::string& target,
                   const std::vector<std::string>& options) override;
  Status bind_mount(const std::string& source, const std::string& target) override;
  Status unmount(const std::string& target) override;
  Result<bool> is_mountpoint(const std::string& path) override;
};

}  // namespace knode::kubelet::volume
