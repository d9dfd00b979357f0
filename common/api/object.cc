#include "knode/api/object.h"

#include <utility>

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

namespace {

template <size_t... I>
Object empty_of(size_t index, std::index_sequence<I...>) {
  Object out;
  ((index == I ? (out.emplace<I>(), 0) : 0), ...);
  return out;
}

}  // namespace

Object stub_object(const ObjectKey& key, const std::string& resource_version) {
  Object o = empty_of(static_cast<size_t>(key.kind), std::make_index_sequence<std::variant_size_v<Object>>{});
  ObjectMeta& m = meta_of(o);
  if (auto slash = key.name.find('/'); slash != std::string::npos) {
    m.namespace_ = key.name.substr(0, slash);
    m.name = key.name.substr(slash + 1);
  } else {
    m.name = key.name;
  }
  m.resource_version = resource_version;
  return o;
}

}  // namespace knode::api
