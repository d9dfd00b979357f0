#include "pod/backoff.h"

#include <gtest/gtest.h>

#include "fakes/fake_clock.h"

using namespace knode;
using namespace knode::kubelet;
using namespace std::chrono_literals;
using knode::testing::FakeClock;

TEST(Backoff, CrashLoopDelaysDoubleUpToFiveMinutes) {
  FakeClock clock;
  auto b = Backoff::container_restarts(clock);
  std::vector<int64_t> delays;
  for (int i = 0; i < 7; ++i) {
    auto exited = clock.steady_now();
    b.next("c", exited);
    delays.push_back(std::chrono::duration_cast<std::chrono::seconds>(b.get("c")).count());
    clock.advance(b.get("c"));  // restarted as soon as allowed, crashed at once
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{10, 20, 40, 80, 160, 300, 300}));
}

TEST(Backoff, InBackoffUntilTheDelayHasPassedSinceTheExit) {
  FakeClock clock;
  auto b = Backoff::container_restarts(clock);
  auto exited = clock.steady_now();
  EXPECT_FALSE(b.is_in_backoff("c", exited));  // unknown key
  b.next("c", exited);
  clock.advance(4s);
  EXPECT_TRUE(b.is_in_backoff("c", exited));
  EXPECT_EQ(b.remaining("c", exited), 6s);
  clock.advance(6s);
  EXPECT_FALSE(b.is_in_backoff("c", exited));
  EXPECT_EQ(b.remaining("c", exited), 0s);
}

TEST(Backoff, ContainerThatRanTenMinutesStartsOver) {
  FakeClock clock;
  auto b = Backoff::container_restarts(clock);
  for (int i = 0; i < 4; ++i) {
    b.next("c", clock.steady_now());
    clock.advance(b.get("c"));
  }
  ASSERT_EQ(b.get("c"), 80s);
  // Restarted now, then ran for more than ten minutes before exiting.
  clock.advance(601s);
  auto exited = clock.steady_now();
  EXPECT_FALSE(b.is_in_backoff("c", exited));
  b.next("c", exited);
  EXPECT_EQ(b.get("c"), 10s);
  // Exactly ten minutes is not enough.
  clock.advance(10s);
  b.next("c", clock.steady_now());
  clock.advance(600s);
  b.next("c", clock.steady_now());
  EXPECT_EQ(b.get("c"), 40s);
}

TEST(Backoff, ImagePullsAskSinceTheLastFailure) {
  FakeClock clock;
  auto b = Backoff::image_pulls(clock);
  b.next("uid_busybox", clock.steady_now());
  EXPECT_TRUE(b.is_in_backoff_since_update("uid_busybox", clock.steady_now()));
  clock.advance(9s);
  EXPECT_TRUE(b.is_in_backoff_since_update("uid_busybox", clock.steady_now()));
  clock.advance(1s);
  EXPECT_FALSE(b.is_in_backoff_since_update("uid_busybox", clock.steady_now()));
  b.next("uid_busybox", clock.steady_now());
  EXPECT_EQ(b.get("uid_busybox"), 20s);
  // Stale after twice the maximum.
  clock.advance(601s);
  b.next("uid_busybox", clock.steady_now());
  EXPECT_EQ(b.get("uid_busybox"), 10s);
}

TEST(Backoff, ResetForgetsTheKey) {
  FakeClock clock;
  auto b = Backoff::image_pulls(clock);
  b.next("k", clock.steady_now());
  b.next("k", clock.steady_now());
  b.reset("k");
  EXPECT_EQ(b.get("k"), 0s);
  EXPECT_FALSE(b.is_in_backoff("k", clock.steady_now()));
  b.next("k", clock.steady_now());
  EXPECT_EQ(b.get("k"), 10s);
}

TEST(Backoff, GcDropsOnlyStaleEntries) {
  FakeClock clock;
  Backoff b(clock, 1s, 5s);
  b.next("old", clock.steady_now());
  clock.advance(8s);
  b.next("new", clock.steady_now());
  clock.advance(3s);  // "old" last moved 11 s ago, beyond 2 * 5 s
  b.gc();
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(b.get("old"), 0s);
  EXPECT_EQ(b.get("new"), 1s);
}

TEST(Backoff, WallTimesBecomeSteadyTimes) {
  FakeClock clock;
  auto exited_wall = clock.system_now() - 3s;
  EXPECT_EQ(Backoff::to_steady(clock, exited_wall), clock.steady_now() - 3s);
}

TEST(Backoff, KeysAsTheKubeletBuildsThem) {
  api::Pod pod;
  pod.metadata.name = "web";
  pod.metadata.namespace_ = "shop";
  pod.metadata.uid = "u1";
  EXPECT_EQ(container_backoff_key(pod, "app", "5f3a"), "web_shop_u1_app_5f3a");
  EXPECT_EQ(image_backoff_key(pod, "busybox:1.36"), "u1_busybox:1.36");
}
