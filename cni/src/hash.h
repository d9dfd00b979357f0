// FNV-1a (64 bit): short, stable names for the plugin's chains and interfaces, derived
// from the network, container and interface they belong to.
#pragma once

#include <cstdint>
#include <string_view>

namespace knode::cni {

inline uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace knode::cni
