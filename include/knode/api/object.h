// Any object a node deals with, as one value type, and its identity.
#pragma once

#include <memory>
#include <string>
#include <variant>

#include "knode/api/cluster.h"
#include "knode/api/pod.h"
#include "knode/api/service.h"

namespace knode::api {

// One object of a kind, on the heap: an Object is as big as the kind it holds (plus a
// pointer), not as its biggest kind (a Pod, 1.5 KB, where an EndpointSlice is 440 bytes:
// at 10,000 Services and slices that was 16 MB). A value: copies copy the object.
template <typename T>
class Held {
 public:
  Held() : p_(std::make_unique<T>()) {}
  Held(const T& v) : p_(std::make_unique<T>(v)) {}
  Held(T&& v) : p_(std::make_unique<T>(std::move(v))) {}
  Held(const Held& o) : p_(std::make_unique<T>(*o.p_)) {}
  Held(Held&& o) noexcept = default;  // leaves `o` empty: only assign to or destroy it
  Held& operator=(const Held& o) {
    if (this != &o) p_ = std::make_unique<T>(*o.p_);
    return *this;
  }
  Held& operator=(Held&&) noexcept = default;

  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }
  bool operator==(const Held& o) const { return *p_ == *o.p_; }

 private:
  std::unique_ptr<T> p_;
};

using Object = std::variant<Held<Pod>, Held<Service>, Held<EndpointSlice>, Held<Endpoints>, Held<Node>,
                            Held<ConfigMap>, Held<Secret>, Held<Namespace>>;
using ObjectPtr = std::shared_ptr<const Object>;

// std::get, std::get_if, std::holds_alternative and std::visit for the kinds themselves.
template <typename T>
const T& get(const Object& o) {
  return *std::get<Held<T>>(o);
}
template <typename T>
T& get(Object& o) {
  return *std::get<Held<T>>(o);
}
template <typename T>
const T* get_if(const Object* o) {
  const auto* h = o ? std::get_if<Held<T>>(o) : nullptr;
  return h ? &**h : nullptr;
}
template <typename T>
bool holds(const Object& o) {
  return std::holds_alternative<Held<T>>(o);
}
template <typename F>
decltype(auto) visit(F&& f, const Object& o) {
  return std::visit([&f](const auto& h) -> decltype(auto) { return f(*h); }, o);
}
template <typename F>
decltype(auto) visit(F&& f, Object& o) {
  return std::visit([&f](auto& h) -> decltype(auto) { return f(*h); }, o);
}

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

// An object of `kind` with nothing set but its metadata's namespace and name: what a
// cache that keeps no objects hands out for one that went (kube::ReflectorCache).
Object stub_object(const ObjectKey& key, const std::string& resource_version);

}  // namespace knode::api
