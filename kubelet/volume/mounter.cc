#include "volume/mounter.h"

#include <fcntl.h>
#include <linux/stat.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "knode/process.h"

namespace knode::kubelet::volume {

Status LinuxMounter::mount_tmpfs(const std::string& target, int64_t size_bytes) {
  std::string options = size_bytes > 0 ? "size=" + std::to_string(size_bytes) : "";
  std::string with_noswap = options.empty() ? "noswap" : options + ",noswap";
  if (::mount("tmpfs", target.c_str(), "tmpfs", 0, with_noswap.c_str()) == 0) return Status::Ok();
  // Kernels before 6.4 refuse the unknown option with EINVAL; anything else fails again below.
  if (errno != EINVAL)
    return Status::FromErrno("mount tmpfs on " + target + " (" + with_noswap + ")", errno);
  if (::mount("tmpfs", target.c_str(), "tmpfs", 0, options.c_str()) == 0) return Status::Ok();
  return Status::FromErrno("mount tmpfs on " + target + " (" + options + ")", errno);
}

Status LinuxMounter::mount_nfs(const std::string& source, const std::string& target,
                               const std::vector<std::string>& options) {
  std::string mount;
  for (const char* p : {"/usr/bin/mount", "/bin/mount", "/usr/sbin/mount", "/sbin/mount"}) {
    if (::access(p, X_OK) == 0) {
      mount = p;
      break;
    }
  }
  if (mount.empty()) return Status::Error("mount " + source + " on " + target + ": no mount(8) on this node", ENOENT);
  std::vector<std::string> argv = {mount, "-t", "nfs"};
  if (!options.empty()) {
    std::string joined;
    for (const auto& o : options) joined += (joined.empty() ? "" : ",") + o;
    argv.insert(argv.end(), {"-o", joined});
  }
  argv.insert(argv.end(), {source, target});
  auto r = run_process(argv, {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, "", std::chrono::seconds(150));
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  if (!r.ok()) {
    if (r.status().error_number() == ETIMEDOUT) {
      return Status::Error(cmd + ": no answer in 150 s (is the server reachable?)", ETIMEDOUT);
    }
    return r.status().Wrap(cmd);
  }
  if (r->exit_code != 0) {
    std::string out = r->err.empty() ? r->out : r->err;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    for (auto& c : out) {
      if (c == '\n') c = ' ';  // one line in the pod's status
    }
    return Status::Error(cmd + ": exit status " + std::to_string(r->exit_code) + (out.empty() ? "" : ": " + out), EIO);
  }
  return Status::Ok();
}

Status LinuxMounter::bind_mount(const std::string& source, const std::string& target) {
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) == 0) return Status::Ok();
  return Status::FromErrno("bind mount " + source + " on " + target, errno);
}

Status LinuxMounter::unmount(const std::string& target) {
  if (::umount2(target.c_str(), UMOUNT_NOFOLLOW) == 0) return Status::Ok();
  return Status::FromErrno("unmount " + target, errno);
}

Result<bool> LinuxMounter::is_mountpoint(const std::string& path) {
  struct statx stx {};
  // Nothing asked of the filesystem (mask 0, AT_STATX_DONT_SYNC): the mount-root flag comes
  // from the mount table, so an NFS mount whose server is gone answers without a GETATTR
  // that would hang on a hard mount.
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC, 0, &stx) != 0) {
    return Status::FromErrno("statx " + path, errno);
  }
  // Bind mounts from the same filesystem keep st_dev, so comparing devices with the parent
  // would miss them; the kernel's own flag (Linux 5.8) does not.
  if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) == 0) {
    return Status::Error(
        "statx " + path + ": the kernel does not report mount roots (needs Linux 5.8)", ENOTSUP);
  }
  return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

}  // namespace knode::kubelet::volume
