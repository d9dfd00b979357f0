// FNV-1a (64 bit): short, stable names for the plugin's chains and interfaces, derived
// from the network, container and interface they belong to. Not knode::fnv1a64: the offset
// basis here is 1469598103934665603, one digit short of the standard 14695981039346656037,
// and the names already on nodes were made with it, so it stays.
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
