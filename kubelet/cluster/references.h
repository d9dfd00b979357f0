// What a pod reads from the API besides itself: the ConfigMaps and Secrets its volumes,
// projected volumes, environment and image pull secrets name. In a cluster the kubelet
// watches exactly these, one object each, as the Node authorizer allows a node to.
#pragma once

#include <set>
#include <string>
#include <utility>

#include "knode/api/object.h"

namespace knode::kubelet {

using ObjectRef = std::pair<api::Kind, std::string>;  // kind, "namespace/name"
std::set<ObjectRef> referenced_objects(const api::Pod& pod);

}  // namespace knode::kubelet
