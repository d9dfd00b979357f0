#include <cstdio>
#include <ctime>

#include "knode/health.h"

namespace knode::health {

std::string format_rfc3339(Clock::SystemTime t) {
  using namespace std::chrono;
  const auto secs = floor<seconds>(t);
  const auto nanos = duration_cast<nanoseconds>(t - secs).count();
  const std::time_t tt = system_clock::to_time_t(system_clock::time_point(secs));
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (nanos > 0) {
    char frac[32];
    std::snprintf(frac, sizeof(frac), ".%09lld", static_cast<long long>(nanos));
    std::string f(frac);
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  out += 'Z';
  return out;
}

}  // namespace knode::health
