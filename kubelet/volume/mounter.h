// The kernel's mount table as the volume manager needs it: memory-backed volumes (tmpfs),
// subPath bind mounts, unmounting, and whether a path is a mount point. LinuxMounter speaks
// mount(2)/umount2(2)/statx(2); unit tests use a fake (tests/kubelet/volume/fake_mounter.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "knode/status.h"

namespace knode::kubelet::volume {

class Mounter {
 public:
  virtual ~Mounter() = default;
  // tmpfs on `target` (a directory), `size_bytes` big; 0 leaves the kernel's default (half
  // the node's memory).
  virtual Status mount_tmpfs(const std::string& target, int64_t size_bytes) = 0;
  // A bind mount of `source` on `target`. The volume manager passes /proc/self/fd/<n> of a
  // file it opened safely, so what is mounted is that file, whatever the path says by now.
  virtual Status bind_mount(const std::string& source, const std::string& target) = 0;
  virtual Status unmount(const std::string& target) = 0;
  // Whether `path` (not followed if a symlink) is the root of a mount. ENOENT when missing.
  virtual Result<bool> is_mountpoint(const std::string& path) = 0;
};

// The real one. mount_tmpfs adds `noswap` where the kernel has it (6.4 and later), as the
// upstream kubelet does, so memory-backed volumes (secrets) never reach swap.
class LinuxMounter final : public Mounter {
 public:
  Status mount_tmpfs(const std::string& target, int64_t size_bytes) override;
  Status bind_mount(const std::string& source, const std::string& target) override;
  Status unmount(const std::string& target) override;
  Result<bool> is_mountpoint(const std::string& path) override;
};

}  // namespace knode::kubelet::volume
