#include <algorithm>
#include <stdexcept>

#include "knode/metrics.h"

namespace knode::metrics {
namespace {

bool valid_name(std::string_view s, bool allow_colon) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void check_names(const std::string& name, const std::vector<std::string>& labels, Type type) {
  if (!valid_name(name, true)) throw std::logic_error("invalid metric name \"" + name + "\"");
  for (const auto& l : labels) {
    if (!valid_name(l, false) || l.starts_with("__") || (type == Type::kHistogram && l == "le")) {
      throw std::logic_error("metric " + name + ": invalid label name \"" + l + "\"");
    }
  }
}

Labels zip(const std::vector<std::string>& names, const LabelValues& values) {
  Labels out;
  out.reserve(names.size() + 1);
  for (std::size_t i = 0; i < names.size(); ++i) out.emplace_back(names[i], values[i]);
  return out;
}

}  // namespace

struct Registry::Entry {
  std::string name;
  std::string help;
  Type type;
  std::vector<std::string> label_names;
  std::vector<double> buckets;
  std::unique_ptr<CounterFamily> counters;
  std::unique_ptr<GaugeFamily> gauges;
  std::unique_ptr<HistogramFamily> histograms;

  MetricFamily snapshot() const {
    MetricFamily f{name, help, type, {}};
    if (counters) {
      counters->for_each([&](const LabelValues& v, const Counter& c) {
        f.samples.push_back({name, zip(label_names, v), c.value()});
      });
    } else if (gauges) {
      gauges->for_each([&](const LabelValues& v, const Gauge& g) {
        f.samples.push_back({name, zip(label_names, v), g.value()});
      });
    } else if (histograms) {
      histograms->for_each([&](const LabelValues& v, const Histogram& h) {
        const auto s = h.snapshot();
        const Labels labels = zip(label_names, v);
        for (std::size_t i = 0; i < s.cumulative_counts.size(); ++i) {
          Labels with_le = labels;
          with_le.emplace_back("le", i < s.upper_bounds.size() ? format_value(s.upper_bounds[i])
                                                               : std::string("+Inf"));
          f.samples.push_back({name + "_bucket", std::move(with_le),
                               static_cast<double>(s.cumulative_counts[i])});
        }
        f.samples.push_back({name + "_sum", labels, s.sum});
        f.samples.push_back({name + "_count", labels, static_cast<double>(s.count)});
      });
    }
    return f;
  }
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Entry& Registry::entry(const std::string& name, const std::string& help, Type type,
                                 const std::vector<std::string>& label_names,
                                 const std::vector<double>* buckets) {
  check_names(name, label_names, type);
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    const Entry& e = *it->second;
    if (e.type != type || e.label_names != label_names || (buckets && e.buckets != *buckets)) {
      throw std::logic_error("metric " + name + " registered twice with different shapes");
    }
    return *it->second;
  }
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->help = help;
  e->type = type;
  e->label_names = label_names;
  switch (type) {
    case Type::kCounter:
      e->counters = std::make_unique<CounterFamily>(label_names,
                                                    [] { return std::make_unique<Counter>(); });
      break;
    case Type::kGauge:
      e->gauges =
          std::make_unique<GaugeFamily>(label_names, [] { return std::make_unique<Gauge>(); });
      break;
    case Type::kHistogram: {
      e->buckets = *buckets;
      Histogram probe(e->buckets);  // validates the buckets now, not at first use
      e->histograms = std::make_unique<HistogramFamily>(
          label_names, [b = e->buckets] { return std::make_unique<Histogram>(b); });
      break;
    }
    case Type::kUntyped: throw std::logic_error("metric " + name + ": untyped metrics are collected");
  }
  return *entries_.emplace(name, std::move(e)).first->second;
}

Counter& Registry::counter(const std::string& name, const std::string& help) {
  return counter_family(name, help, {}).with({});
}
Gauge& Registry::gauge(const std::string& name, const std::string& help) {
  return gauge_family(name, help, {}).with({});
}
Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               std::vector<double> buckets) {
  return histogram_family(name, help, {}, std::move(buckets)).with({});
}

CounterFamily& Registry::counter_family(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names) {
  return *entry(name, help, Type::kCounter, label_names, nullptr).counters;
}
GaugeFamily& Registry::gauge_family(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names) {
  return *entry(name, help, Type::kGauge, label_names, nullptr).gauges;
}
HistogramFamily& Registry::histogram_family(const std::string& name, const std::string& help,
                                            std::vector<std::string> label_names,
                                            std::vector<double> buckets) {
  return *entry(name, help, Type::kHistogram, label_names, &buckets).histograms;
}

void Registry::add_collector(Collector collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::vector<MetricFamily> Registry::collect() const {
  std::vector<const Entry*> entries;
  std::vector<Collector> collectors;
  {
    // Entries are never removed, so their addresses outlive the lock.
    std::lock_guard lock(mu_);
    for (const auto& [name, e] : entries_) entries.push_back(e.get());
    collectors = collectors_;
  }
  std::vector<MetricFamily> out;
  for (const Entry* e : entries) {
    MetricFamily f = e->snapshot();
    if (f.samples.empty() && !e->label_names.empty()) continue;
    out.push_back(std::move(f));
  }
  for (const auto& c : collectors) c(out);
  std::stable_sort(out.begin(), out.end(),
                   [](const MetricFamily& a, const MetricFamily& b) { return a.name < b.name; });
  return out;
}

}  // namespace knode::metrics
