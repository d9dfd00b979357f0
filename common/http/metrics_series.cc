#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "knode/metrics.h"

namespace knode::metrics {

void Counter::inc(double v) {
  if (v < 0) throw std::logic_error("counter increment must not be negative");
  value_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (std::isnan(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1])) {
      throw std::logic_error("histogram buckets must be strictly increasing");
    }
  }
  counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::observe(double v) {
  // Buckets are "less than or equal": v lands in the first bound >= v.
  auto idx = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                      bounds_.begin());
  std::lock_guard lock(mu_);
  ++counts_[idx];
  ++count_;
  sum_ += v;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  std::lock_guard lock(mu_);
  s.cumulative_counts.reserve(counts_.size());
  uint64_t running = 0;
  for (uint64_t c : counts_) {
    running += c;
    s.cumulative_counts.push_back(running);
  }
  s.count = count_;
  s.sum = sum_;
  return s;
}

const std::vector<double>& default_buckets() {
  static const std::vector<double> kBuckets{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
  return kBuckets;
}

std::vector<double> linear_buckets(double start, double width, int count) {
  if (count < 1 || width <= 0) throw std::logic_error("linear_buckets: count >= 1, width > 0");
  std::vector<double> out;
  for (int i = 0; i < count; ++i) out.push_back(start + width * i);
  return out;
}

std::vector<double> exponential_buckets(double start, double factor, int count) {
  if (count < 1 || start <= 0 || factor <= 1) {
    throw std::logic_error("exponential_buckets: count >= 1, start > 0, factor > 1");
  }
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) out.push_back(v);
  return out;
}

namespace detail {
void throw_label_count(const std::vector<std::string>& names, std::size_t got) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ",") + n;
  throw std::logic_error("metric with labels [" + list + "] given " + std::to_string(got) +
                         " label values");
}
}  // namespace detail

}  // namespace knode::metrics
