// A small result type for fallible operations: what was attempted and the answer.
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace knode {

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string message, int err = 0) {
    Status s;
    s.ok_ = false;
    s.errno_ = err;
    s.message_ = std::move(message);
    return s;
  }
  // "what: strerror(err)", e.g. "add IPVS service 10.96.0.1:443/TCP: File exists".
  static Status FromErrno(const std::string& what, int err) {
    return Error(what + ": " + std::strerror(err), err);
  }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  int error_number() const { return errno_; }
  const std::string& message() const { return message_; }

  // Prefixes the message with more context: "sync iptables: " + message.
  Status Wrap(const std::string& context) const {
    if (ok_) return *this;
    return Error(context + ": " + message_, errno_);
  }

 private:
  bool ok_ = true;
  int errno_ = 0;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Status error) : v_(std::move(error)) {}     // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  Status status() const { return ok() ? Status::Ok() : std::get<1>(v_); }
  const std::string& error() const {
    static const std::string kEmpty;
    return ok() ? kEmpty : std::get<1>(v_).message();
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace knode
