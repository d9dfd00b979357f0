#include "pod/status.h"

#include <gtest/gtest.h>

#include "kubelet/pod/decode.h"

using namespace knode;
using namespace knode::kubelet;
using knode::kubelet::testing::decode;

namespace {

api::Time at(int64_t seconds) {
  return api::Time::FromUnixNanos((1700000000 + seconds) * 1000000000LL);
}

api::Pod make_pod(const std::string& spec) {
  return decode<api::Pod>(R"(apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, uid: u-1}
spec:
)" + spec);
}

const char* kTwoContainers = R"(  containers:
  - {name: b-side, image: side:1}
  - {name: app, image: app:1}
)";

const char* kWithInit = R"(  initContainers:
  - {name: init1, image: init:1}
  - {name: init2, image: init:1}
  containers:
  - {name: app, image: app:1}
)";

const char* kWithSidecar = R"(  initContainers:
  - {name: proxy, image: envoy:1, restartPolicy: Always}
  containers:
  - {name: app, image: app:1}
)";

ObservedContainer running(const std::string& name, int64_t created, bool ready = true) {
  ObservedContainer c;
  c.name = name;
  c.state = ContainerRunState::kRunning;
  c.container_id = "containerd://" + name + std::to_string(created);
  c.image = name + ":1";
  c.image_id = "sha256:" + name;
  c.created_at = at(created);
  c.started_at = at(created + 1);
  c.started = true;
  c.ready = ready;
  return c;
}

ObservedContainer exited(const std::string& name, int64_t created, int32_t code,
                         const std::string& reason = "") {
  ObservedContainer c = running(name, created, false);
  c.state = ContainerRunState::kExited;
  c.exit_code = code;
  c.reason = reason;
  c.finished_at = at(created + 5);
  c.started = false;
  return c;
}

const api::ContainerStatus& status_of(const api::PodStatus& s, const std::string& name) {
  for (const auto* list : {&s.container_statuses, &s.init_container_statuses}) {
    for (const auto& c : *list) {
      if (c.name == name) return c;
    }
  }
  static const api::ContainerStatus kNone;
  ADD_FAILURE() << "no status for " << name;
  return kNone;
}

const api::PodCondition& condition_of(const api::PodStatus& s, const std::string& type) {
  for (const auto& c : s.conditions) {
    if (c.type == type) return c;
  }
  static const api::PodCondition kNone;
  ADD_FAILURE() << "no condition " << type;
  return kNone;
}

std::vector<std::string> condition_types(const api::PodStatus& s) {
  std::vector<std::string> out;
  for (const auto& c : s.conditions) out.push_back(c.type);
  return out;
}

}  // namespace

TEST(PodStatus, NewPodIsPendingWithEveryContainerCreating) {
  auto pod = make_pod(kTwoContainers);
  auto s = generate_pod_status(pod, PodObservation{}, pod.status, at(0));
  EXPECT_EQ(s.phase, "Pending");
  EXPECT_EQ(s.qos_class, "BestEffort");
  ASSERT_EQ(s.container_statuses.size(), 2u);
  EXPECT_EQ(s.container_statuses[0].name, "app");  // reported by name
  EXPECT_EQ(s.container_statuses[1].name, "b-side");
  EXPECT_EQ(s.container_statuses[0].state.waiting->reason, "ContainerCreating");
  EXPECT_EQ(s.container_statuses[0].image, "app:1");
  EXPECT_EQ(s.container_statuses[0].started, false);
  EXPECT_EQ(condition_types(s),
            (std::vector<std::string>{"PodReadyToStartContainers", "Initialized", "Ready",
                                      "ContainersReady", "PodScheduled"}));
  EXPECT_EQ(condition_of(s, "PodReadyToStartContainers").status, "False");
  EXPECT_EQ(condition_of(s, "Initialized").status, "True");
  const auto& ready = condition_of(s, "Ready");
  EXPECT_EQ(ready.status, "False");
  EXPECT_EQ(ready.reason, "ContainersNotReady");
  EXPECT_EQ(ready.message, "containers with unready status: [b-side app]");
  EXPECT_EQ(condition_of(s, "ContainersReady").message,
            "containers with unready status: [b-side app]");
  EXPECT_EQ(condition_of(s, "PodScheduled").status, "True");
  EXPECT_EQ(s.start_time, at(0));
  EXPECT_EQ(condition_of(s, "PodScheduled").last_transition_time, at(0));
}

TEST(PodStatus, RunningAndReady) {
  auto pod = make_pod(kTwoContainers);
  PodObservation o;
  o.sandbox_ready = true;
  o.containers = {running("app", 10), running("b-side", 11, false)};
  o.pod_ips = {"10.244.1.5"};
  o.host_ips = {"192.168.1.10"};
  auto s = generate_pod_status(pod, o, pod.status, at(20));
  EXPECT_EQ(s.phase, "Running");
  const auto& app = status_of(s, "app");
  ASSERT_TRUE(app.state.running);
  EXPECT_EQ(app.state.running->started_at, at(11));
  EXPECT_EQ(app.container_id, "containerd://app10");
  EXPECT_EQ(app.image_id, "sha256:app");
  EXPECT_TRUE(app.ready);
  EXPECT_EQ(app.started, true);
  EXPECT_EQ(condition_of(s, "Ready").message, "containers with unready status: [b-side]");
  EXPECT_EQ(condition_of(s, "PodReadyToStartContainers").status, "True");
  EXPECT_EQ(s.pod_ip, "10.244.1.5");
  EXPECT_EQ(s.host_ip, "192.168.1.10");
  ASSERT_EQ(s.host_ips.size(), 1u);
  o.containers[1].ready = true;
  s = generate_pod_status(pod, o, s, at(30));
  EXPECT_EQ(condition_of(s, "Ready").status, "True");
  EXPECT_EQ(condition_of(s, "Ready").reason, "");
  EXPECT_EQ(condition_of(s, "ContainersReady").status, "True");
}

TEST(PodStatus, TransitionTimeMovesOnlyWhenTheStatusChanges) {
  auto pod = make_pod(kTwoContainers);
  PodObservation o;
  auto s1 = generate_pod_status(pod, o, pod.status, at(0));
  o.containers = {running("app", 10), running("b-side", 10, false)};
  auto s2 = generate_pod_status(pod, o, s1, at(50));
  // Still not ready (the message changed, the status did not).
  EXPECT_EQ(condition_of(s2, "Ready").last_transition_time, at(0));
  o.containers[1].ready = true;
  auto s3 = generate_pod_status(pod, o, s2, at(60));
  EXPECT_EQ(condition_of(s3, "Ready").last_transition_time, at(60));
  EXPECT_EQ(condition_of(s3, "PodScheduled").last_transition_time, at(0));
  EXPECT_EQ(s3.start_time, at(0));
}

TEST(PodStatus, InitContainersHoldThePodPending) {
  auto pod = make_pod(kWithInit);
  PodObservation o;
  o.containers = {running("init1", 1)};
  auto s = generate_pod_status(pod, o, pod.status, at(5));
  EXPECT_EQ(s.phase, "Pending");
  EXPECT_EQ(status_of(s, "app").state.waiting->reason, "PodInitializing");
  EXPECT_EQ(status_of(s, "init2").state.waiting->reason, "PodInitializing");
  ASSERT_EQ(s.init_container_statuses.size(), 2u);
  EXPECT_EQ(s.init_container_statuses[0].name, "init1");  // in the order they run
  const auto& init = condition_of(s, "Initialized");
  EXPECT_EQ(init.status, "False");
  EXPECT_EQ(init.reason, "ContainersNotInitialized");
  EXPECT_EQ(init.message, "containers with incomplete status: [init1 init2]");
}

TEST(PodStatus, CompletedInitContainersInitializeThePod) {
  auto pod = make_pod(kWithInit);
  PodObservation o;
  o.containers = {exited("init1", 1, 0), exited("init2", 8, 0), running("app", 15)};
  auto s = generate_pod_status(pod, o, pod.status, at(20));
  EXPECT_EQ(s.phase, "Running");
  const auto& init1 = status_of(s, "init1");
  ASSERT_TRUE(init1.state.terminated);
  EXPECT_EQ(init1.state.terminated->reason, "Completed");
  EXPECT_EQ(init1.state.terminated->container_id, "containerd://init11");
  EXPECT_TRUE(init1.ready);
  EXPECT_EQ(condition_of(s, "Initialized").status, "True");
  EXPECT_EQ(condition_of(s, "Ready").status, "True");
}

TEST(PodStatus, FailedInitContainerFailsThePodWhenNothingRestarts) {
  auto pod = make_pod(std::string("  restartPolicy: Never\n") + kWithInit);
  PodObservation o;
  o.containers = {exited("init1", 1, 2)};
  auto s = generate_pod_status(pod, o, pod.status, at(10));
  EXPECT_EQ(s.phase, "Failed");
  EXPECT_EQ(status_of(s, "init1").state.terminated->reason, "Error");
  EXPECT_EQ(condition_of(s, "ContainersReady").reason, "PodFailed");
  EXPECT_EQ(condition_of(s, "Ready").reason, "PodFailed");
}

TEST(PodStatus, FailedInitContainerBacksOffUnderRestartPolicyAlways) {
  auto pod = make_pod(kWithInit);
  PodObservation o;
  o.containers = {exited("init1", 1, 2)};
  o.start_failures["init1"] = {"CrashLoopBackOff",
                               "back-off 10s restarting failed container=init1 pod=web_shop(u-1)"};
  auto s = generate_pod_status(pod, o, pod.status, at(10));
  EXPECT_EQ(s.phase, "Pending");
  const auto& init1 = status_of(s, "init1");
  ASSERT_TRUE(init1.state.waiting);
  EXPECT_EQ(init1.state.waiting->reason, "CrashLoopBackOff");
  ASSERT_TRUE(init1.last_state.terminated);
  EXPECT_EQ(init1.last_state.terminated->exit_code, 2);
}

TEST(PodStatus, CrashLoopShowsTheWaitAndTheLastTermination) {
  auto pod = make_pod("  containers:\n  - {name: app, image: app:1}\n");
  PodObservation o;
  auto older = exited("app", 10, 1);
  auto latest = exited("app", 30, 137, "OOMKilled");
  latest.restart_count = 3;
  o.containers = {older, latest};
  o.start_failures["app"] = {"CrashLoopBackOff",
                             "back-off 40s restarting failed container=app pod=web_shop(u-1)"};
  auto s = generate_pod_status(pod, o, pod.status, at(40));
  EXPECT_EQ(s.phase, "Running");  // restartPolicy Always: it is restarting
  const auto& app = status_of(s, "app");
  EXPECT_EQ(app.restart_count, 3);
  ASSERT_TRUE(app.state.waiting);
  EXPECT_EQ(app.state.waiting->reason, "CrashLoopBackOff");
  ASSERT_TRUE(app.last_state.terminated);
  EXPECT_EQ(app.last_state.terminated->reason, "OOMKilled");
  EXPECT_EQ(app.last_state.terminated->exit_code, 137);
  EXPECT_FALSE(app.ready);
  // Without a recorded start failure, the newest attempt's termination is the state and
  // the one before it the last state.
  o.start_failures.clear();
  s = generate_pod_status(pod, o, pod.status, at(40));
  EXPECT_EQ(status_of(s, "app").state.terminated->reason, "OOMKilled");
  EXPECT_EQ(status_of(s, "app").last_state.terminated->reason, "Error");
}

TEST(PodStatus, ImagePullFailureBeforeTheContainerExists) {
  auto pod = make_pod("  containers:\n  - {name: app, image: app:1}\n");
  PodObservation o;
  o.sandbox_ready = true;
  o.start_failures["app"] = {"ImagePullBackOff", "Back-off pulling image \"app:1\""};
  auto s = generate_pod_status(pod, o, pod.status, at(5));
  EXPECT_EQ(s.phase, "Pending");
  EXPECT_EQ(status_of(s, "app").state.waiting->reason, "ImagePullBackOff");
  EXPECT_EQ(status_of(s, "app").state.waiting->message, "Back-off pulling image \"app:1\"");
}

TEST(PodStatus, PhaseFollowsRestartPolicyOnceEverythingStopped) {
  struct Case {
    const char* policy;
    int32_t code;
    const char* phase;
  };
  const Case cases[] = {{"Always", 0, "Running"},      {"Always", 1, "Running"},
                        {"OnFailure", 0, "Succeeded"}, {"OnFailure", 1, "Running"},
                        {"Never", 0, "Succeeded"},     {"Never", 1, "Failed"}};
  for (const auto& c : cases) {
    auto pod = make_pod(std::string("  restartPolicy: ") + c.policy + "\n" + kTwoContainers);
    PodObservation o;
    o.containers = {exited("app", 1, c.code), exited("b-side", 1, 0)};
    auto s = generate_pod_status(pod, o, pod.status, at(10));
    EXPECT_EQ(s.phase, c.phase) << c.policy << " exit " << c.code;
  }
}

TEST(PodStatus, SucceededPodConditionsSayCompleted) {
  auto pod = make_pod(std::string("  restartPolicy: Never\n") + kTwoContainers);
  PodObservation o;
  o.containers = {exited("app", 1, 0), exited("b-side", 1, 0)};
  auto s = generate_pod_status(pod, o, pod.status, at(10));
  ASSERT_EQ(s.phase, "Succeeded");
  EXPECT_EQ(condition_of(s, "Initialized").reason, "PodCompleted");
  EXPECT_EQ(condition_of(s, "Ready").status, "False");
  EXPECT_EQ(condition_of(s, "Ready").reason, "PodCompleted");
  EXPECT_EQ(status_of(s, "app").state.terminated->reason, "Completed");
}

TEST(PodStatus, TerminalPodEndsByItsContainersWhateverThePolicy) {
  auto pod = make_pod(kTwoContainers);
  PodObservation o;
  o.pod_is_terminal = true;
  o.containers = {exited("app", 1, 0), exited("b-side", 1, 143)};
  EXPECT_EQ(generate_pod_status(pod, o, pod.status, at(10)).phase, "Failed");
}

TEST(PodStatus, TerminalPhaseIsNeverLeft) {
  auto pod = make_pod(kTwoContainers);
  api::PodStatus previous;
  previous.phase = "Succeeded";
  previous.reason = "Done";
  PodObservation o;
  o.containers = {running("app", 1), running("b-side", 1)};
  auto s = generate_pod_status(pod, o, previous, at(10));
  EXPECT_EQ(s.phase, "Succeeded");
  EXPECT_EQ(s.reason, "Done");
}

TEST(PodStatus, SidecarMustStartBeforeThePodIsInitialized) {
  auto pod = make_pod(kWithSidecar);
  PodObservation o;
  auto proxy = running("proxy", 1);
  proxy.started = false;  // startup probe pending
  o.containers = {proxy};
  auto s = generate_pod_status(pod, o, pod.status, at(5));
  EXPECT_EQ(s.phase, "Pending");
  EXPECT_EQ(condition_of(s, "Initialized").message, "containers with incomplete status: [proxy]");
  o.containers = {running("proxy", 1), running("app", 3)};
  s = generate_pod_status(pod, o, pod.status, at(5));
  EXPECT_EQ(s.phase, "Running");
  EXPECT_EQ(condition_of(s, "Initialized").status, "True");
  // The sidecar's readiness counts for the pod's.
  o.containers[0].ready = false;
  s = generate_pod_status(pod, o, pod.status, at(6));
  EXPECT_EQ(condition_of(s, "Ready").message, "containers with unready status: [proxy]");
  // A restarting sidecar does not send an initialized pod back to Pending.
  o.containers = {exited("proxy", 1, 1), running("app", 3)};
  o.start_failures["proxy"] = {"CrashLoopBackOff", "back-off"};
  s = generate_pod_status(pod, o, pod.status, at(7));
  EXPECT_EQ(s.phase, "Running");
}

TEST(PodStatus, VanishedRunningContainerCountsAsARestart) {
  auto pod = make_pod("  containers:\n  - {name: app, image: app:1}\n");
  PodObservation o;
  o.containers = {running("app", 1)};
  auto before = generate_pod_status(pod, o, pod.status, at(5));
  auto s = generate_pod_status(pod, PodObservation{}, before, at(10));
  const auto& app = status_of(s, "app");
  ASSERT_TRUE(app.last_state.terminated);
  EXPECT_EQ(app.last_state.terminated->reason, "ContainerStatusUnknown");
  EXPECT_EQ(app.last_state.terminated->exit_code, 137);
  EXPECT_EQ(app.restart_count, 1);
  EXPECT_EQ(s.phase, "Running");  // stopped and restarting, not Pending
}

TEST(PodStatus, HostNetworkPodsHaveTheNodeAddresses) {
  auto pod = make_pod("  hostNetwork: true\n  containers:\n  - {name: app, image: app:1}\n");
  PodObservation o;
  o.host_ips = {"192.168.1.10", "fd00::10"};
  auto s = generate_pod_status(pod, o, pod.status, at(0));
  EXPECT_EQ(s.pod_ip, "192.168.1.10");
  ASSERT_EQ(s.pod_ips.size(), 2u);
  EXPECT_EQ(s.pod_ips[1].ip, "fd00::10");
  EXPECT_EQ(s.host_ips.size(), 2u);
}

TEST(PodStatus, ConditionsOwnedByOthersAreKept) {
  auto pod = make_pod(kTwoContainers);
  api::PodCondition gate;
  gate.type = "example.com/LoadBalancerReady";
  gate.status = "True";
  pod.status.conditions = {gate};
  auto s = generate_pod_status(pod, PodObservation{}, pod.status, at(0));
  EXPECT_EQ(s.conditions.front().type, "example.com/LoadBalancerReady");
  EXPECT_EQ(s.conditions.size(), 6u);
}

TEST(ContainerShouldRestart, OwnPolicyThenThePods) {
  api::Container c;
  EXPECT_TRUE(container_should_restart(c, "Always", 0));
  EXPECT_FALSE(container_should_restart(c, "OnFailure", 0));
  EXPECT_TRUE(container_should_restart(c, "OnFailure", 3));
  EXPECT_FALSE(container_should_restart(c, "Never", 3));
  c.restart_policy = "Always";
  EXPECT_TRUE(container_should_restart(c, "Never", 0));
}
