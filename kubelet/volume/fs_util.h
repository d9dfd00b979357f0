// Filesystem operations on directories a pod's containers can write to, done so that a
// symlink a container planted never leads the kubelet out of the tree it works in: paths
// are walked with openat(O_NOFOLLOW) or resolved by the kernel with openat2(RESOLVE_BENEATH),
// and deletion never follows a symlink nor descends into a mount point.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>

#include "knode/status.h"

namespace knode::kubelet::volume {

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Opens `rel` (relative, no "..") below the directory `base`, the kernel refusing any
// resolution, through symlinks or otherwise, that leaves `base` (openat2 RESOLVE_BENEATH,
// Linux 5.6). `flags` as for open(2); O_CLOEXEC is added. An error names the path; EXDEV
// means the path leads outside.
Result<UniqueFd> open_beneath(int base_fd, const std::string& rel, int flags);

// Creates the missing directories of `rel` below `base_fd` with mode `perm` (chmod'ed, not
// masked by the umask), each new one entered with O_NOFOLLOW so a symlink swapped in
// meanwhile is refused. Existing components resolve as open_beneath does.
Status make_dirs_beneath(int base_fd, const std::string& rel, mode_t perm);

// Removes `rel` below the directory `base` with everything under it. Symlinks are removed,
// never followed, also on the way to `rel`; a directory that is a mount point is not entered
// (EBUSY, naming it). A missing `rel` is success.
Status remove_beneath(const std::string& base, const std::string& rel);

// The upstream kubelet's SetVolumeOwnership for an fsGroup: everything below `dir` gets
// group `gid`, files gain g+r (g+rw unless `read_only`), directories also g+x and setgid.
// Symlinks are re-owned but never followed; mount points below `dir` are not entered.
Status set_volume_ownership(const std::string& dir, gid_t gid, bool read_only);

// Whether a regular file, directory, socket, character or block device is at `path`
// (following symlinks): "File", "Directory", "Socket", "CharDevice", "BlockDevice" as
// hostPath types name them; ENOENT when nothing is there.
Result<std::string> file_type(const std::string& path);

// Lexical checks shared by subPath and volume item paths.
bool has_backsteps(const std::string& path);      // a ".." element
std::string clean_path(const std::string& path);  // Go's path.Clean

}  // namespace knode::kubelet::volume
