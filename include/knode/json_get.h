// Reading and writing JSON that comes from outside (the API server, a container runtime, a
// file) without exceptions: a missing key, a value of another type, or a parent that is not an
// object all give the default. nlohmann's value() throws type_error on the last two, and
// an uncaught exception ends the daemon.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace knode::jget {

// j[key] when j is an object that has key; otherwise a null.
inline const nlohmann::json& member(const nlohmann::json& j, std::string_view key) {
  static const nlohmann::json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

inline std::string str(const nlohmann::json& j, std::string_view key, std::string def = {}) {
  const auto& v = member(j, key);
  return v.is_string() ? v.get<std::string>() : def;
}

inline bool boolean(const nlohmann::json& j, std::string_view key, bool def = false) {
  const auto& v = member(j, key);
  return v.is_boolean() ? v.get<bool>() : def;
}

// An integer member that fits T; a float, a string or an out-of-range number gives def.
template <typename T = int64_t>
T integer(const nlohmann::json& j, std::string_view key, T def = 0) {
  static_assert(std::is_integral_v<T>);
  const auto& v = member(j, key);
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    return u <= static_cast<uint64_t>(std::numeric_limits<T>::max()) ? static_cast<T>(u) : def;
  }
  if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    if constexpr (std::is_signed_v<T>) {
      return i >= std::numeric_limits<T>::min() && i <= std::numeric_limits<T>::max() ? static_cast<T>(i) : def;
    } else {
      return i >= 0 && static_cast<uint64_t>(i) <= std::numeric_limits<T>::max() ? static_cast<T>(i) : def;
    }
  }
  return def;
}

// An object member (a copy), or an empty object.
inline nlohmann::json object(const nlohmann::json& j, std::string_view key) {
  const auto& v = member(j, key);
  return v.is_object() ? v : nlohmann::json::object();
}

// An array member (a copy), or an empty array.
inline nlohmann::json array(const nlohmann::json& j, std::string_view key) {
  const auto& v = member(j, key);
  return v.is_array() ? v : nlohmann::json::array();
}

// j as JSON text; a string that is not UTF-8 is written with U+FFFD where its bad bytes
// were (as Go's encoding/json writes it) rather than throwing, as nlohmann's dump() would.
inline std::string dump(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace knode::jget
