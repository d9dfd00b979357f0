// Prometheus metrics: counters, gauges and histograms, optionally labelled, rendered in
// the text exposition format 0.0.4. Updates are thread-safe (a worker thread may count
// while the io_context thread scrapes); series handles stay valid as long as the registry.
//
//   knode::metrics::Registry registry;
//   auto& syncs = registry.counter_family("kubeproxy_sync_proxy_rules_total",
//                                         "Sync attempts by result.", {"result"});
//   syncs.with({"ok"}).inc();
//   auto& latency = registry.histogram("kubeproxy_sync_proxy_rules_duration_seconds",
//                                      "Sync latency.", knode::metrics::exponential_buckets(0.001, 2, 15));
//   latency.observe(0.042);
//   knode::metrics::register_process_metrics(registry);
//   std::string text = registry.render();   // serve with kContentType
//
// Misuse (bad metric or label names, a wrong number of label values, one name registered
// with two types) is a programming error and throws std::logic_error.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace knode::metrics {

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class Type { kCounter, kGauge, kHistogram, kUntyped };

using LabelValues = std::vector<std::string>;
using Labels = std::vector<std::pair<std::string, std::string>>;

// --- Series -------------------------------------------------------------------------

class Counter {
 public:
  // Adds v (>= 0; a negative value throws std::logic_error).
  void inc(double v = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  void inc(double v = 1.0) { add(v); }
  void dec(double v = 1.0) { add(-v); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // Upper bounds, strictly increasing; the +Inf bucket is implied.
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double> bounds_;
  mutable std::mutex mu_;  // count, sum and buckets change together
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last is +Inf
  uint64_t count_ = 0;
  double sum_ = 0;
};

// The client libraries' defaults: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10.
const std::vector<double>& default_buckets();
std::vector<double> linear_buckets(double start, double width, int count);
std::vector<double> exponential_buckets(double start, double factor, int count);

// --- Families: one metric name, a fixed list of label names, a series per label values

template <typename M>
class Family {
 public:
  using Factory = std::function<std::unique_ptr<M>()>;
  Family(std::vector<std::string> label_names, Factory make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}

  // The series for these label values, in label-name order, created on first use.
  M& with(const LabelValues& values);
  // Forgets a series (e.g. a deleted Service's); false if it was not there. References
  // to that series obtained earlier dangle afterwards: forget it only from its owner.
  bool remove(const LabelValues& values) {
    std::lock_guard lock(mu_);
    return series_.erase(values) > 0;
  }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Calls f(label_values, series) for each series in label order, under the family lock.
  template <typename F>
  void for_each(F&& f) const {
    std::lock_guard lock(mu_);
    for (const auto& [values, series] : series_) f(values, *series);
  }

 private:
  const std::vector<std::string> label_names_;
  const Factory make_;
  mutable std::mutex mu_;
  std::map<LabelValues, std::unique_ptr<M>> series_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// --- Exposition ---------------------------------------------------------------------

// What a scrape sees, also what collectors (computed-at-scrape metrics) produce.
struct Sample {
  std::string name;  // full sample name: "x", "x_bucket", "x_sum", "x_count"
  Labels labels;
  double value = 0;
};
struct MetricFamily {
  std::string name;
  std::string help;
  Type type = Type::kUntyped;
  std::vector<Sample> samples;
};
using Collector = std::function<void(std::vector<MetricFamily>&)>;

// Text format 0.0.4: "# HELP", "# TYPE", then one line per sample; label values and
// help text escaped. Families print in the order given.
std::string render_text(const std::vector<MetricFamily>& families);
// A sample value as Prometheus reads it: "42", "0.25", "1e-09", "+Inf", "-Inf", "NaN".
std::string format_value(double v);

// --- Registry -----------------------------------------------------------------------

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Unlabelled series. Registering an existing name with the same type and labels
  // returns the existing series.
  Counter& counter(const std::string& name, const std::string& help);
  Gauge& gauge(const std::string& name, const std::string& help);
  Histogram& histogram(const std::string& name, const std::string& help,
                       std::vector<double> buckets = default_buckets());

  CounterFamily& counter_family(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names);
  GaugeFamily& gauge_family(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names);
  HistogramFamily& histogram_family(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names,
                                    std::vector<double> buckets = default_buckets());

  // Runs at every scrape, on the scraping thread; must be quick and thread-safe.
  void add_collector(Collector collector);

  // Every family, sorted by name. Labelled families with no series are left out.
  std::vector<MetricFamily> collect() const;
  std::string render() const { return render_text(collect()); }

 private:
  struct Entry;
  Entry& entry(const std::string& name, const std::string& help, Type type,
               const std::vector<std::string>& label_names, const std::vector<double>* buckets);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  std::vector<Collector> collectors_;
};

// --- Process metrics ----------------------------------------------------------------

// Reads, at scrape time, <proc_root>/self/{stat,fd,limits} and <proc_root>/stat and
// reports process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_start_time_seconds, process_open_fds and
// process_max_fds. A file that cannot be read drops only the metrics it feeds.
Collector process_collector(std::string proc_root = "/proc");
void register_process_metrics(Registry& registry, std::string proc_root = "/proc");

// --- Family::with -------------------------------------------------------------------

namespace detail {
[[noreturn]] void throw_label_count(const std::vector<std::string>& names, std::size_t got);
}  // namespace detail

template <typename M>
M& Family<M>::with(const LabelValues& values) {
  if (values.size() != label_names_.size()) detail::throw_label_count(label_names_, values.size());
  std::lock_guard lock(mu_);
  auto it = series_.find(values);
  if (it == series_.end()) it = series_.emplace(values, make_()).first;
  return *it->second;
}

}  // namespace knode::metrics
