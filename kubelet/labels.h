// The labels and annotations the kubelet puts on the sandboxes and containers it creates,
// with upstream's keys (pkg/kubelet/types, kuberuntime/labels.go), so `crictl` and log
// collectors read them as on any node, and a restarted knode finds its pods by them.
// Sandboxes and containers without kOwnerLabel are someone else's: never touched.
#pragma once

namespace knode::kubelet {

inline constexpr char kPodUidLabel[] = "io.kubernetes.pod.uid";
inline constexpr char kPodNameLabel[] = "io.kubernetes.pod.name";
inline constexpr char kPodNamespaceLabel[] = "io.kubernetes.pod.namespace";
inline constexpr char kContainerNameLabel[] = "io.kubernetes.container.name";
// knode's own mark of ownership.
inline constexpr char kOwnerLabel[] = "knode.io/managed";
inline constexpr char kOwnerValue[] = "true";

// Annotations of a container: what it was created from.
inline constexpr char kContainerHashAnnotation[] = "io.kubernetes.container.hash";
inline constexpr char kRestartCountAnnotation[] = "io.kubernetes.container.restartCount";
inline constexpr char kTerminationGraceAnnotation[] = "io.kubernetes.pod.terminationGracePeriod";
inline constexpr char kTerminationMessagePathAnnotation[] = "io.kubernetes.container.terminationMessagePath";

}  // namespace knode::kubelet
