#include "volume/host_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "volume/fs_util.h"

namespace knode::kubelet::volume {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool is_type(const std::string& path, const char* type) {
  auto t = file_type(path);
  return t.ok() && *t == type;
}

Status make_dir(const std::string& path) {
  std::string prefix;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    prefix = path.substr(0, pos);
    if (prefix.empty() || prefix == "/") continue;
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
      return Status::FromErrno("mkdir " + prefix, errno);
  }
  return Status::Ok();
}

Status make_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_CREAT | O_RDONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return Status::Ok();
    return Status::FromErrno("open " + path, errno);
  }
  ::close(fd);
  return Status::Ok();
}

Status failed(const std::string& path, const char* what) {
  return Status::Error("hostPath type check failed: " + path + " is not " + what, EINVAL);
}

}  // namespace

Status check_host_path(const api::HostPathVolumeSource& source) {
  const std::string& path = source.path;
  if (has_backsteps(path))
    return Status::Error("invalid HostPath `" + path + "`: must not contain '..'", EINVAL);
  if (path.empty() || path.front() != '/') {
    return Status::Error("invalid HostPath `" + path + "`: must be an absolute path", EINVAL);
  }
  const std::string& type = source.type;
  if (type.empty()) return Status::Ok();
  if (type == "DirectoryOrCreate" || type == "Directory") {
    if (type == "DirectoryOrCreate" && !exists(path)) return make_dir(path);
    return is_type(path, "Directory") ? Status::Ok() : failed(path, "a directory");
  }
  if (type == "FileOrCreate" || type == "File") {
    if (type == "FileOrCreate" && !exists(path)) return make_file(path);
    return is_type(path, "File") ? Status::Ok() : failed(path, "a file");
  }
  if (type == "Socket")
    return is_type(path, "Socket") ? Status::Ok() : failed(path, "a socket file");
  if (type == "CharDevice")
    return is_type(path, "CharDevice") ? Status::Ok() : failed(path, "a character device");
  if (type == "BlockDevice")
    return is_type(path, "BlockDevice") ? Status::Ok() : failed(path, "a block device");
  return Status::Error(type + " is an invalid volume type", EINVAL);
}

}  // namespace knode::kubelet::volume
