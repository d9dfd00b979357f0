// ASCII case folding for protocol tokens, header names and the like: the C locale's, byte
// by byte (bytes over 0x7f are left as they are).
#pragma once

#include <string>
#include <string_view>

namespace knode {

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace knode
