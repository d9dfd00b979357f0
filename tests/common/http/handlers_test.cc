// The daemon's endpoints over real loopback sockets.
#include "knode/http/handlers.h"

#include <gtest/gtest.h>

#include "fakes/fake_clock.h"
#include "support/raw_client.h"
#include "support/server_fixture.h"

namespace knode::http {
namespace {

using namespace std::chrono_literals;
using knode::testing::FakeClock;
using testing::RawClient;

class EndpointsTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    handle("/healthz", kubelet_healthz_handler(kubelet_));
    handle("/metrics", metrics_handler(metrics_));
    start();
  }

  std::optional<testing::RawResponse> get(const std::string& path) {
    RawClient c(port_);
    if (!c.send("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n")) return std::nullopt;
    return c.read_response();
  }

  FakeClock clock_;
  health::HealthRegistry kubelet_{clock_};
  metrics::Registry metrics_;
};

TEST_F(EndpointsTest, KubeletHealthzOk) {
  kubelet_.set_healthy("kubelet");
  auto r = get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r->body, "ok");
}

TEST_F(EndpointsTest, KubeletHealthz503WithReason) {
  kubelet_.set_unhealthy("kubelet", "pod workers not started");
  auto r = get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r->body, "kubelet: pod workers not started\n");
}

TEST_F(EndpointsTest, KubeletHealthz503WhenReportsStop) {
  kubelet_.set_max_age("kubelet", 2min);
  kubelet_.set_healthy("kubelet");
  clock_.advance(3min);
  auto r = get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "kubelet: no report for 180s (limit 120s)\n");
}

TEST_F(EndpointsTest, MetricsInTextFormat) {
  metrics_.counter_family("kubeproxy_sync_proxy_rules_total", "Syncs.", {"result"})
      .with({"ok"})
      .inc();
  metrics::register_process_metrics(metrics_);
  auto r = get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r->body.find("# TYPE kubeproxy_sync_proxy_rules_total counter\n"
                         "kubeproxy_sync_proxy_rules_total{result=\"ok\"} 1\n"),
            std::string::npos);
  auto rss = r->body.find("\nprocess_resident_memory_bytes ");
  ASSERT_NE(rss, std::string::npos);
  EXPECT_GT(std::stod(r->body.substr(rss + 31)), 0);
  for (const char* name : {"process_cpu_seconds_total", "process_start_time_seconds",
                           "process_open_fds", "process_max_fds", "process_virtual_memory_bytes"}) {
    EXPECT_NE(r->body.find(std::string("\n") + name + " "), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace knode::http
