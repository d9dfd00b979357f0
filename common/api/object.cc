#include "knode/api/object.h"

namespace knode::api {

const char* kind_name(Kind k) {
  static constexpr const char* kNames[kKindCount] = {
      "Pod", "Service", "EndpointSlice", "Endpoints", "Node", "ConfigMap", "Secret", "Namespace"};
  return kNames[static_cast<int>(k)];
}

const ObjectMeta& meta_of(const Object& o) {
  return api::visit([](const auto& x) -> const ObjectMeta& { return x.metadata; }, o);
}

ObjectMeta& meta_of(Object& o) {
  return api::visit([](auto& x) -> ObjectMeta& { return x.metadata; }, o);
}

std::string namespaced_name(const ObjectMeta& m) {
  if (m.namespace_.empty()) return m.name;
  return m.namespace_ + "/" + m.name;
}

ObjectKey key_of(const Object& o) { return ObjectKey{kind_of(o), namespaced_name(meta_of(o))}; }

}  // namespace knode::api
