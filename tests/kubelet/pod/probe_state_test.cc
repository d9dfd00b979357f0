#include "pod/probe_state.h"

#include <gtest/gtest.h>

#include "fakes/fake_clock.h"

using namespace knode;
using namespace knode::kubelet;
using namespace std::chrono_literals;
using knode::testing::FakeClock;
using Step = ProbeWorker::Step;

namespace {

api::Probe probe(int32_t delay, int32_t period, int32_t success, int32_t failure) {
  api::Probe p;
  p.initial_delay_seconds = delay;
  p.period_seconds = period;
  p.success_threshold = success;
  p.failure_threshold = failure;
  return p;
}

ProbeSettings settings(ProbeType t, const api::Probe& p) {
  auto r = probe_settings(t, p);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : ProbeSettings{};
}

// A container that runs and has passed its startup probe (or has none).
ProbeTarget running(const std::string& id, Clock::SteadyTime since, bool started = true) {
  ProbeTarget t;
  t.container_id = id;
  t.running = true;
  t.started_at = since;
  t.started = started;
  return t;
}

}  // namespace

TEST(ProbeSettings, DefaultsForUnsetFields) {
  auto s = settings(ProbeType::kReadiness, api::Probe{});
  EXPECT_EQ(s.initial_delay, 0s);
  EXPECT_EQ(s.timeout, 1s);
  EXPECT_EQ(s.period, 10s);
  EXPECT_EQ(s.success_threshold, 1);
  EXPECT_EQ(s.failure_threshold, 3);
}

TEST(ProbeSettings, LivenessAndStartupMustSucceedOnce) {
  auto r = probe_settings(ProbeType::kLiveness, probe(0, 10, 2, 3));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "livenessProbe.successThreshold: 2: must be 1");
  EXPECT_FALSE(probe_settings(ProbeType::kStartup, probe(0, 10, 3, 3)).ok());
  EXPECT_TRUE(probe_settings(ProbeType::kReadiness, probe(0, 10, 3, 3)).ok());
  r = probe_settings(ProbeType::kReadiness, probe(0, -1, 1, 3));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "readinessProbe.periodSeconds: -1: must be greater than or equal to 0");
}

TEST(ProbeWorker, ReadinessIsFalseUntilTheFirstSuccess) {
  FakeClock clock;
  auto t0 = clock.steady_now();
  ProbeWorker w(ProbeType::kReadiness, settings(ProbeType::kReadiness, probe(0, 10, 1, 3)), t0);
  EXPECT_EQ(w.result(), ProbeResult::kFailure);
  EXPECT_EQ(w.tick(t0, {}, running("c1", t0)), Step::kProbe);
  EXPECT_EQ(w.result(), ProbeResult::kFailure);
  w.record(ProbeResult::kSuccess);
  EXPECT_EQ(w.result(), ProbeResult::kSuccess);
}

TEST(ProbeWorker, ThresholdsNeedRunsOfTheSameResult) {
  FakeClock clock;
  auto t0 = clock.steady_now();
  ProbeWorker w(ProbeType::kReadiness, settings(ProbeType::kReadiness, probe(0, 1, 2, 3)), t0);
  auto target = running("c1", t0);
  auto probe_once = [&](ProbeResult r) {
    ASSERT_EQ(w.tick(clock.steady_now(), {}, target), Step::kProbe);
    w.record(r);
    clock.advance(1s);
  };
  probe_once(ProbeResult::kSuccess);
  EXPECT_EQ(w.result(), ProbeResult::kFailure);  // one success of two
  probe_once(ProbeResult::kSuccess);
  EXPECT_EQ(w.result(), ProbeResult::kSuccess);
  probe_once(ProbeResult::kFailure);
  probe_once(ProbeResult::kFailure);
  probe_once(ProbeResult::kSuccess);  // breaks the run of failures
  probe_once(ProbeResult::kFailure);
  probe_once(ProbeResult::kFailure);
  EXPECT_EQ(w.result(), ProbeResult::kSuccess);
  probe_once(ProbeResult::kFailure);
  EXPECT_EQ(w.result(), ProbeResult::kFailure);
  EXPECT_FALSE(w.wants_restart());  // readiness never restarts a container
}

TEST(ProbeWorker, TicksEveryPeriodAndWaitsOutTheInitialDelay) {
  FakeClock clock;
  auto t0 = clock.steady_now();
  ProbeWorker w(ProbeType::kLiveness, settings(ProbeType::kLiveness, probe(15, 10, 1, 3)), t0);
  auto target = running("c1", t0);
  EXPECT_TRUE(w.due(t0));
  EXPECT_EQ(w.tick(t0, {}, target), Step::kIdle);  // 0 s < 15 s
  EXPECT_EQ(w.next_tick(), t0 + 10s);
  EXPECT_FALSE(w.due(t0 + 9s));
  EXPECT_EQ(w.tick(t0 + 9s, {}, target), Step::kIdle);
  EXPECT_EQ(w.tick(t0 + 10s, {}, target), Step::kIdle);  // 10 s < 15 s
  EXPECT_EQ(w.tick(t0 + 20s, {}, target), Step::kProbe);
  w.record(ProbeResult::kSuccess);
  // A late tick counts once; the schedule stays on its grid.
  EXPECT_EQ(w.tick(t0 + 47s, {}, target), Step::kProbe);
  w.record(ProbeResult::kSuccess);
  EXPECT_EQ(w.next_tick(), t0 + 50s);
}

TEST(ProbeWorker, TriggerRunsAtOnceWithoutMovingTheSchedule) {
  FakeClock clock;
  auto t0 = clock.steady_now();
  ProbeWorker w(ProbeType::kReadiness, settings(ProbeType::kReadiness, probe(0, 10, 1, 3)), t0);
  auto target = running("c1", t0);
  ASSERT_EQ(w.tick(t0, {}, target), Step::kProbe);
  w.record(ProbeResult::kFailure);
  w.trigger();
  EXPECT_TRUE(w.due(t0 + 2s));
  EXPECT_EQ(w.tick(t0 + 2s, {}, target), Step::kProbe);
  w.record(ProbeResult::kSuccess);
  EXPECT_FALSE(w.due(t0 + 3s));
  EXPECT_EQ(w.next_tick(), t0 + 10s);
}

TEST(ProbeWorker, StartupGatesLivenessAndReadiness) {
  FakeClock clock;
  auto t0 = clock.steady_now();
  ProbeWorker startup(ProbeType::kStartup, settings(ProbeType::kStartup, probe(0, 5, 1, 30)), t0);
  ProbeWorker liveness(ProbeType::kLiveness, settings(ProbeType::kLiveness, probe(0, 5, 1, 3)), t0);
  ProbeWorker readiness(ProbeType::kReadiness, settings(ProbeType::kReadiness, probe(0, 5, 1, 3)),
                        t0);
  auto not_started = running("c1", t0, false);
  EXPECT_EQ(startup.result(), ProbeResult::kUnknown);
  EXPECT_EQ(liveness.tick(t0, {}, not_started), Step::kIdle);
  EXPECT_EQ(readiness.tick(t0, {}, not_started), Step::kIdle);
  ASSERT_EQ(startup.tick(t0, {}, not_started), Step::kProbe);
  startup.record(ProbeResult::kSuccess);
  EXPECT_EQ(probed_state("c1", true, &startup, &readiness).started, true);
  auto started = running("c1", t0, true);
  EXPECT_EQ(startup.tick(t0 + 5s, {}, started), Step::kIdle);  // done until the next container
  EXPECT_EQ(liveness.tick(t0 + 5s, {}, started), Step::kProbe);
  EXPECT_EQ(readiness.tick(t0 + 5s, {}, started), Step::kProbe);
}

TEST(ProbeWorker, LivenessFailureAsksForRestartThenWaitsForTheNewContainer) {
  FakeClock clock;
  auto t0 = clock.steady_now();
  ProbeWorker w(ProbeType::kLiveness, settings(ProbeType::kLiveness, probe(0, 10, 1, 3)), t0);
  auto c1 = running("containerd://c1", t0);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(w.tick(t0 + i * 10s, {}, c1), Step::kProbe);
    EXPECT_EQ(w.result(), ProbeResult::kSuccess);  // alive until the third failure
    w.record(ProbeResult::kFailure);
  }
  EXPECT_EQ(w.result(), ProbeResult::kFailure);
  EXPECT_TRUE(w.wants_restart());
  EXPECT_EQ(w.tick(t0 + 30s, {}, c1), Step::kIdle);  // on hold
  auto c2 = running("containerd://c2", t0 + 35s);
  EXPECT_EQ(w.tick(t0 + 40s, {}, c2), Step::kProbe);
  EXPECT_EQ(w.result(), ProbeResult::kSuccess);
  EXPECT_FALSE(w.wants_restart());
  EXPECT_EQ(w.container_id(), "containerd://c2");
}

TEST(ProbeWorker, NewContainerResetsReadiness) {
  FakeClock clock;
  auto t0 = clock.steady_now();
  ProbeWorker w(ProbeType::kReadiness, settings(ProbeType::kReadiness, probe(5, 10, 1, 3)), t0);
  ASSERT_EQ(w.tick(t0 + 10s, {}, running("c1", t0)), Step::kProbe);
  w.record(ProbeResult::kSuccess);
  ASSERT_EQ(w.result(), ProbeResult::kSuccess);
  // The container restarted at 18 s; its probe waits out the delay again.
  EXPECT_EQ(w.tick(t0 + 20s, {}, running("c2", t0 + 18s)), Step::kIdle);
  EXPECT_EQ(w.result(), ProbeResult::kFailure);
  EXPECT_FALSE(probed_state("c2", true, nullptr, &w).ready);
}

TEST(ProbeWorker, StoppedContainerFailsAndStopsTheWorkerWhenItWillNotRestart) {
  FakeClock clock;
  auto t0 = clock.steady_now();
  ProbeWorker w(ProbeType::kReadiness, settings(ProbeType::kReadiness, probe(0, 10, 1, 3)), t0);
  ASSERT_EQ(w.tick(t0, {}, running("c1", t0)), Step::kProbe);
  w.record(ProbeResult::kSuccess);
  ProbeTarget exited;
  exited.container_id = "c1";
  exited.terminated = true;
  EXPECT_EQ(w.tick(t0 + 10s, {}, exited), Step::kIdle);  // restartPolicy Always: it comes back
  EXPECT_EQ(w.result(), ProbeResult::kFailure);
  ProbePod never;
  never.restart_policy = "Never";
  EXPECT_EQ(w.tick(t0 + 20s, never, exited), Step::kStop);
  ProbePod done;
  done.terminal = true;
  EXPECT_EQ(w.tick(t0 + 30s, done, running("c1", t0)), Step::kStop);
}

TEST(ProbeWorker, NotCreatedYetWaits) {
  FakeClock clock;
  auto t0 = clock.steady_now();
  ProbeWorker w(ProbeType::kLiveness, settings(ProbeType::kLiveness, api::Probe{}), t0);
  EXPECT_EQ(w.tick(t0, {}, ProbeTarget{}), Step::kIdle);
  EXPECT_EQ(w.container_id(), "");
}

TEST(ProbeWorker, DeletionStopsLivenessQuietlyButNotReadiness) {
  FakeClock clock;
  auto t0 = clock.steady_now();
  ProbePod deleting;
  deleting.deleting = true;
  ProbeWorker liveness(ProbeType::kLiveness, settings(ProbeType::kLiveness, api::Probe{}), t0);
  EXPECT_EQ(liveness.tick(t0, deleting, running("c1", t0)), Step::kStop);
  EXPECT_EQ(liveness.result(), ProbeResult::kSuccess);
  ProbeWorker readiness(ProbeType::kReadiness, settings(ProbeType::kReadiness, api::Probe{}), t0);
  EXPECT_EQ(readiness.tick(t0, deleting, running("c1", t0)), Step::kProbe);
}

TEST(ProbedState, StartedAndReadyFromTheProbes) {
  FakeClock clock;
  auto t0 = clock.steady_now();
  // No probes: started and ready once running.
  EXPECT_TRUE(probed_state("c1", true, nullptr, nullptr).ready);
  EXPECT_FALSE(probed_state("c1", false, nullptr, nullptr).started);
  ProbeWorker startup(ProbeType::kStartup, settings(ProbeType::kStartup, api::Probe{}), t0);
  ProbeWorker readiness(ProbeType::kReadiness, settings(ProbeType::kReadiness, api::Probe{}), t0);
  // Workers that have not seen this container yet.
  auto s = probed_state("c1", true, &startup, &readiness);
  EXPECT_FALSE(s.started);
  EXPECT_FALSE(s.ready);
  ASSERT_EQ(startup.tick(t0, {}, running("c1", t0, false)), Step::kProbe);
  startup.record(ProbeResult::kSuccess);
  s = probed_state("c1", true, &startup, &readiness);
  EXPECT_TRUE(s.started);
  EXPECT_FALSE(s.ready);  // readiness has not passed
  ASSERT_EQ(readiness.tick(t0, {}, running("c1", t0, true)), Step::kProbe);
  readiness.record(ProbeResult::kSuccess);
  EXPECT_TRUE(probed_state("c1", true, &startup, &readiness).ready);
  EXPECT_FALSE(
      probed_state("c2", true, &startup, &readiness).started);  // results are per container
}
