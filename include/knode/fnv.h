// FNV-1a over 64 bits (the standard offset basis and prime): a cheap, stable hash of a
// name, for choices that must come out the same in every process and after a restart.
#pragma once

#include <cstdint>
#include <string_view>

namespace knode {

inline uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace knode
