// clusterTrustBundle projections (certificates.k8s.io/v1 ClusterTrustBundles, GA in 1.37):
// the trust anchors of one bundle by name, or of every bundle of a signer that a label
// selector picks, read from the API server (the Node authorizer lets a node get and list
// them) and written as one PEM file, as upstream's kubelet does: every certificate once,
// re-encoded as CERTIFICATE blocks. Upstream shuffles their order once per kubelet start;
// knode sorts them by their DER bytes (stable across restarts; no reader may rely on an
// order). A bundle that does not exist, or a selector that picks none (a null selector
// picks none; an empty one picks all the signer's), is an empty file when the projection
// is optional and an error (the pod does not start) otherwise.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "knode/api/pod.h"
#include "knode/kube/client.h"

namespace knode::kubelet {

// Every PEM block of `bundles`, each certificate once, sorted, as CERTIFICATE blocks of 64
// column base64. A block that is not valid base64 is an error naming the bundle.
Result<std::string> normalize_trust_anchors(const std::vector<std::pair<std::string, std::string>>& named_bundles);

// The projection's file from a ClusterTrustBundleList (JSON), for a signerName projection.
Result<std::string> trust_anchors_of_signer(const nlohmann::json& list, const api::ClusterTrustBundleProjection& p);

// The projection's file, read from the API server.
Result<std::string> trust_anchors(kube::RestClient& client, const api::ClusterTrustBundleProjection& p);

}  // namespace knode::kubelet
