#include <gtest/gtest.h>

#include "sync_scheduler.h"

using knode::proxy::SyncScheduler;
using namespace std::chrono_literals;

namespace {
SyncScheduler::TimePoint t0 = SyncScheduler::TimePoint() + 1000s;
}

TEST(SyncScheduler, NothingBeforeReadyThenFullSync) {
  SyncScheduler s(1s, 30s, t0);
  s.changed();
  EXPECT_FALSE(s.decide(t0).run);
  s.ready();
  auto d = s.decide(t0);
  EXPECT_TRUE(d.run);
  EXPECT_TRUE(d.full);
}

TEST(SyncScheduler, BurstsCoalesceWithinMinInterval) {
  SyncScheduler s(1s, 30s, t0);
  s.ready();
  s.started(t0, true);
  s.finished(t0 + 10ms, true);
  for (int i = 0; i < 5; ++i) s.changed();
  auto d = s.decide(t0 + 200ms);
  EXPECT_FALSE(d.run);
  EXPECT_EQ(d.wake_at, t0 + 1s);
  d = s.decide(t0 + 1s);
  EXPECT_TRUE(d.run);
  EXPECT_FALSE(d.full);
  s.started(t0 + 1s, false);
  s.finished(t0 + 1s + 5ms, true);
  EXPECT_FALSE(s.decide(t0 + 2s).run);  // nothing changed since
}

TEST(SyncScheduler, NoOverlapWhileInFlight) {
  SyncScheduler s(0s, 30s, t0);
  s.ready();
  s.started(t0, true);
  s.changed();
  EXPECT_FALSE(s.decide(t0 + 5s).run);
  s.finished(t0 + 5s, true);
  EXPECT_TRUE(s.decide(t0 + 5s).run);
}

TEST(SyncScheduler, PeriodicFullResync) {
  SyncScheduler s(1s, 30s, t0);
  s.ready();
  s.started(t0, true);
  s.finished(t0, true);
  auto d = s.decide(t0 + 10s);
  EXPECT_FALSE(d.run);
  EXPECT_EQ(d.wake_at, t0 + 30s);
  d = s.decide(t0 + 30s);
  EXPECT_TRUE(d.run);
  EXPECT_TRUE(d.full);
  EXPECT_TRUE(d.periodic);
}

TEST(SyncScheduler, OnlyTheIntervalsResyncIsPeriodic) {
  SyncScheduler s(1s, 30s, t0);
  s.ready();
  auto d = s.decide(t0);
  EXPECT_TRUE(d.full);
  EXPECT_FALSE(d.periodic);  // the first sync
  s.started(t0, true);
  s.finished(t0, true);
  s.changed();
  d = s.decide(t0 + 2s);
  EXPECT_FALSE(d.full);
  EXPECT_FALSE(d.periodic);
  s.started(t0 + 2s, false);
  s.finished(t0 + 2s, false);  // failed: the retry is full, and not periodic
  d = s.decide(t0 + 3s);
  EXPECT_TRUE(d.full);
  EXPECT_FALSE(d.periodic);
}

TEST(SyncScheduler, APeriodicResyncWithNothingNewDoesNotDelayTheNextChange) {
  SyncScheduler s(1s, 30s, t0);
  s.ready();
  s.started(t0, true);
  s.finished(t0 + 10ms, true);
  ASSERT_TRUE(s.decide(t0 + 30s).run);  // the periodic resync
  s.started(t0 + 30s, true);
  s.finished(t0 + 30s + 20ms, true);
  s.changed();
  // A change 100 ms later runs at once, not a min interval after the resync.
  auto d = s.decide(t0 + 30s + 100ms);
  EXPECT_TRUE(d.run);
  EXPECT_FALSE(d.full);
  s.started(t0 + 30s + 100ms, false);
  s.finished(t0 + 30s + 150ms, true);
  // And that one counts: the next change waits for the min interval.
  s.changed();
  d = s.decide(t0 + 30s + 200ms);
  EXPECT_FALSE(d.run);
  EXPECT_EQ(d.wake_at, t0 + 31s + 100ms);
}

TEST(SyncScheduler, FailureRetriesAsFullAfterMinInterval) {
  SyncScheduler s(1s, 30s, t0);
  s.ready();
  s.started(t0, true);
  s.finished(t0, true);
  s.changed();
  s.started(t0 + 2s, false);
  s.finished(t0 + 2s, false);
  EXPECT_FALSE(s.decide(t0 + 2500ms).run);
  auto d = s.decide(t0 + 3s);
  EXPECT_TRUE(d.run);
  EXPECT_TRUE(d.full);
}

// A first sync the kernel refuses (a missing extension, say) is retried, but not in a
// tight loop: not before 1 s, even with a min interval of 0 (found in the VM, where a
// refused first sync was retried every 15 ms, flooding the log and burning a core).
TEST(SyncScheduler, AFailedFirstSyncRetriesAfterAPause) {
  SyncScheduler s(0s, 30s, t0);
  s.ready();
  auto d = s.decide(t0);
  ASSERT_TRUE(d.run);
  s.started(t0, true);
  s.finished(t0 + 10ms, false);
  d = s.decide(t0 + 20ms);
  EXPECT_FALSE(d.run);
  EXPECT_EQ(d.wake_at, t0 + 10ms + 1s);
  d = s.decide(t0 + 10ms + 1s);
  EXPECT_TRUE(d.run);
  EXPECT_TRUE(d.full);
}

// The nftables mode's follow-up (deleting flushed chains) runs at once and does not push
// the next change back by a min interval.
TEST(SyncScheduler, HousekeepingRunsAtOnceAndDoesNotDelayTheNextChange) {
  SyncScheduler s(1s, 3600s, t0);
  s.ready();
  s.started(t0, true);
  s.finished(t0 + 10ms, true);
  s.housekeeping();
  auto d = s.decide(t0 + 100ms);  // within the min interval: housekeeping still runs
  ASSERT_TRUE(d.run);
  EXPECT_FALSE(d.full);
  s.started(t0 + 100ms, false);
  s.finished(t0 + 150ms, true);
  EXPECT_FALSE(s.decide(t0 + 200ms).run);  // nothing left to do
  s.changed();
  d = s.decide(t0 + 1s);  // a min interval after the last real sync, not after housekeeping
  EXPECT_TRUE(d.run);
}

TEST(SyncScheduler, HousekeepingCarriesPendingChangesAndThenCounts) {
  SyncScheduler s(1s, 3600s, t0);
  s.ready();
  s.started(t0, true);
  s.finished(t0 + 10ms, true);
  s.changed();
  EXPECT_FALSE(s.decide(t0 + 100ms).run);  // a change alone waits for the min interval
  s.housekeeping();
  ASSERT_TRUE(s.decide(t0 + 100ms).run);   // housekeeping takes it along
  s.started(t0 + 100ms, false);
  s.finished(t0 + 150ms, true);
  s.changed();
  auto d = s.decide(t0 + 500ms);  // that sync carried a change: it counts
  EXPECT_FALSE(d.run);
  EXPECT_EQ(d.wake_at, t0 + 1100ms);
}

TEST(SyncScheduler, HousekeepingWaitsForTheSyncInFlight) {
  SyncScheduler s(1s, 3600s, t0);
  s.ready();
  s.started(t0, true);
  s.housekeeping();
  EXPECT_FALSE(s.decide(t0 + 10ms).run);
  s.finished(t0 + 20ms, true);
  EXPECT_TRUE(s.decide(t0 + 20ms).run);
}
