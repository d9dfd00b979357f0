#include "knode/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>

namespace knode::metrics {
namespace {

TEST(MetricsText, CounterGaugeAndHistogramWithLabels) {
  Registry r;
  auto& requests = r.counter_family("http_requests_total", "Requests served.", {"code", "path"});
  requests.with({"200", "/healthz"}).inc();
  requests.with({"200", "/healthz"}).inc(2);
  requests.with({"503", "/livez"}).inc();
  r.gauge("kubeproxy_services", "Services programmed.").set(42);
  auto& latency = r.histogram_family("sync_duration_seconds", "Sync latency.", {"mode"},
                                     {0.1, 0.5, 2.5});
  auto& ipvs = latency.with({"ipvs"});
  ipvs.observe(0.05);
  ipvs.observe(0.1);  // on a bound: counts in that bucket ("le")
  ipvs.observe(0.3);
  ipvs.observe(7);

  EXPECT_EQ(r.render(),
            "# HELP http_requests_total Requests served.\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total{code=\"200\",path=\"/healthz\"} 3\n"
            "http_requests_total{code=\"503\",path=\"/livez\"} 1\n"
            "# HELP kubeproxy_services Services programmed.\n"
            "# TYPE kubeproxy_services gauge\n"
            "kubeproxy_services 42\n"
            "# HELP sync_duration_seconds Sync latency.\n"
            "# TYPE sync_duration_seconds histogram\n"
            "sync_duration_seconds_bucket{mode=\"ipvs\",le=\"0.1\"} 2\n"
            "sync_duration_seconds_bucket{mode=\"ipvs\",le=\"0.5\"} 3\n"
            "sync_duration_seconds_bucket{mode=\"ipvs\",le=\"2.5\"} 3\n"
            "sync_duration_seconds_bucket{mode=\"ipvs\",le=\"+Inf\"} 4\n"
            "sync_duration_seconds_sum{mode=\"ipvs\"} 7.45\n"
            "sync_duration_seconds_count{mode=\"ipvs\"} 4\n");
}

TEST(MetricsText, UnlabelledHistogramAndEmptyFamilies) {
  Registry r;
  r.histogram("h_seconds", "H.", {1}).observe(0.5);
  r.counter_family("unused_total", "Never touched.", {"x"});  // no series: not shown
  r.counter("zero_total", "Registered, never incremented.");
  EXPECT_EQ(r.render(),
            "# HELP h_seconds H.\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"1\"} 1\n"
            "h_seconds_bucket{le=\"+Inf\"} 1\n"
            "h_seconds_sum 0.5\n"
            "h_seconds_count 1\n"
            "# HELP zero_total Registered, never incremented.\n"
            "# TYPE zero_total counter\n"
            "zero_total 0\n");
}

TEST(MetricsText, EscapesLabelValuesAndHelp) {
  Registry r;
  r.gauge_family("g", "Help with \\ and\nnewline, \"quotes\" kept.", {"v"})
      .with({"a\"b\\c\nd"})
      .set(1);
  EXPECT_EQ(r.render(),
            "# HELP g Help with \\\\ and\\nnewline, \"quotes\" kept.\n"
            "# TYPE g gauge\n"
            "g{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsText, FormatsValuesAsPrometheusReadsThem) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(-3), "-3");
  EXPECT_EQ(format_value(1e6), "1000000");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1e-9), "1e-09");
  EXPECT_EQ(format_value(1.5e300), "1.5e+300");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(MetricsRegistry, FamiliesAreSortedByName) {
  Registry r;
  r.counter("b_total", "b").inc();
  r.counter("a_total", "a").inc();
  auto families = r.collect();
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(families[0].name, "a_total");
  EXPECT_EQ(families[1].name, "b_total");
}

TEST(MetricsRegistry, SameRegistrationReturnsTheSameSeries) {
  Registry r;
  auto& a = r.counter("x_total", "x");
  auto& b = r.counter("x_total", "x");
  EXPECT_EQ(&a, &b);
}

TEST(MetricsRegistry, MisuseThrows) {
  Registry r;
  r.counter("x_total", "x");
  EXPECT_THROW(r.gauge("x_total", "x"), std::logic_error);
  EXPECT_THROW(r.counter_family("x_total", "x", {"a"}), std::logic_error);
  EXPECT_THROW(r.counter("bad-name", "x"), std::logic_error);
  EXPECT_THROW(r.counter_family("y_total", "y", {"__reserved"}), std::logic_error);
  EXPECT_THROW(r.histogram_family("h", "h", {"le"}), std::logic_error);
  EXPECT_THROW(r.histogram("h2", "h", {1, 1}), std::logic_error);
  auto& f = r.counter_family("z_total", "z", {"a", "b"});
  EXPECT_THROW(f.with({"only-one"}), std::logic_error);
  EXPECT_THROW(r.counter("x_total", "x").inc(-1), std::logic_error);
}

TEST(MetricsRegistry, RemovedSeriesDisappears) {
  Registry r;
  auto& f = r.gauge_family("g", "g", {"svc"});
  f.with({"a"}).set(1);
  f.with({"b"}).set(2);
  EXPECT_TRUE(f.remove({"a"}));
  EXPECT_FALSE(f.remove({"a"}));
  EXPECT_EQ(r.render(), "# HELP g g\n# TYPE g gauge\ng{svc=\"b\"} 2\n");
}

TEST(MetricsRegistry, CollectorsAddFamiliesAtScrapeTime) {
  Registry r;
  int scrapes = 0;
  r.add_collector([&scrapes](std::vector<MetricFamily>& out) {
    ++scrapes;
    out.push_back({"scrapes", "Scrapes so far.", Type::kCounter, {{"scrapes", {}, double(scrapes)}}});
  });
  r.render();
  EXPECT_EQ(r.render(), "# HELP scrapes Scrapes so far.\n# TYPE scrapes counter\nscrapes 2\n");
}

TEST(MetricsRegistry, UpdatesFromManyThreadsAreNotLost) {
  Registry r;
  auto& c = r.counter_family("c_total", "c", {"t"});
  auto& h = r.histogram("h", "h", {0.5});
  auto& g = r.gauge("g", "g");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        c.with({t % 2 ? "odd" : "even"}).inc();
        h.observe(1);
        g.inc();
        if (i % 1000 == 0) r.render();  // a scrape in the middle
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.with({"odd"}).value() + c.with({"even"}).value(), 40000);
  EXPECT_EQ(h.snapshot().count, 40000u);
  EXPECT_EQ(h.snapshot().sum, 40000);
  EXPECT_EQ(g.value(), 40000);
}

TEST(MetricsBuckets, Generators) {
  EXPECT_EQ(linear_buckets(1, 2, 3), (std::vector<double>{1, 3, 5}));
  auto e = exponential_buckets(0.001, 2, 4);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_DOUBLE_EQ(e[3], 0.008);
  EXPECT_EQ(default_buckets().size(), 11u);
  EXPECT_EQ(default_buckets().front(), 0.005);
  EXPECT_EQ(default_buckets().back(), 10);
}

}  // namespace
}  // namespace knode::metrics
