// What one sync of a pod decides (computePodActions), from hand-made runtime states.
#include "sync_plan.h"

#include <gtest/gtest.h>

#include <list>

#include "labels.h"

namespace knode::kubelet {
namespace {

using runtime::ContainerState;

api::Container ctr(const std::string& name) {
  api::Container c;
  c.name = name;
  c.image = "busybox";
  return c;
}

api::Pod pod(std::vector<api::Container> containers, std::string restart = "Always") {
  api::Pod p;
  p.metadata.name = "web";
  p.metadata.namespace_ = "default";
  p.metadata.uid = "uid-1";
  p.spec.containers = std::move(containers);
  p.spec.restart_policy = std::move(restart);
  return p;
}

class State {
 public:
  State& sandbox(uint32_t attempt, bool ready) {
    runtime::PodSandbox sb;
    sb.id = "sb" + std::to_string(attempt);
    sb.metadata.attempt = attempt;
    sb.state = ready ? runtime::SandboxState::kReady : runtime::SandboxState::kNotReady;
    st_.sandboxes.insert(st_.sandboxes.begin(), sb);
    runtime::PodSandboxStatus s;
    s.id = sb.id;
    s.state = sb.state;
    s.ip = "10.88.0.2";
    st_.sandbox = s;
    return *this;
  }
  // A container of the newest sandbox; newer calls are newer containers.
  State& container(const std::string& name, uint32_t attempt, ContainerState state, int exit_code = 0,
                   const std::string& hash = "h") {
    ContainerRecord r;
    r.container.id = name + "-" + std::to_string(attempt);
    r.container.pod_sandbox_id = st_.sandboxes.front().id;
    r.container.metadata = {name, attempt};
    r.container.created_at = ++clock_;
    r.status.id = r.container.id;
    r.status.state = state;
    r.status.exit_code = exit_code;
    r.status.annotations[kContainerHashAnnotation] = hash;
    st_.containers.insert(st_.containers.begin(), r);
    return *this;
  }
  const PodRuntimeState& get() const { return st_; }

 private:
  PodRuntimeState st_;
  int64_t clock_ = 0;
};

SyncInputs inputs() {
  SyncInputs in;
  in.hash = [](const api::Container&) { return std::string("h"); };
  in.backoff = [](const api::Container&, const runtime::ContainerStatus&) -> std::optional<std::chrono::seconds> {
    return std::nullopt;
  };
  return in;
}

// A SyncPlan points into the pod it was planned for (its spec fields): the pods the tests
// plan for outlive the plans.
const api::Pod& keep(api::Pod p) {
  static std::list<api::Pod> pods;
  return pods.emplace_back(std::move(p));
}

std::vector<std::string> started(const SyncPlan& p) {
  std::vector<std::string> out;
  for (const auto& s : p.start) out.push_back(s.spec->name + "#" + std::to_string(s.attempt));
  return out;
}

TEST(SyncPlan, ANewPodGetsASandboxAndAllItsContainers) {
  auto p = pod({ctr("a"), ctr("b")});
  auto plan = plan_sync(p, State().get(), inputs());
  EXPECT_TRUE(plan.create_sandbox);
  EXPECT_EQ(plan.sandbox_attempt, 0u);
  EXPECT_FALSE(plan.kill_pod);
  EXPECT_EQ(started(plan), (std::vector<std::string>{"a#0", "b#0"}));
}

TEST(SyncPlan, ARunningPodNeedsNothing) {
  auto p = pod({ctr("a")});
  auto plan = plan_sync(p, State().sandbox(0, true).container("a", 0, ContainerState::kRunning).get(), inputs());
  EXPECT_FALSE(plan.create_sandbox);
  EXPECT_TRUE(plan.start.empty());
  EXPECT_TRUE(plan.kill.empty());
  EXPECT_FALSE(plan.pod_finished);
}

TEST(SyncPlan, ADeadSandboxIsReplacedWithTheNextAttemptAndItsContainersStopped) {
  auto p = pod({ctr("a")});
  auto plan = plan_sync(p, State().sandbox(2, false).container("a", 0, ContainerState::kRunning).get(), inputs());
  EXPECT_TRUE(plan.create_sandbox);
  EXPECT_EQ(plan.sandbox_attempt, 3u);
  EXPECT_TRUE(plan.kill_pod);
  EXPECT_EQ(started(plan), (std::vector<std::string>{"a#0"}));
}

TEST(SyncPlan, AnExitedContainerRestartsWithTheNextAttemptUnlessInBackOff) {
  auto p = pod({ctr("a")});
  auto st = State().sandbox(0, true).container("a", 0, ContainerState::kExited, 1).container("a", 1,
                                                                                           ContainerState::kExited, 2);
  auto plan = plan_sync(p, st.get(), inputs());
  EXPECT_EQ(started(plan), (std::vector<std::string>{"a#2"}));
  auto in = inputs();
  in.backoff = [](const api::Container&, const runtime::ContainerStatus&) -> std::optional<std::chrono::seconds> {
    return std::chrono::seconds(20);
  };
  plan = plan_sync(p, st.get(), in);
  EXPECT_TRUE(plan.start.empty());
  ASSERT_EQ(plan.waiting.count("a"), 1u);
  EXPECT_EQ(plan.waiting["a"].reason, "CrashLoopBackOff");
  EXPECT_EQ(plan.waiting["a"].message, "back-off 20s restarting failed container=a pod=web_default(uid-1)");
}

TEST(SyncPlan, RestartPolicies) {
  auto done = [](int code) { return State().sandbox(0, true).container("a", 0, ContainerState::kExited, code); };
  // OnFailure: a success is final, a failure restarts.
  auto on_failure = pod({ctr("a")}, "OnFailure");
  auto plan = plan_sync(on_failure, done(0).get(), inputs());
  EXPECT_TRUE(plan.start.empty());
  EXPECT_TRUE(plan.pod_finished);
  EXPECT_TRUE(plan.kill_pod);  // the sandbox goes
  EXPECT_EQ(started(plan_sync(on_failure, done(1).get(), inputs())), (std::vector<std::string>{"a#1"}));
  // Never: nothing restarts.
  auto never = pod({ctr("a")}, "Never");
  plan = plan_sync(never, done(1).get(), inputs());
  EXPECT_TRUE(plan.start.empty());
  EXPECT_TRUE(plan.pod_finished);
  // Always: both restart.
  EXPECT_EQ(started(plan_sync(keep(pod({ctr("a")})), done(0).get(), inputs())), (std::vector<std::string>{"a#1"}));
  // A finished Never pod whose sandbox died stays finished: no new sandbox.
  plan = plan_sync(never, State().sandbox(0, false).container("a", 0, ContainerState::kExited, 0).get(), inputs());
  EXPECT_FALSE(plan.create_sandbox);
  EXPECT_TRUE(plan.pod_finished);
}

TEST(SyncPlan, InitContainersRunInOrderAndGateTheApp) {
  auto p = pod({ctr("app")});
  p.spec.init_containers = {ctr("one"), ctr("two")};
  // Fresh: only the first init container.
  EXPECT_EQ(started(plan_sync(p, State().get(), inputs())), (std::vector<std::string>{"one#0"}));
  // One running: wait.
  auto plan = plan_sync(p, State().sandbox(0, true).container("one", 0, ContainerState::kRunning).get(), inputs());
  EXPECT_TRUE(plan.start.empty());
  EXPECT_FALSE(plan.initialized);
  // One done: two.
  plan = plan_sync(p, State().sandbox(0, true).container("one", 0, ContainerState::kExited, 0).get(), inputs());
  EXPECT_EQ(started(plan), (std::vector<std::string>{"two#0"}));
  // Both done: the app.
  plan = plan_sync(p,
                   State().sandbox(0, true).container("one", 0, ContainerState::kExited, 0)
                       .container("two", 0, ContainerState::kExited, 0).get(),
                   inputs());
  EXPECT_TRUE(plan.initialized);
  EXPECT_EQ(started(plan), (std::vector<std::string>{"app#0"}));
}

TEST(SyncPlan, AFailingInitContainerRetriesOrFailsThePod) {
  auto st = State().sandbox(0, true).container("one", 0, ContainerState::kExited, 3);
  auto always = pod({ctr("app")});
  always.spec.init_containers = {ctr("one")};
  EXPECT_EQ(started(plan_sync(always, st.get(), inputs())), (std::vector<std::string>{"one#1"}));
  auto never = always;
  never.spec.restart_policy = "Never";
  auto plan = plan_sync(never, st.get(), inputs());
  EXPECT_TRUE(plan.start.empty());
  EXPECT_TRUE(plan.pod_finished);
  EXPECT_FALSE(plan.initialized);
}

TEST(SyncPlan, SidecarsStartFirstAndStay) {
  auto p = pod({ctr("app")});
  auto side = ctr("proxy");
  side.restart_policy = "Always";
  p.spec.init_containers = {side, ctr("setup")};
  EXPECT_EQ(started(plan_sync(p, State().get(), inputs())), (std::vector<std::string>{"proxy#0"}));
  // The sidecar runs and counts as started: the regular init container goes next.
  auto st = State().sandbox(0, true).container("proxy", 0, ContainerState::kRunning);
  auto in = inputs();
  in.started = {"proxy-0"};
  EXPECT_EQ(started(plan_sync(p, st.get(), in)), (std::vector<std::string>{"setup#0"}));
  // Not started yet (its startup probe): everything after it waits.
  EXPECT_TRUE(plan_sync(p, st.get(), inputs()).start.empty());
}

TEST(SyncPlan, AFailedProbeOrAChangedSpecRestartsARunningContainer) {
  auto p = pod({ctr("a")});
  auto st = State().sandbox(0, true).container("a", 0, ContainerState::kRunning);
  auto in = inputs();
  in.probe_failed = {"a-0"};
  auto plan = plan_sync(p, st.get(), in);
  ASSERT_EQ(plan.kill.size(), 1u);
  EXPECT_EQ(plan.kill[0].id, "a-0");
  EXPECT_EQ(started(plan), (std::vector<std::string>{"a#1"}));
  in = inputs();
  in.hash = [](const api::Container&) { return std::string("new"); };
  plan = plan_sync(p, st.get(), in);
  ASSERT_EQ(plan.kill.size(), 1u);
  EXPECT_EQ(plan.kill[0].reason, "its spec changed");
  // restartPolicy Never: a failed liveness probe kills it for good.
  auto never = pod({ctr("a")}, "Never");
  in = inputs();
  in.probe_failed = {"a-0"};
  plan = plan_sync(never, st.get(), in);
  EXPECT_EQ(plan.kill.size(), 1u);
  EXPECT_TRUE(plan.start.empty());
}

TEST(SyncPlan, TerminatingKillsThePodAndStartsNothing) {
  auto in = inputs();
  in.terminating = true;
  auto plan = plan_sync(keep(pod({ctr("a")})), State().sandbox(0, true).container("a", 0, ContainerState::kRunning).get(),
                        in);
  EXPECT_TRUE(plan.kill_pod);
  EXPECT_FALSE(plan.create_sandbox);
  EXPECT_TRUE(plan.start.empty());
}

// In-place resize: a running container whose spec differs only in resources is resized
// where it runs (by value: "1" is "1000m"), or restarted when the changed resource's
// resizePolicy says RestartContainer; other spec changes still replace it.
TEST(SyncPlan, AResourceChangeResizesInPlaceOrRestartsAsThePolicySays) {
  auto q = [](const char* text) { return *api::Quantity::Parse(text); };
  api::ResourceRequirements had;
  had.requests = {{"cpu", q("100m")}, {"memory", q("64Mi")}};
  had.limits = {{"cpu", q("1")}, {"memory", q("128Mi")}};
  State st;
  st.sandbox(0, true).container("app", 0, ContainerState::kRunning);
  auto with = [had](std::string bare) {
    auto in = inputs();
    in.hash = [](const api::Container&) { return std::string("full-hash-of-new-spec"); };
    in.hash_without_resources = [bare](const api::Container&) { return bare; };
    in.applied = [had](const ContainerRecord&) { return std::optional<api::ResourceRequirements>(had); };
    return in;
  };
  PodRuntimeState state = st.get();
  state.containers[0].status.annotations[kContainerHashWithoutResourcesAnnotation] = "bare";

  api::Container c = ctr("app");
  c.resources = had;
  c.resources.limits["cpu"] = q("1000m");  // equivalent: nothing to do
  auto plan = plan_sync(keep(pod({c})), state, with("bare"));
  EXPECT_TRUE(plan.resize.empty());
  EXPECT_TRUE(plan.kill.empty());
  EXPECT_TRUE(plan.start.empty());

  c.resources.limits["cpu"] = q("2");
  plan = plan_sync(keep(pod({c})), state, with("bare"));
  ASSERT_EQ(plan.resize.size(), 1u);
  EXPECT_EQ(plan.resize[0].id, "app-0");
  EXPECT_TRUE(plan.kill.empty()) << "a resize is not a new container, though the full hash changed";

  c.resize_policy = {{"memory", "RestartContainer"}};
  plan = plan_sync(keep(pod({c})), state, with("bare"));
  EXPECT_EQ(plan.resize.size(), 1u) << "cpu changed, and cpu is NotRequired";
  c.resources.requests["memory"] = q("96Mi");
  plan = plan_sync(keep(pod({c})), state, with("bare"));
  EXPECT_TRUE(plan.resize.empty());
  ASSERT_EQ(plan.kill.size(), 1u);
  EXPECT_EQ(started(plan), std::vector<std::string>{"app#1"});

  plan = plan_sync(keep(pod({c})), state, with("another-spec"));
  ASSERT_EQ(plan.kill.size(), 1u);
  EXPECT_EQ(plan.kill[0].reason, "its spec changed");
  EXPECT_TRUE(plan.resize.empty());
}

TEST(SyncPlan, AContainerFromBeforeResizesIsComparedByItsFullHash) {
  State st;
  st.sandbox(0, true).container("app", 0, ContainerState::kRunning, 0, "old-full");
  auto in = inputs();
  in.hash = [](const api::Container&) { return std::string("old-full"); };
  in.hash_without_resources = [](const api::Container&) { return std::string("bare"); };
  auto plan = plan_sync(keep(pod({ctr("app")})), st.get(), in);
  EXPECT_TRUE(plan.kill.empty());
  in.hash = [](const api::Container&) { return std::string("new-full"); };
  plan = plan_sync(keep(pod({ctr("app")})), st.get(), in);
  EXPECT_EQ(plan.kill.size(), 1u);
}

}  // namespace
}  // namespace knode::kubelet
