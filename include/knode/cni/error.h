// CNI errors: the spec's well-known codes and knode-cni's own (100 and up).
#pragma once

#include <string>
#include <utility>

#include "knode/status.h"

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

// CNI failures travel as knode::Status, whose error_number() is the CNI code above (not
// an errno): error() makes one, internal() wraps what a kernel or file operation said.
inline Status error(int code, std::string msg) { return Status::Error(std::move(msg), code); }
inline Status internal(const std::string& what, const Status& s) {
  return Status::Error(what.empty() ? s.message() : what + ": " + s.message(), kInternal);
}

}  // namespace knode::cni
