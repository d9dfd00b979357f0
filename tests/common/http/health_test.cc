#include "knode/health.h"

#include <gtest/gtest.h>

#include "fakes/fake_clock.h"

namespace knode::health {
namespace {

using namespace std::chrono_literals;
using knode::testing::FakeClock;

TEST(HealthRegistry, HealthyWhenNothingReported) {
  FakeClock clock;
  HealthRegistry r(clock);
  EXPECT_TRUE(r.healthy());
  EXPECT_EQ(r.unhealthy_reason(), "");
}

TEST(HealthRegistry, UnhealthyComponentGivesItsReason) {
  FakeClock clock;
  HealthRegistry r(clock);
  r.set_healthy("proxy");
  r.set_unhealthy("kubelet", "initial sync not done");
  EXPECT_FALSE(r.healthy());
  EXPECT_EQ(r.unhealthy_reason(), "kubelet: initial sync not done");
  r.set_unhealthy("proxy", "iptables-restore failed");
  EXPECT_EQ(r.unhealthy_reason(), "kubelet: initial sync not done; proxy: iptables-restore failed");
  r.set_healthy("kubelet");
  r.set_healthy("proxy");
  EXPECT_TRUE(r.healthy());
}

TEST(HealthRegistry, AnExternalDependencyCountsForHealthzButNotForKnodeItself) {
  FakeClock clock;
  HealthRegistry r(clock);
  r.set_external("container runtime");
  r.set_healthy("kubelet");
  r.set_unhealthy("container runtime", "PLEG is not healthy");
  EXPECT_FALSE(r.healthy());
  EXPECT_TRUE(r.healthy(HealthRegistry::Scope::kSelf));
  EXPECT_EQ(r.unhealthy_reason(), "container runtime: PLEG is not healthy");
  r.set_unhealthy("kubelet", "stuck");
  EXPECT_FALSE(r.healthy(HealthRegistry::Scope::kSelf));
  auto c = r.components();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_TRUE(c[0].external);
  EXPECT_FALSE(c[1].external);
}

TEST(HealthRegistry, RecordsWhenEachComponentLastReported) {
  FakeClock clock;
  HealthRegistry r(clock);
  r.set_healthy("kubelet");
  clock.advance(5s);
  r.set_unhealthy("proxy", "x");
  auto c = r.components();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].component, "kubelet");
  EXPECT_EQ(format_rfc3339(c[0].last_updated), "2024-01-02T03:04:05Z");
  EXPECT_EQ(c[1].component, "proxy");
  EXPECT_EQ(format_rfc3339(c[1].last_updated), "2024-01-02T03:04:10Z");
  EXPECT_FALSE(c[1].healthy);
}

TEST(HealthRegistry, ComponentThatStopsReportingTurnsUnhealthy) {
  FakeClock clock;
  HealthRegistry r(clock);
  r.set_max_age("kubelet", 60s);
  EXPECT_TRUE(r.healthy());  // never reported: not counted yet
  r.set_healthy("kubelet");
  clock.advance(60s);
  EXPECT_TRUE(r.healthy());
  clock.advance(30s);
  EXPECT_FALSE(r.healthy());
  EXPECT_EQ(r.unhealthy_reason(), "kubelet: no report for 90s (limit 60s)");
  r.set_healthy("kubelet");
  EXPECT_TRUE(r.healthy());
}

TEST(HealthRegistry, WallClockStepsDoNotAffectStaleness) {
  FakeClock clock;
  HealthRegistry r(clock);
  r.set_max_age("kubelet", 60s);
  r.set_healthy("kubelet");
  clock.set_system_time(Clock::SystemTime(std::chrono::seconds(2000000000)));
  EXPECT_TRUE(r.healthy());
}

TEST(Rfc3339, TrimsTheFraction) {
  using std::chrono::nanoseconds;
  Clock::SystemTime t(std::chrono::seconds(1704164645));
  EXPECT_EQ(format_rfc3339(t), "2024-01-02T03:04:05Z");
  EXPECT_EQ(format_rfc3339(t + std::chrono::milliseconds(500)), "2024-01-02T03:04:05.5Z");
  EXPECT_EQ(format_rfc3339(t + std::chrono::microseconds(1)), "2024-01-02T03:04:05.000001Z");
  EXPECT_EQ(format_rfc3339(Clock::SystemTime{}), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace knode::health
