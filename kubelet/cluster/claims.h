// PersistentVolumeClaims of a cluster's pods: the claim (its spec.volumeName once bound)
// and the PersistentVolume it names, read from the API server as the Node authorizer
// allows a node for its pods' claims. Directories of this node (hostPath, local) are
// what knode mounts; other volume sources are refused with their name.
#pragma once

#include <string>

#include "knode/kube/client.h"
#include "pod/env.h"

namespace knode::kubelet {

Result<ClaimedVolume> resolve_claim(kube::RestClient& client, const std::string& ns, const std::string& claim);

}  // namespace knode::kubelet
