#include "cluster/event_writer.h"

#include <gtest/gtest.h>

namespace knode::kubelet {
namespace {

api::Time at(int64_t seconds) { return api::Time::FromUnixNanos(seconds * 1000000000); }

const EventTarget kPod{"default", "kubia-1", "uid-1", "spec.containers{kubia}"};
const KubeletEvent kBackOff{kEventWarning, "BackOff", "Back-off restarting failed container kubia"};

TEST(EventCorrelatorTest, ARepeatWithinTenMinutesCountsOnTheSameEvent) {
  EventCorrelator c;
  auto first = c.observe(kPod, kBackOff, at(1000));
  EXPECT_EQ(first.kind, EventCorrelator::Decision::kCreate);
  EXPECT_EQ(first.count, 1);
  EXPECT_TRUE(first.name.starts_with("kubia-1."));
  auto again = c.observe(kPod, kBackOff, at(1030));
  EXPECT_EQ(again.kind, EventCorrelator::Decision::kUpdate);
  EXPECT_EQ(again.name, first.name);
  EXPECT_EQ(again.count, 2);
  EXPECT_EQ(again.first, at(1000));
  EXPECT_EQ(again.last, at(1030));
  // Another message or field is another event.
  auto other = c.observe(kPod, KubeletEvent{kEventNormal, "Started", "Started container kubia"}, at(1031));
  EXPECT_EQ(other.kind, EventCorrelator::Decision::kCreate);
  EXPECT_NE(other.name, first.name);
  // Ten minutes after the last one: a new event.
  auto later = c.observe(kPod, kBackOff, at(1030 + 601));
  EXPECT_EQ(later.kind, EventCorrelator::Decision::kCreate);
  EXPECT_EQ(later.count, 1);
}

TEST(EventCorrelatorTest, TwentyFiveAtOnceThenOneEveryFiveMinutesPerObject) {
  EventCorrelator c;
  int kept = 0;
  for (int i = 0; i < 40; ++i) {
    kept += c.observe(kPod, KubeletEvent{kEventWarning, "Unhealthy", "try " + std::to_string(i)}, at(2000))
                .kind != EventCorrelator::Decision::kDrop;
  }
  EXPECT_EQ(kept, 25);
  EXPECT_EQ(c.observe(kPod, kBackOff, at(2000 + 299)).kind, EventCorrelator::Decision::kDrop);
  EXPECT_NE(c.observe(kPod, kBackOff, at(2000 + 301)).kind, EventCorrelator::Decision::kDrop);
  // Another pod has its own budget.
  EXPECT_NE(c.observe(EventTarget{"default", "kubia-2", "uid-2", ""}, kBackOff, at(2000)).kind,
            EventCorrelator::Decision::kDrop);
}

}  // namespace
}  // namespace knode::kubelet
