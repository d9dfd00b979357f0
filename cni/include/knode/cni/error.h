// CNI errors: the spec's well-known codes and knode-cni's own (100 and up), and a small
// Outcome<T> that carries a value or an Error to the plugin's single exit point.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace knode::cni {

enum ErrorCode : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kPluginNotAvailable = 50,
  kLimitedConnectivity = 51,
  // knode-cni's own codes.
  kInternal = 100,          // a kernel or file operation failed; msg names it
  kInterfaceExists = 101,   // ADD: CNI_IFNAME already exists in the netns
  kInterfaceMissing = 102,  // CHECK: the interface (or the netns) is gone
  kAddressMissing = 103,    // CHECK: an address of prevResult is missing
  kRouteMissing = 104,      // CHECK: a route of prevResult is missing
  kAllocationMissing = 105, // CHECK: the IPAM reservation is gone
  kRangeExhausted = 106,    // ADD: no free address in a range set
  kRulesMissing = 107,      // CHECK: masquerade or port mapping rules are missing
};

struct Error {
  int code = kInternal;
  std::string msg;
  std::string details;
};

template <typename T>
class Outcome {
 public:
  Outcome(T value) : v_(std::move(value)) {}   // NOLINT(google-explicit-constructor)
  Outcome(Error e) : v_(std::move(e)) {}       // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// For operations that return nothing on success.
using Done = Outcome<std::monostate>;
inline Done ok() { return std::monostate{}; }

}  // namespace knode::cni
