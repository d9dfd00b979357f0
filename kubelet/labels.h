// The labels and annotations the kubelet puts on the sandboxes and containers it creates,
// with upstream's keys (pkg/kubelet/types, kuberuntime/labels.go), so that crictl, log
// collectors and an operator's habits read them as on any node, and a restarted knode
// finds its pods by them. They are also how knode tells its own objects apart: the relist,
// garbage collection and log rotation touch only sandboxes and containers that carry
// kPodUidLabel, never what another client of the same runtime (crictl) created.
//
//   sandbox:   kPodNameLabel, kPodNamespaceLabel, kPodUidLabel (plus the pod's own labels)
//   container: the three above and kContainerNameLabel
#pragma once

#include <string>

#include "knode/runtime.h"

namespace knode::kubelet {

inline constexpr char kPodNameLabel[] = "io.kubernetes.pod.name";
inline constexpr char kPodNamespaceLabel[] = "io.kubernetes.pod.namespace";
inline constexpr char kPodUidLabel[] = "io.kubernetes.pod.uid";
inline constexpr char kContainerNameLabel[] = "io.kubernetes.container.name";

// Annotations of a container: what it was created from.
inline constexpr char kContainerHashAnnotation[] = "io.kubernetes.container.hash";
inline constexpr char kRestartCountAnnotation[] = "io.kubernetes.container.restartCount";
// The hash of the spec without its resources (which an in-place resize changes without a
// restart), and the resources the container was created with (JSON).
inline constexpr char kContainerHashWithoutResourcesAnnotation[] = "knode.io/container-hash-without-resources";
inline constexpr char kContainerResourcesAnnotation[] = "knode.io/container-resources";
// The pod's grace period in seconds, which garbage collection uses to stop a container
// found in an unknown state before removing it.
inline constexpr char kPodTerminationGracePeriodAnnotation[] = "io.kubernetes.pod.terminationGracePeriod";

// Whether the kubelet created the sandbox or container carrying `labels`.
inline bool created_by_kubelet(const runtime::Labels& labels) {
  auto it = labels.find(kPodUidLabel);
  return it != labels.end() && !it->second.empty();
}

inline std::string label_or_empty(const runtime::Labels& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? std::string() : it->second;
}

}  // namespace knode::kubelet
