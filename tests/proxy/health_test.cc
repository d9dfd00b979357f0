// kube-proxy's health rule and its /healthz and /livez endpoints over real loopback
// sockets, with a fake clock.
#include "health.h"

#include <gtest/gtest.h>

#include "fakes/fake_clock.h"
#include "knode/health.h"
#include "support/raw_client.h"
#include "support/server_fixture.h"

namespace knode::proxy {
namespace {

using namespace std::chrono_literals;
using knode::testing::FakeClock;
using http::testing::RawClient;

class ProxyHealthTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  ProxyHealth health_{clock_, 60s};  // 2 x a 30 s sync period
};

TEST_F(ProxyHealthTest, HealthyWhileStartingUp) {
  EXPECT_TRUE(health_.healthy());
  health_.queued_update(ProxyHealth::kIPv4);
  clock_.advance(10min);
  EXPECT_TRUE(health_.healthy());  // no sync loop yet: kube-proxy does not count it
}

TEST_F(ProxyHealthTest, QueuedUpdateNotSyncedWithinTimeoutIsUnhealthy) {
  health_.updated(ProxyHealth::kIPv4);  // sync loop started
  clock_.advance(1s);
  health_.queued_update(ProxyHealth::kIPv4);
  clock_.advance(59s);
  EXPECT_TRUE(health_.healthy());
  clock_.advance(1s);
  auto s = health_.state();
  EXPECT_FALSE(s.healthy);
  EXPECT_EQ(s.reason, "IPv4 rules not synced for 60s (limit 60s)");
  EXPECT_EQ(knode::health::format_rfc3339(s.last_updated), "2024-01-02T03:04:05Z");
  EXPECT_EQ(knode::health::format_rfc3339(s.current_time), "2024-01-02T03:05:06Z");
  health_.updated(ProxyHealth::kIPv4);
  EXPECT_TRUE(health_.healthy());
}

TEST_F(ProxyHealthTest, TheOldestQueuedUpdateCounts) {
  health_.updated(ProxyHealth::kIPv4);
  health_.queued_update(ProxyHealth::kIPv4);
  clock_.advance(40s);
  health_.queued_update(ProxyHealth::kIPv4);  // does not restart the wait
  clock_.advance(20s);
  EXPECT_FALSE(health_.healthy());
}

TEST_F(ProxyHealthTest, NoQueuedUpdateMeansHealthyHoweverLongAgoTheSync) {
  health_.updated(ProxyHealth::kIPv4);
  clock_.advance(24h);
  EXPECT_TRUE(health_.healthy());
}

TEST_F(ProxyHealthTest, EachFamilyIsJudgedOnItsOwn) {
  health_.updated(ProxyHealth::kIPv4);
  health_.updated(ProxyHealth::kIPv6);
  health_.queued_update(ProxyHealth::kIPv4);
  health_.queued_update(ProxyHealth::kIPv6);
  clock_.advance(61s);
  health_.updated(ProxyHealth::kIPv4);
  auto s = health_.state();
  EXPECT_FALSE(s.healthy);
  EXPECT_EQ(s.reason, "IPv6 rules not synced for 61s (limit 60s)");
}

TEST_F(ProxyHealthTest, HealthyStateCarriesTheLatestSync) {
  health_.updated(ProxyHealth::kIPv4);
  clock_.advance(3s);
  health_.updated(ProxyHealth::kIPv6);
  clock_.advance(3s);
  auto s = health_.state();
  EXPECT_TRUE(s.healthy);
  EXPECT_EQ(knode::health::format_rfc3339(s.last_updated), "2024-01-02T03:04:08Z");
  EXPECT_EQ(knode::health::format_rfc3339(s.current_time), "2024-01-02T03:04:11Z");
}

TEST_F(ProxyHealthTest, NodeEligibilityIsReportedSeparately) {
  health_.set_node_eligible(false);
  auto s = health_.state();
  EXPECT_TRUE(s.healthy);
  EXPECT_FALSE(s.node_eligible);
}

class EndpointsTest : public http::testing::ServerFixture {
 protected:
  void SetUp() override {
    handle("/proxy/healthz", healthz_handler(proxy_, &healthz_answers_));
    handle("/proxy/livez", livez_handler(proxy_, &livez_answers_));
    start();
  }

  std::optional<http::testing::RawResponse> get(const std::string& path) {
    RawClient c(port_);
    if (!c.send("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n")) return std::nullopt;
    return c.read_response();
  }

  FakeClock clock_;
  ProxyHealth proxy_{clock_, 60s};
  metrics::Registry metrics_;
  metrics::CounterFamily& healthz_answers_ =
      metrics_.counter_family("kubeproxy_healthz_total", "Cumulative proxy healthz HTTP status", {"code"});
  metrics::CounterFamily& livez_answers_ =
      metrics_.counter_family("kubeproxy_livez_total", "Cumulative proxy livez HTTP status", {"code"});
};

TEST_F(EndpointsTest, ProxyHealthzHealthyBodyLikeKubeProxy) {
  proxy_.updated(ProxyHealth::kIPv4);
  clock_.advance(1500ms);
  auto r = get("/proxy/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_EQ(r->header("x-content-type-options"), "nosniff");
  // Healthy: lastUpdated is reported as now, as kube-proxy does.
  EXPECT_EQ(r->body,
            "{\"lastUpdated\": \"2024-01-02T03:04:06.5Z\",\"currentTime\": "
            "\"2024-01-02T03:04:06.5Z\", \"nodeEligible\": true}");
}

TEST_F(EndpointsTest, ProxyHealthz503WhenQueuedUpdateIsLate) {
  proxy_.updated(ProxyHealth::kIPv4);
  proxy_.queued_update(ProxyHealth::kIPv4);
  clock_.advance(61s);
  auto r = get("/proxy/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_EQ(r->body,
            "{\"lastUpdated\": \"2024-01-02T03:04:05Z\",\"currentTime\": "
            "\"2024-01-02T03:05:06Z\", \"nodeEligible\": true}");
  auto l = get("/proxy/livez");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->status, 503);
  EXPECT_EQ(l->body,
            "{\"lastUpdated\": \"2024-01-02T03:04:05Z\",\"currentTime\": \"2024-01-02T03:05:06Z\"}");

  proxy_.updated(ProxyHealth::kIPv4);
  auto again = get("/proxy/healthz");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);

  EXPECT_EQ(healthz_answers_.with({"503"}).value(), 1);
  EXPECT_EQ(healthz_answers_.with({"200"}).value(), 1);
  EXPECT_EQ(livez_answers_.with({"503"}).value(), 1);
}

TEST_F(EndpointsTest, IneligibleNodeFailsHealthzButNotLivez) {
  proxy_.set_node_eligible(false);
  auto h = get("/proxy/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
  EXPECT_NE(h->body.find("\"nodeEligible\": false"), std::string::npos);
  auto l = get("/proxy/livez");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->status, 200);
  EXPECT_EQ(l->body.find("nodeEligible"), std::string::npos);
}

TEST_F(EndpointsTest, IneligibleNodeReportsTheLastSyncTime) {
  proxy_.updated(ProxyHealth::kIPv4);
  clock_.advance(10s);
  proxy_.set_node_eligible(false);
  auto h = get("/proxy/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
  EXPECT_EQ(h->body,
            "{\"lastUpdated\": \"2024-01-02T03:04:05Z\",\"currentTime\": "
            "\"2024-01-02T03:04:15Z\", \"nodeEligible\": false}");
}

}  // namespace
}  // namespace knode::proxy
