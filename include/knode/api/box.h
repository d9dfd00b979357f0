// Box<T>: an optional value kept on the heap. Used like std::optional<T> (the API codecs
// treat it as one) for large fields that are usually absent: unset, it costs a pointer
// where an optional costs the whole T (an EndpointSlice's per-endpoint targetRef is seven
// strings, 232 bytes, in every one of its up to 100 endpoints).
#pragma once

#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace knode::api {

template <typename T>
class Box {
 public:
  Box() = default;
  Box(std::nullopt_t) {}
  Box(const T& v) : p_(std::make_unique<T>(v)) {}
  Box(T&& v) : p_(std::make_unique<T>(std::move(v))) {}
  Box(const std::optional<T>& v) : p_(v ? std::make_unique<T>(*v) : nullptr) {}
  Box(const Box& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  Box(Box&&) noexcept = default;
  Box& operator=(const Box& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }
  Box& operator=(Box&&) noexcept = default;
  Box& operator=(const T& v) {
    p_ = std::make_unique<T>(v);
    return *this;
  }
  Box& operator=(T&& v) {
    p_ = std::make_unique<T>(std::move(v));
    return *this;
  }
  Box& operator=(std::nullopt_t) {
    p_.reset();
    return *this;
  }

  explicit operator bool() const { return p_ != nullptr; }
  bool has_value() const { return p_ != nullptr; }
  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }
  T& emplace() {
    p_ = std::make_unique<T>();
    return *p_;
  }
  void reset() { p_.reset(); }

  bool operator==(const Box& o) const {
    if (!p_ || !o.p_) return !p_ && !o.p_;
    return *p_ == *o.p_;
  }
  // Set, and equal to `v` (as an optional compares with a value). Not for another Box or
  // an optional, which compare as optionals do (both unset is equal).
  template <typename U>
    requires(!std::is_same_v<std::decay_t<U>, Box> && !std::is_same_v<std::decay_t<U>, std::optional<T>> &&
             requires(const T& t, const U& u) { t == u; })
  bool operator==(const U& v) const {
    return p_ && *p_ == v;
  }

 private:
  std::unique_ptr<T> p_;
};

}  // namespace knode::api
