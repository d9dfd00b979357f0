#include "knode/api/values.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace knode::api {
namespace {
__extension__ typedef __int128 int128;

constexpr int128 pow10(int e) {
  int128 v = 1;
  for (int i = 0; i < e; ++i) v *= 10;
  return v;
}

// Suffix -> (base, exponent): value = number * base^exponent.
bool suffix_scale(std::string_view s, int* base, int* exp) {
  struct S { const char* s; int base; int exp; };
  static constexpr S kSuffixes[] = {
      {"", 10, 0},  {"n", 10, -9}, {"u", 10, -6}, {"m", 10, -3}, {"k", 10, 3},
      {"M", 10, 6}, {"G", 10, 9},  {"T", 10, 12}, {"P", 10, 15}, {"E", 10, 18},
      {"Ki", 2, 10}, {"Mi", 2, 20}, {"Gi", 2, 30}, {"Ti", 2, 40}, {"Pi", 2, 50}, {"Ei", 2, 60},
  };
  for (const auto& e : kSuffixes) {
    if (s == e.s) {
      *base = e.base;
      *exp = e.exp;
      return true;
    }
  }
  // Decimal exponent: e3, E-2.
  if (s.size() >= 2 && (s[0] == 'e' || s[0] == 'E')) {
    size_t i = 1;
    bool neg = false;
    if (s[i] == '+' || s[i] == '-') neg = s[i++] == '-';
    if (i >= s.size() || s.size() - i > 3) return false;
    int v = 0;
    for (; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *base = 10;
    *exp = neg ? -v : v;
    return true;
  }
  return false;
}

int128 ceil_div(int128 a, int128 b) {
  int128 q = a / b;
  if (a % b != 0 && a > 0) ++q;
  return q;
}

int64_t saturate(int128 v) {
  if (v > INT64_MAX) return INT64_MAX;
  if (v < INT64_MIN) return INT64_MIN;
  return static_cast<int64_t>(v);
}
}  // namespace

std::optional<Quantity> Quantity::Parse(std::string_view text, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<Quantity> {
    if (error) *error = "quantity \"" + std::string(text) + "\": " + why;
    return std::nullopt;
  };
  if (text.empty()) return fail("empty");
  size_t i = 0;
  bool neg = false;
  if (text[i] == '+' || text[i] == '-') neg = text[i++] == '-';
  int128 mantissa = 0;
  int frac_digits = 0;
  int digits = 0;
  bool dot = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      if (dot) return fail("two decimal points");
      dot = true;
      continue;
    }
    if (c < '0' || c > '9') break;
    if (digits < 30) {  // more precision than any real quantity carries
      mantissa = mantissa * 10 + (c - '0');
      if (dot) ++frac_digits;
    } else if (!dot) {
      return fail("too large");
    }
    ++digits;
  }
  if (digits == 0) return fail("must start with a number");
  int base = 10, exp = 0;
  if (!suffix_scale(text.substr(i), &base, &exp)) return fail("unknown suffix");
  // nanos = mantissa / 10^frac * base^exp * 10^9
  int128 nanos = mantissa;
  int dec_exp = 9 - frac_digits;
  if (base == 2) {
    for (int k = 0; k < exp; ++k) {
      nanos *= 2;
      if (nanos > pow10(36)) return fail("too large");
    }
  } else {
    dec_exp += exp;
  }
  if (dec_exp >= 0) {
    // Checked before the multiplication: 30 digits times 10^30 overflows even an int128.
    if (dec_exp > 30 || nanos > pow10(37) / pow10(dec_exp)) return fail("too large");
    nanos *= pow10(dec_exp);
  } else {
    if (-dec_exp > 36) {
      nanos = nanos ? 1 : 0;  // below a nano: round up like Kubernetes does
    } else {
      nanos = ceil_div(nanos, pow10(-dec_exp));
    }
  }
  Quantity q;
  q.text_ = std::string(text);
  q.nanos_ = neg ? -nanos : nanos;
  return q;
}

int64_t Quantity::value() const { return saturate(ceil_div(nanos_, pow10(9))); }
int64_t Quantity::milli_value() const { return saturate(ceil_div(nanos_, pow10(6))); }

namespace {
bool digits_at(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

int64_t days_from_civil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<int64_t>(era) * 146097 + static_cast<int64_t>(doe) - 719468;
}
}  // namespace

std::optional<Time> Time::Parse(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  int Y, M, D, h, m, sec;
  if (!digits_at(s, 0, 4, &Y) || s.size() < 20 || s[4] != '-' || !digits_at(s, 5, 2, &M) ||
      s[7] != '-' || !digits_at(s, 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits_at(s, 11, 2, &h) || s[13] != ':' || !digits_at(s, 14, 2, &m) || s[16] != ':' ||
      !digits_at(s, 17, 2, &sec)) {
    return std::nullopt;
  }
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return std::nullopt;
  size_t i = 19;
  int64_t frac_ns = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int n = 0;
    int64_t scale = 100000000;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (n < 9) frac_ns += (s[i] - '0') * scale;
      scale /= 10;
      ++n;
      ++i;
    }
    if (n == 0) return std::nullopt;
  }
  int offset_sec = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!digits_at(s, i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !digits_at(s, i + 4, 2, &om)) {
      return std::nullopt;
    }
    offset_sec = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  int64_t days = days_from_civil(Y, static_cast<unsigned>(M), static_cast<unsigned>(D));
  int64_t secs = days * 86400 + h * 3600 + m * 60 + sec - offset_sec;
  // Nanoseconds since 1970 in an int64 reach from 1677 to 2262: a time outside is not one
  // knode can hold (Go's zero time, year 1, included), and not silently wrapped.
  int64_t ns;
  if (__builtin_mul_overflow(secs, int64_t{1000000000}, &ns) || __builtin_add_overflow(ns, frac_ns, &ns)) {
    return std::nullopt;
  }
  return FromUnixNanos(ns);
}

Time Time::Now() {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return FromUnixNanos(ns);
}

std::string Time::str() const {
  if (!set_) return "";
  int64_t secs = unix_nanos_ / 1000000000;
  int64_t frac = unix_nanos_ % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  time_t t = static_cast<time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  std::string out = buf;
  if (frac != 0) {
    char f[16];
    std::snprintf(f, sizeof(f), ".%09lld", static_cast<long long>(frac));
    std::string fs = f;
    while (fs.back() == '0') fs.pop_back();
    out += fs;
  }
  return out + "Z";
}

std::optional<Duration> Duration::Parse(std::string_view s) {
  // As Go's time.ParseDuration, in integers: a floating point sum read "2.000000003s" back
  // as 2.000000002 s.
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') neg = s[i++] == '-';
  if (s.substr(i) == "0") return Duration();
  if (i == s.size()) return std::nullopt;
  constexpr int128 kMax = static_cast<int128>(1) << 63;  // |INT64_MIN|
  int128 total = 0;
  while (i < s.size()) {
    int128 whole = 0, frac = 0, frac_scale = 1;
    bool pre = false, post = false;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      whole = whole * 10 + (s[i] - '0');
      if (whole > kMax) return std::nullopt;
      pre = true;
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
        if (frac_scale < static_cast<int128>(1000000000000000000)) {  // digits past 18 change nothing
          frac = frac * 10 + (s[i] - '0');
          frac_scale *= 10;
        }
        post = true;
      }
    }
    if (!pre && !post) return std::nullopt;
    const size_t ustart = i;
    while (i < s.size() && s[i] != '.' && (s[i] < '0' || s[i] > '9')) ++i;
    const std::string_view unit = s.substr(ustart, i - ustart);
    int64_t scale;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") scale = 1000;
    else if (unit == "ms") scale = 1000000;
    else if (unit == "s") scale = 1000000000;
    else if (unit == "m") scale = 60 * int64_t{1000000000};
    else if (unit == "h") scale = 3600 * int64_t{1000000000};
    else return std::nullopt;
    const int128 v = whole * scale + frac * scale / frac_scale;  // whole <= 2^63, scale < 2^42
    total += v;
    if (total > kMax) return std::nullopt;
  }
  if (!neg && total == kMax) return std::nullopt;
  const auto ns = static_cast<int64_t>(neg ? -total : total);
  return FromNanos(ns);
}

std::string Duration::str() const {
  int64_t ns = nanos_;
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  if (ns < 0) ns = -ns;
  if (ns < 1000000000) {
    if (ns % 1000000 == 0) return sign + std::to_string(ns / 1000000) + "ms";
    if (ns % 1000 == 0) return sign + std::to_string(ns / 1000) + "us";
    return sign + std::to_string(ns) + "ns";
  }
  int64_t h = ns / 3600000000000LL;
  ns %= 3600000000000LL;
  int64_t m = ns / 60000000000LL;
  ns %= 60000000000LL;
  std::string out = sign;
  if (h) out += std::to_string(h) + "h";
  if (h || m) out += std::to_string(m) + "m";
  int64_t s = ns / 1000000000;
  int64_t frac = ns % 1000000000;
  out += std::to_string(s);
  if (frac) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), ".%09lld", static_cast<long long>(frac));
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + "s";
}

}  // namespace knode::api
