// Static pods: a manifest file read by the kubelet becomes a pod of this node, named and
// identified as the upstream kubelet's file source does (pkg/kubelet/config), and is
// shown to the API server through a mirror pod.
#pragma once

#include <string>
#include <string_view>

#include "knode/api/pod.h"
#include "knode/api/values.h"

namespace knode::kubelet {

inline constexpr char kConfigHashAnnotation[] = "kubernetes.io/config.hash";
inline constexpr char kConfigSourceAnnotation[] = "kubernetes.io/config.source";
inline constexpr char kConfigMirrorAnnotation[] = "kubernetes.io/config.mirror";
inline constexpr char kConfigSeenAnnotation[] = "kubernetes.io/config.seen";
inline constexpr char kFileSource[] = "file";
inline constexpr char kApiserverSource[] = "api";

// A pod the kubelet read from a local source (config.source is set and is not "api").
bool is_static_pod(const api::Pod& pod);
// The API server's copy of a static pod.
bool is_mirror_pod(const api::Pod& pod);

// 32 hex digits: FNV-128a of the decoded pod, then "host:<node>" and "file:<path>", the
// order upstream hashes them in. The same content on the same node and path gives the
// same UID; any change of the pod gives a new one.
std::string static_pod_uid(const api::Pod& decoded, const std::string& node_name,
                           const std::string& manifest_path);

// FNV-1a over 128 bits, as 32 hex digits (Go's hash/fnv New128a).
std::string fnv128a_hex(std::string_view bytes);

// The pod the kubelet runs for a decoded manifest: name "<name>-<node>", namespace
// "default" when empty, the UID above (unless the manifest sets one), config.hash,
// config.source=file and config.seen, spec.nodeName, the NoExecute toleration every
// static pod gets, and phase Pending.
api::Pod make_static_pod(api::Pod decoded, const std::string& node_name,
                         const std::string& manifest_path, const api::Time& first_seen);

// The mirror pod created for a static pod: its copy with config.mirror set to the hash
// and the node as controlling owner.
api::Pod make_mirror_pod(const api::Pod& static_pod, const std::string& node_name,
                         const std::string& node_uid);

}  // namespace knode::kubelet
