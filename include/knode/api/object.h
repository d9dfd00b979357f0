// Any object a node deals with, as one value type, and its identity.
#pragma once

#include <memory>
#include <string>
#include <variant>

#include "knode/api/cluster.h"
#include "knode/api/pod.h"
#include "knode/api/service.h"

namespace knode::api {

using Object =
    std::variant<Pod, Service, EndpointSlice, Endpoints, Node, ConfigMap, Secret, Namespace>;
using ObjectPtr = std::shared_ptr<const Object>;

enum class Kind { kPod, kService, kEndpointSlice, kEndpoints, kNode, kConfigMap, kSecret, kNamespace };
constexpr int kKindCount = 8;

inline Kind kind_of(const Object& o) { return static_cast<Kind>(o.index()); }
const char* kind_name(Kind k);
const ObjectMeta& meta_of(const Object& o);
ObjectMeta& meta_of(Object& o);

// "default/kubia" for namespaced objects, "node-1" for cluster-scoped ones.
std::string namespaced_name(const ObjectMeta& m);

// Identity in a store: kind + namespace/name.
struct ObjectKey {
  Kind kind;
  std::string name;  // namespaced_name()
  auto operator<=>(const ObjectKey&) const = default;
  std::string str() const { return std::string(kind_name(kind)) + " " + name; }
};
ObjectKey key_of(const Object& o);

}  // namespace knode::api
