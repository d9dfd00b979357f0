// A pod worker against the fake runtime, everything on one thread: the worker's syncs run
// on the test's io_context, so each step is settled before the test looks.
#include "pod_worker.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <map>
#include <set>

#include "fakes/fake_clock.h"
#include "fakes/fake_runtime.h"
#include "fake_environment.h"
#include "labels.h"
#include "pod/image_policy.h"

namespace knode::kubelet {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const api::Pod> make_pod(const std::string& restart = "Always") {
  auto p = std::make_shared<api::Pod>();
  p->metadata.name = "web-node1";
  p->metadata.namespace_ = "default";
  p->metadata.uid = "uid-1";
  p->spec.restart_policy = restart;
  api::Container c;
  c.name = "app";
  c.image = "127.0.0.1:5000/kubia:1";
  p->spec.containers = {c};
  return p;
}

class PodWorkerTest : public ::testing::Test {
 protected:
  PodWorkerTest() { rt_.add_image("127.0.0.1:5000/kubia:1", /*present=*/true); }

  void start(std::shared_ptr<const api::Pod> pod) {
    worker_ = std::make_shared<PodWorker>(PodWorkerDeps{rt_, env_, node_, clock_, io_, io_.get_executor()}, pod,
                                          [this](const api::Pod&, const api::PodStatus& s) { statuses_.push_back(s); });
    worker_->sync();
    settle();
  }
  void settle() {
    io_.restart();
    while (io_.poll() > 0) io_.restart();
  }
  std::vector<runtime::Container> containers(std::optional<runtime::ContainerState> state = std::nullopt) {
    runtime::ContainerFilter f;
    f.state = state;
    return *rt_.list_containers(f);
  }
  const api::PodStatus& last() const { return statuses_.back(); }

  knode::testing::FakeClock clock_;
  knode::testing::FakeRuntime rt_{clock_};
  FakeEnvironment env_;
  NodeSettings node_{.node_name = "node1", .host_ips = {"192.168.1.10"}};
  boost::asio::io_context io_;
  std::shared_ptr<PodWorker> worker_;
  std::vector<api::PodStatus> statuses_;
};

TEST_F(PodWorkerTest, StartsTheSandboxAndContainerAndReportsRunning) {
  start(make_pod());
  EXPECT_EQ(rt_.count("RunPodSandbox"), 1);
  EXPECT_EQ(rt_.count("StartContainer"), 1);
  ASSERT_FALSE(statuses_.empty());
  EXPECT_EQ(last().phase, "Running");
  EXPECT_FALSE(last().pod_ip.empty());
  ASSERT_EQ(last().container_statuses.size(), 1u);
  EXPECT_TRUE(last().container_statuses[0].ready);
  EXPECT_EQ(last().container_statuses[0].container_id.rfind(rt_.id_scheme() + "://", 0), 0u);
  // What a restarted knode finds: the labels name the pod.
  auto c = containers().at(0);
  EXPECT_EQ(c.labels.at(kPodUidLabel), "uid-1");
  EXPECT_EQ(c.labels.at(kContainerNameLabel), "app");
}

TEST_F(PodWorkerTest, TheStartedContainersLogPathIsTheOneTheRuntimeWrites) {
  start(make_pod());
  const auto running = containers(runtime::ContainerState::kRunning);
  ASSERT_EQ(running.size(), 1u);
  ASSERT_EQ(env_.started_logs.size(), 1u);
  EXPECT_EQ(env_.started_logs[0].first, running[0].id);
  // Computed as upstream (sandbox log directory + container log path), not asked back.
  EXPECT_EQ(env_.started_logs[0].second, rt_.container_status(running[0].id)->log_path);
  EXPECT_EQ(env_.started_logs[0].second, "/var/log/pods/default_web-node1_uid-1/app/0.log");
}

TEST_F(PodWorkerTest, AnotherSyncOfARunningPodChangesNothing) {
  start(make_pod());
  rt_.clear_calls();
  worker_->sync();
  settle();
  for (const auto& m : rt_.methods()) {
    EXPECT_TRUE(m.rfind("List", 0) == 0 || m.find("Status") != std::string::npos) << m;
  }
}

TEST_F(PodWorkerTest, AnExitedContainerRestartsThenWaitsInBackOff) {
  start(make_pod());
  const std::string first = containers(runtime::ContainerState::kRunning).at(0).id;
  rt_.exit_container(first, 1, "Error");
  worker_->sync();
  settle();
  auto running = containers(runtime::ContainerState::kRunning);
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].metadata.attempt, 1u);
  EXPECT_EQ(last().container_statuses[0].restart_count, 1);
  // It crashes again at once: now it waits 10 s (CrashLoopBackOff).
  rt_.exit_container(running[0].id, 1, "Error");
  worker_->sync();
  settle();
  EXPECT_TRUE(containers(runtime::ContainerState::kRunning).empty());
  ASSERT_TRUE(last().container_statuses[0].state.waiting);
  EXPECT_EQ(last().container_statuses[0].state.waiting->reason, "CrashLoopBackOff");
  EXPECT_NE(last().container_statuses[0].state.waiting->message.find("back-off 10s"), std::string::npos);
  clock_.advance(11s);
  worker_->sync();
  settle();
  running = containers(runtime::ContainerState::kRunning);
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].metadata.attempt, 2u);
}

TEST_F(PodWorkerTest, ANeverPodThatExitedIsFinishedAndItsSandboxStopped) {
  start(make_pod("Never"));
  rt_.exit_container(containers().at(0).id, 0, "Completed");
  worker_->sync();
  settle();
  EXPECT_EQ(last().phase, "Succeeded");
  EXPECT_EQ(rt_.count("StopPodSandbox"), 1);
  EXPECT_EQ(rt_.count("StartContainer"), 1);
}

TEST_F(PodWorkerTest, ANewWorkerAdoptsWhatIsRunning) {
  start(make_pod());
  const std::string id = containers().at(0).id;
  // knode restarted: a new worker for the same pod finds its container running.
  rt_.clear_calls();
  start(make_pod());
  EXPECT_EQ(rt_.count("RunPodSandbox"), 0);
  EXPECT_EQ(rt_.count("CreateContainer"), 0);
  EXPECT_EQ(rt_.count("StopContainer"), 0);
  EXPECT_EQ(containers(runtime::ContainerState::kRunning).at(0).id, id);
  EXPECT_EQ(last().phase, "Running");
}

TEST_F(PodWorkerTest, TerminateStopsRemovesAndTearsDown) {
  auto pod = std::make_shared<api::Pod>(*make_pod());
  pod->spec.termination_grace_period_seconds = 7;
  pod->spec.containers[0].lifecycle = api::Lifecycle{};
  pod->spec.containers[0].lifecycle->pre_stop = api::LifecycleHandler{};
  start(pod);
  bool done = false;
  worker_->terminate([&] { done = true; });
  settle();
  EXPECT_TRUE(done);
  // The last status is terminal, from what the killed containers exited with: a deleted
  // pod whose container did not succeed is Failed (what a Job's finalizer waits for).
  auto final = worker_->final_status();
  ASSERT_TRUE(final.has_value());
  EXPECT_EQ(final->phase, "Failed");
  ASSERT_EQ(final->container_statuses.size(), 1u);
  EXPECT_TRUE(final->container_statuses[0].state.terminated.has_value());
  EXPECT_EQ(env_.hooks, 1);  // the preStop hook ran
  EXPECT_TRUE(containers().empty());
  EXPECT_TRUE(rt_.list_pod_sandboxes()->empty());
  EXPECT_EQ(env_.torn_down, (std::vector<std::string>{"uid-1"}));
  // The grace period reached the runtime.
  bool graced = false;
  for (const auto& c : rt_.calls()) graced |= c.method == "StopContainer";
  EXPECT_TRUE(graced);
}

TEST_F(PodWorkerTest, ARuntimeFailureIsRetriedNotFatal) {
  rt_.fail_next("RunPodSandbox", Status::Error("CRI RunPodSandbox: Unavailable: connection refused", ECONNREFUSED));
  start(make_pod());
  EXPECT_EQ(rt_.count("StartContainer"), 0);
  worker_->sync();  // what the retry timer does
  settle();
  EXPECT_EQ(rt_.count("StartContainer"), 1);
}

// spec.activeDeadlineSeconds, counted from the status' startTime: past it the pod is
// killed and Failed with reason DeadlineExceeded, and nothing of it starts again.
TEST_F(PodWorkerTest, APodPastItsActiveDeadlineIsKilledAndFailsWithDeadlineExceeded) {
  auto pod = std::make_shared<api::Pod>(*make_pod());
  pod->spec.active_deadline_seconds = 5;
  start(pod);
  ASSERT_EQ(last().phase, "Running");
  ASSERT_TRUE(last().start_time.is_set());
  clock_.advance(4s);
  worker_->sync();
  settle();
  EXPECT_EQ(last().phase, "Running");  // not yet
  EXPECT_EQ(rt_.count("StopContainer"), 0);
  clock_.advance(2s);
  worker_->sync();
  settle();
  EXPECT_EQ(last().phase, "Failed");
  EXPECT_EQ(last().reason, kDeadlineExceeded);
  EXPECT_EQ(last().message, kDeadlineExceededMessage);
  EXPECT_TRUE(containers(runtime::ContainerState::kRunning).empty());
  rt_.clear_calls();
  worker_->sync();  // a restartPolicy Always pod stays down
  settle();
  EXPECT_EQ(rt_.count("RunPodSandbox"), 0);
  EXPECT_EQ(rt_.count("StartContainer"), 0);
  EXPECT_EQ(last().phase, "Failed");
}

// A deadline set on a running pod (an API update) counts from its start too.
TEST_F(PodWorkerTest, ADeadlineAddedByAnUpdateApplies) {
  start(make_pod());
  clock_.advance(10s);
  auto next = std::make_shared<api::Pod>(*make_pod());
  next->metadata.generation = 2;
  next->spec.active_deadline_seconds = 5;
  worker_->update(next);
  settle();
  EXPECT_EQ(last().phase, "Failed");
  EXPECT_EQ(last().reason, kDeadlineExceeded);
}

// status.observedGeneration follows metadata.generation, on the status and on the
// kubelet's conditions.
TEST_F(PodWorkerTest, TheStatusCarriesTheGenerationItReflects) {
  auto pod = std::make_shared<api::Pod>(*make_pod());
  pod->metadata.generation = 1;
  start(pod);
  EXPECT_EQ(last().observed_generation, 1);
  auto next = std::make_shared<api::Pod>(*pod);
  next->metadata.generation = 2;
  next->spec.tolerations.push_back(api::Toleration{});
  worker_->update(next);
  settle();
  EXPECT_EQ(last().observed_generation, 2);
  bool ready_seen = false;
  for (const auto& c : last().conditions) {
    if (c.type == "Ready") {
      ready_seen = true;
      EXPECT_EQ(c.observed_generation, 2);
    }
  }
  EXPECT_TRUE(ready_seen);
}

// A new image restarts the container with it; a burst of updates syncs once, at the
// newest (the image of the update in between is never run).
TEST_F(PodWorkerTest, AnImageUpdateRestartsTheContainerAndABurstSyncsOnce) {
  rt_.add_image("127.0.0.1:5000/kubia:2", true);
  rt_.add_image("127.0.0.1:5000/kubia:3", true);
  auto pod = std::make_shared<api::Pod>(*make_pod());
  pod->metadata.generation = 1;
  start(pod);
  rt_.clear_calls();
  for (int gen : {2, 3}) {
    auto next = std::make_shared<api::Pod>(*pod);
    next->metadata.generation = gen;
    next->spec.containers[0].image = "127.0.0.1:5000/kubia:" + std::to_string(gen);
    worker_->update(next);
  }
  settle();
  EXPECT_EQ(rt_.count("CreateContainer"), 1);
  auto running = containers(runtime::ContainerState::kRunning);
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].image.image, "127.0.0.1:5000/kubia:3");
  EXPECT_EQ(last().observed_generation, 3);
  EXPECT_EQ(last().container_statuses.at(0).image, "127.0.0.1:5000/kubia:3");
}

// kubectl debug: an ephemeral container added to a running pod starts once in its
// sandbox, is reported in ephemeralContainerStatuses, and is not restarted when it exits.
TEST_F(PodWorkerTest, AnEphemeralContainerStartsOnceAndIsNotRestarted) {
  auto pod = std::make_shared<api::Pod>(*make_pod());
  pod->metadata.generation = 1;
  start(pod);
  auto next = std::make_shared<api::Pod>(*pod);
  next->metadata.generation = 2;
  api::Container debug;
  debug.name = "debugger";
  debug.image = "127.0.0.1:5000/kubia:1";
  debug.target_container_name = "app";
  next->spec.ephemeral_containers = {debug};
  rt_.clear_calls();
  worker_->update(next);
  settle();
  EXPECT_EQ(rt_.count("RunPodSandbox"), 0);  // the pod's own sandbox
  EXPECT_EQ(rt_.count("StartContainer"), 1);
  ASSERT_EQ(last().ephemeral_container_statuses.size(), 1u);
  EXPECT_EQ(last().ephemeral_container_statuses[0].name, "debugger");
  EXPECT_TRUE(last().ephemeral_container_statuses[0].state.running.has_value());
  EXPECT_EQ(last().container_statuses.size(), 1u);  // not among the regular containers
  std::string id;
  for (const auto& c : containers()) {
    if (c.metadata.name == "debugger") id = c.id;
  }
  ASSERT_FALSE(id.empty());
  rt_.exit_container(id, 0, "Completed");
  rt_.clear_calls();
  worker_->sync();
  settle();
  EXPECT_EQ(rt_.count("StartContainer"), 0);
  EXPECT_TRUE(last().ephemeral_container_statuses.at(0).state.terminated.has_value());
  EXPECT_EQ(last().phase, "Running");
}

// An image volume's image is pulled with the volume's pull policy before the container
// is created, and the mount names what the pull returned; an image that cannot be pulled
// keeps the container waiting with the pull's reason, and no container is created.
// The pod with an image volume "data" of `ref` at /volume, and the environment's mounts of it.
std::shared_ptr<const api::Pod> with_image_volume(FakeEnvironment& env, const std::string& ref,
                                                  const std::string& policy) {
  auto pod = std::make_shared<api::Pod>(*make_pod());
  api::Volume v;
  v.name = "data";
  v.image = api::ImageVolumeSource{ref, policy};
  pod->spec.volumes = {v};
  pod->spec.containers[0].volume_mounts = {api::VolumeMount{.name = "data", .mount_path = "/volume"}};
  env.mounts_to_return = {runtime::Mount{.container_path = "/volume", .readonly = true, .image = {ref, {}}}};
  return pod;
}

TEST_F(PodWorkerTest, AnImageVolumeIsPulledAndMountedByThePulledReference) {
  auto pod = with_image_volume(env_, "127.0.0.1:5000/kitten:1.8", "Always");
  env_.pulled_as["127.0.0.1:5000/kitten:1.8"] = "sha256:feed";
  start(pod);
  EXPECT_EQ(env_.ensured, (std::vector<std::string>{"127.0.0.1:5000/kubia:1 ", "127.0.0.1:5000/kitten:1.8 Always"}));
  ASSERT_EQ(containers().size(), 1u);
  auto config = rt_.container_config(containers()[0].id);
  ASSERT_TRUE(config.has_value());
  ASSERT_EQ(config->mounts.size(), 1u);
  EXPECT_EQ(config->mounts[0].image.image, "sha256:feed");
  EXPECT_EQ(config->mounts[0].container_path, "/volume");
  EXPECT_TRUE(config->mounts[0].readonly);
  EXPECT_EQ(last().phase, "Running");
}

TEST_F(PodWorkerTest, AnImageVolumeThatCannotBePulledKeepsTheContainerWaiting) {
  auto pod = with_image_volume(env_, "127.0.0.1:5000/missing:1", "IfNotPresent");
  env_.unpullable.insert("127.0.0.1:5000/missing:1");
  start(pod);
  EXPECT_EQ(rt_.count("CreateContainer"), 0);
  ASSERT_EQ(last().container_statuses.size(), 1u);
  ASSERT_TRUE(last().container_statuses[0].state.waiting.has_value());
  EXPECT_EQ(last().container_statuses[0].state.waiting->reason, kErrImagePull);
  EXPECT_EQ(last().phase, "Pending");
}

// An API update of a running container's resources is resized in place: the runtime's
// cgroup limits change, the container keeps running (no restart), and the status shows
// the new allocated and actual resources.
TEST_F(PodWorkerTest, AResourceUpdateResizesTheRunningContainerInPlace) {
  auto q = [](const char* text) { return *api::Quantity::Parse(text); };
  auto pod = std::make_shared<api::Pod>(*make_pod());
  pod->metadata.generation = 1;
  pod->spec.containers[0].resources.requests = {{"cpu", q("100m")}, {"memory", q("64Mi")}};
  pod->spec.containers[0].resources.limits = {{"cpu", q("200m")}, {"memory", q("64Mi")}};
  start(pod);
  const std::string id = containers().at(0).id;
  ASSERT_EQ(last().container_statuses.size(), 1u);
  ASSERT_TRUE(last().container_statuses[0].resources.has_value());
  EXPECT_EQ(*last().container_statuses[0].resources, pod->spec.containers[0].resources);
  const auto before = rt_.container_config(id)->resources;

  auto next = std::make_shared<api::Pod>(*pod);
  next->metadata.generation = 2;
  next->spec.containers[0].resources.limits = {{"cpu", q("400m")}, {"memory", q("128Mi")}};
  rt_.clear_calls();
  const size_t reported = statuses_.size();
  worker_->update(next);
  settle();
  EXPECT_EQ(rt_.count("UpdateContainerResources"), 1);
  // The status written before the resize is applied says it is in progress; the last not.
  bool in_progress = false;
  for (size_t i = reported; i + 1 < statuses_.size(); ++i) {
    for (const auto& c : statuses_[i].conditions) in_progress |= c.type == "PodResizeInProgress";
  }
  EXPECT_TRUE(in_progress);
  for (const auto& c : last().conditions) EXPECT_NE(c.type, "PodResizeInProgress");
  EXPECT_EQ(rt_.count("StopContainer"), 0);
  EXPECT_EQ(rt_.count("CreateContainer"), 0);
  const auto after = rt_.container_config(id)->resources;
  EXPECT_EQ(after.cpu_quota, 2 * before.cpu_quota);
  EXPECT_EQ(after.memory_limit_in_bytes, 128LL << 20);
  const auto& cs = last().container_statuses.at(0);
  EXPECT_EQ(cs.restart_count, 0);
  EXPECT_EQ(cs.allocated_resources, next->spec.containers[0].resources.requests);
  ASSERT_TRUE(cs.resources.has_value());
  EXPECT_EQ(*cs.resources, next->spec.containers[0].resources);
  EXPECT_EQ(last().observed_generation, 2);

  rt_.clear_calls();
  worker_->sync();
  settle();
  EXPECT_EQ(rt_.count("UpdateContainerResources"), 0) << "done once";
}

}  // namespace
}  // namespace knode::kubelet
