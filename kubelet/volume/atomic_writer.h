// The upstream kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go): the files of a
// configMap, secret, downwardAPI or projected volume, written so that a container sees all
// of an update or none of it.
//
//   <dir>/..2026_01_31_12_00_00.a1B2c3/   the files, with their modes (0755 directory)
//   <dir>/..data -> ..2026_01_31_12_00_00.a1B2c3
//   <dir>/<top-level entry> -> ..data/<top-level entry>   (for each path's first element)
//
// An update writes a new timestamped directory, points a fresh `..data_tmp` symlink at it
// and rename(2)s that over `..data` (atomic), then drops visible entries no longer in the
// payload and the previous directory. A process that opened a file before keeps reading the
// old content; one that opens afterwards gets the new. Names starting with ".." are the
// writer's. Calls for one directory must not overlap.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "knode/status.h"

namespace knode::kubelet::volume {

struct FileProjection {
  std::string data;
  int32_t mode = 0644;
  bool operator==(const FileProjection&) const = default;
};
// By path relative to the volume ("key", "dir/key").
using Payload = std::map<std::string, FileProjection>;

class AtomicWriter {
 public:
  // Called with the new timestamped directory after its files are written and before it
  // is published (the volume's fsGroup ownership).
  using SetPermissions = std::function<Status(const std::string& ts_dir)>;

  // `target_dir` must exist. `context` ("pod default/web volume \"config\"") starts errors.
  AtomicWriter(std::string target_dir, std::string context);

  // Projects `payload` into the directory. Returns whether the data directory was replaced:
  // false when every file already has its content and nothing is to be removed (upstream
  // compares contents only, not modes).
  Result<bool> write(const Payload& payload, const SetPermissions& set_permissions = {});

  // Upstream's validatePath: relative, no ".." element, not starting with "..", names of at
  // most 255 and paths of at most 4096 characters. The error is upstream's text.
  static Status validate_path(const std::string& path);

  static constexpr const char* kDataDirName = "..data";
  static constexpr const char* kNewDataDirName = "..data_tmp";

 private:
  Status fail(const std::string& what, const Status& cause) const;

  std::string dir_;
  std::string context_;
};

}  // namespace knode::kubelet::volume
