// hostPath volumes as the upstream kubelet sets them up (pkg/volume/hostpath): nothing is
// mounted by the kubelet, the path is checked against its `type`, and the *OrCreate types
// create what is missing.
#pragma once

#include "knode/api/pod.h"
#include "knode/status.h"

namespace knode::kubelet::volume {

// Upstream's checks and messages:
//   ""                 nothing checked
//   DirectoryOrCreate  a missing path becomes a directory (0755, parents too); else as Directory
//   Directory          "hostPath type check failed: <path> is not a directory"
//   FileOrCreate       a missing path becomes an empty file (0644; its parent must exist)
//   File               "... is not a file"
//   Socket             "... is not a socket file"
//   CharDevice         "... is not a character device"
//   BlockDevice        "... is not a block device"
//   anything else      "<type> is an invalid volume type"
// A path with a ".." element is "invalid HostPath `<path>`: must not contain '..'"; knode
// also requires it to be absolute. Symlinks are followed, as upstream's stat does.
Status check_host_path(const api::HostPathVolumeSource& source);

}  // namespace knode::kubelet::volume
