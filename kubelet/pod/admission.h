// The kubelet's own admission of a pod before it runs it (upstream's predicateAdmitHandler,
// the part of GeneralPredicates knode checks): a pod asking for a host port that an active
// pod on the node holds (same protocol and port; an unset or 0.0.0.0 host IP overlaps every
// address) is rejected, as the scheduler's NodePorts filter would have. A rejected pod
// never runs: its status is Failed with the reason and "Pod was rejected: <message>".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "knode/api/pod.h"

namespace knode::kubelet {

struct AdmitRejection {
  std::string reason, message;
};

// `active`: the pods the node runs (admitted, not finished).
std::optional<AdmitRejection> check_host_ports(const api::Pod& pod, const std::vector<const api::Pod*>& active);

}  // namespace knode::kubelet
