// Small Kubernetes value types: Quantity ("500m", "2Gi"), IntOrString, Time (RFC 3339).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace knode::api {

// Marks a field written even when empty (no omitempty in its Go type):
// v("ready", ready, kAlways).
struct Always {};
inline constexpr Always kAlways{};

// A resource quantity. Keeps its original spelling for round trips; the value is held in
// nano-units so every suffix (n, u, m, k..E, Ki..Ei, e3) is exact.
class Quantity {
 public:
  Quantity() = default;
  // Returns nullopt with `error` set when the text is not a quantity.
  static std::optional<Quantity> Parse(std::string_view text, std::string* error = nullptr);

  const std::string& str() const { return text_; }
  bool empty() const { return text_.empty(); }
  // Rounded up to a whole unit, as resource.Quantity.Value() does ("200m" bytes -> 1).
  int64_t value() const;
  // Rounded up to thousandths ("500m" -> 500, "2" -> 2000).
  int64_t milli_value() const;

  bool operator==(const Quantity& o) const { return nanos_ == o.nanos_; }

 private:
  std::string text_;
  __extension__ __int128 nanos_ = 0;
};

class IntOrString {
 public:
  IntOrString() = default;
  static IntOrString Int(int32_t v) { IntOrString x; x.is_int_ = true; x.int_ = v; return x; }
  static IntOrString String(std::string s) { IntOrString x; x.str_ = std::move(s); return x; }

  bool is_int() const { return is_int_; }
  int32_t int_value() const { return int_; }
  const std::string& str_value() const { return str_; }
  bool empty() const { return !is_int_ && str_.empty(); }
  std::string str() const { return is_int_ ? std::to_string(int_) : str_; }
  bool operator==(const IntOrString&) const = default;

 private:
  bool is_int_ = false;
  int32_t int_ = 0;
  std::string str_;
};

// metav1.Time: a point in time, serialized as RFC 3339 in UTC.
class Time {
 public:
  Time() = default;
  static std::optional<Time> Parse(std::string_view text);
  static Time FromUnixNanos(int64_t ns) { Time t; t.set_ = true; t.unix_nanos_ = ns; return t; }
  static Time Now();

  bool is_set() const { return set_; }
  int64_t unix_nanos() const { return unix_nanos_; }
  int64_t unix_seconds() const { return unix_nanos_ / 1000000000; }
  std::string str() const;  // "2026-11-23T09:04:56Z" (fraction only when non-zero)
  bool operator==(const Time&) const = default;

 private:
  bool set_ = false;
  int64_t unix_nanos_ = 0;
};

// A Go-style duration ("30s", "1m30s", "500ms"), as Kubernetes config files spell them.
class Duration {
 public:
  Duration() = default;
  static std::optional<Duration> Parse(std::string_view text);
  static Duration FromNanos(int64_t ns) { Duration d; d.nanos_ = ns; return d; }
  static Duration Seconds(int64_t s) { return FromNanos(s * 1000000000); }
  int64_t nanos() const { return nanos_; }
  int64_t millis() const { return nanos_ / 1000000; }
  double seconds() const { return static_cast<double>(nanos_) / 1e9; }
  std::string str() const;  // "1m30s", "500ms", "0s"
  bool operator==(const Duration&) const = default;
  auto operator<=>(const Duration&) const = default;

 private:
  int64_t nanos_ = 0;
};

}  // namespace knode::api
