// What the volume tests share: a fake Mounter that records what it was asked, a fake
// lookup of ConfigMaps and Secrets, a temporary directory, and small file helpers.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kubelet/pod/decode.h"
#include "pod/env.h"
#include "volume/mounter.h"

namespace knode::kubelet::testing {

// Records mounts instead of making them. A tmpfs or bind "mounted" on a path makes that
// path a mount point until it is unmounted; binds remember the file their source named
// (the volume manager passes /proc/self/fd/<n>).
class FakeMounter : public volume::Mounter {
 public:
  std::map<std::string, int64_t> tmpfs;      // target -> size in bytes
  std::map<std::string, std::string> binds;  // target -> the path the source resolved to
  std::vector<std::string> calls;  // "tmpfs <target> <size>", "bind <target>", "unmount <target>"
  std::string fail_tmpfs;          // a message: mount_tmpfs fails with it
  std::map<std::string, std::string> nfs;  // target -> "source options"

  Status mount_tmpfs(const std::string& target, int64_t size_bytes) override {
    calls.push_back("tmpfs " + target + " " + std::to_string(size_bytes));
    if (!fail_tmpfs.empty()) return Status::Error(fail_tmpfs, EPERM);
    if (tmpfs.count(target) || binds.count(target))
      return Status::Error("already mounted: " + target, EBUSY);
    tmpfs[target] = size_bytes;
    return Status::Ok();
  }
  Status mount_nfs(const std::string& source, const std::string& target,
                   const std::vector<std::string>& options) override {
    std::string opts;
    for (const auto& o : options) opts += (opts.empty() ? "" : ",") + o;
    calls.push_back("nfs " + target + " " + source + " " + opts);
    if (tmpfs.count(target) || binds.count(target) || nfs.count(target))
      return Status::Error("already mounted: " + target, EBUSY);
    nfs[target] = source + " " + opts;
    return Status::Ok();
  }
  Status bind_mount(const std::string& source, const std::string& target) override {
    calls.push_back("bind " + target);
    char buf[PATH_MAX];
    ssize_t n = ::readlink(source.c_str(), buf, sizeof buf - 1);
    binds[target] = n < 0 ? source : std::string(buf, static_cast<size_t>(n));
    return Status::Ok();
  }
  Status unmount(const std::string& target) override {
    calls.push_back("unmount " + target);
    if (tmpfs.erase(target) + binds.erase(target) + nfs.erase(target) == 0)
      return Status::Error("not mounted: " + target, EINVAL);
    return Status::Ok();
  }
  Result<bool> is_mountpoint(const std::string& path) override {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return Status::FromErrno("stat " + path, errno);
    return tmpfs.count(path) > 0 || binds.count(path) > 0 || nfs.count(path) > 0;
  }

  size_t count(const std::string& prefix) const {
    size_t n = 0;
    for (const auto& c : calls) n += c.rfind(prefix, 0) == 0;
    return n;
  }
};

class FakeLookup : public EnvLookup {
 public:
  std::map<std::string, api::ConfigMap> config_maps;  // "ns/name"
  std::map<std::string, api::Secret> secrets;
  std::map<std::string, ClaimedVolume> claims;  // "ns/claim"; absent: the standalone answer
  // By the projection's name or signerName; absent: the standalone answer.
  std::map<std::string, Result<std::string>> trust_bundles;
  api::ResourceList allocatable;

  // By signerName; absent: the standalone answer. Each call is noted "volume/index".
  std::map<std::string, Result<PodCredential>> pod_credentials;
  mutable std::vector<std::string> credential_calls;
  Result<PodCredential> pod_certificate(const api::Pod& pod, const std::string& volume, size_t index,
                                        const api::PodCertificateProjection& p) const override {
    credential_calls.push_back(volume + "/" + std::to_string(index));
    auto it = pod_credentials.find(p.signer_name);
    return it == pod_credentials.end() ? EnvLookup::pod_certificate(pod, volume, index, p) : it->second;
  }

  Result<std::string> cluster_trust_bundle(const api::ClusterTrustBundleProjection& p) const override {
    auto it = trust_bundles.find(p.name.value_or(p.signer_name.value_or("")));
    return it == trust_bundles.end() ? EnvLookup::cluster_trust_bundle(p) : it->second;
  }

  Result<ClaimedVolume> claimed_volume(const std::string& ns, const std::string& claim) const override {
    auto it = claims.find(ns + "/" + claim);
    return it == claims.end() ? EnvLookup::claimed_volume(ns, claim) : Result<ClaimedVolume>(it->second);
  }

  const api::ConfigMap* config_map(const std::string& ns, const std::string& name) const override {
    auto it = config_maps.find(ns + "/" + name);
    return it == config_maps.end() ? nullptr : &it->second;
  }
  const api::Secret* secret(const std::string& ns, const std::string& name) const override {
    auto it = secrets.find(ns + "/" + name);
    return it == secrets.end() ? nullptr : &it->second;
  }
  std::vector<const api::Service*> services(const std::string&) const override { return {}; }
  api::ResourceList node_allocatable() const override { return allocatable; }
  std::vector<std::string> host_ips() const override { return {"192.168.1.10"}; }

  void add_config_map(const std::string& yaml) {
    // "---" first: a flow mapping would otherwise be read as JSON.
    auto cm = decode<api::ConfigMap>("---\n" + yaml);
    config_maps[cm.metadata.namespace_ + "/" + cm.metadata.name] = cm;
  }
  void add_secret(const std::string& yaml) {
    auto s = decode<api::Secret>("---\n" + yaml);
    secrets[s.metadata.namespace_ + "/" + s.metadata.name] = s;
  }
};

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "knode-volume-XXXXXX").string();
    path_ = ::mkdtemp(templ.data()) ? templ : "";
    EXPECT_FALSE(path_.empty()) << "mkdtemp: " << std::strerror(errno);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

inline std::string link_target(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

// The permission bits of what `path` names (symlinks followed); -1 when missing.
inline int mode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

inline bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

inline bool is_symlink(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// Names in a directory, "." and ".." left out.
inline std::set<std::string> entries(const std::string& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    out.insert(e.path().filename().string());
  return out;
}

}  // namespace knode::kubelet::testing
