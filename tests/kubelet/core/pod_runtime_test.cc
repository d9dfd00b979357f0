// Reading a pod back from the runtime: with the worker's status cache, a pod whose
// sandbox and containers kept their states costs the two list calls only, and whatever
// changed state is asked again, so the statuses are never older than the lists.
#include "pod_runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fakes/fake_runtime.h"
#include "labels.h"

namespace rt = knode::runtime;
using knode::kubelet::ContainerRecord;
using knode::kubelet::only_what_was_started;
using knode::kubelet::PodRuntimeState;
using knode::kubelet::read_pod_state;
using knode::kubelet::StatusCache;
using knode::testing::FakeRuntime;

namespace {

constexpr const char* kPause = "127.0.0.1:5000/pause:3.10";
constexpr const char* kImage = "127.0.0.1:5000/kubia:1";
constexpr const char* kUid = "uid-1";

class PodRuntimeTest : public ::testing::Test {
 protected:
  PodRuntimeTest() {
    rt_.add_image(kPause, /*present=*/true);
    rt_.add_image(kImage, /*present=*/true);
    sandbox_.metadata = {"web", kUid, "default", 0};
    sandbox_.log_directory = "/var/log/pods/default_web_uid-1";
    sandbox_.labels = {{knode::kubelet::kPodUidLabel, kUid}};
  }
  std::string start(const std::string& sandbox, const std::string& name) {
    rt::ContainerConfig c;
    c.metadata = {name, 0};
    c.image.image = kImage;
    c.log_path = name + "/0.log";
    c.labels = {{knode::kubelet::kPodUidLabel, kUid}};
    auto id = rt_.create_container(sandbox, c, sandbox_);
    EXPECT_TRUE(id.ok()) << id.error();
    EXPECT_TRUE(rt_.start_container(*id).ok());
    return *id;
  }

  FakeRuntime rt_;
  rt::PodSandboxConfig sandbox_;
};

TEST_F(PodRuntimeTest, AnUnchangedPodIsReadWithTheListsOnly) {
  auto sb = rt_.run_pod_sandbox(sandbox_);
  ASSERT_TRUE(sb.ok());
  const std::string a = start(*sb, "a"), b = start(*sb, "b");
  StatusCache cache;
  rt_.clear_calls();
  auto first = read_pod_state(rt_, kUid, &cache);
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_EQ(rt_.methods(), (std::vector<std::string>{"ListPodSandbox", "PodSandboxStatus", "ListContainers",
                                                     "ContainerStatus", "ContainerStatus"}));
  rt_.clear_calls();
  auto again = read_pod_state(rt_, kUid, &cache);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(rt_.methods(), (std::vector<std::string>{"ListPodSandbox", "ListContainers"}));
  // The same answer as asking everything again.
  auto fresh = read_pod_state(rt_, kUid);
  ASSERT_TRUE(fresh.ok());
  ASSERT_TRUE(again->sandbox && fresh->sandbox);
  EXPECT_EQ(*again->sandbox, *fresh->sandbox);
  ASSERT_EQ(again->containers.size(), fresh->containers.size());
  for (size_t i = 0; i < fresh->containers.size(); ++i) {
    EXPECT_EQ(again->containers[i].status, fresh->containers[i].status);
  }
}

TEST_F(PodRuntimeTest, WhatChangedStateIsAskedAgain) {
  auto sb = rt_.run_pod_sandbox(sandbox_);
  ASSERT_TRUE(sb.ok());
  const std::string a = start(*sb, "a"), b = start(*sb, "b");
  StatusCache cache;
  ASSERT_TRUE(read_pod_state(rt_, kUid, &cache).ok());

  rt_.exit_container(a, 3, "Error");
  rt_.clear_calls();
  auto st = read_pod_state(rt_, kUid, &cache);
  ASSERT_TRUE(st.ok());
  // Only the container that exited is asked; its status is the exit's.
  const std::string selector = std::string(knode::kubelet::kPodUidLabel) + "=" + kUid;
  EXPECT_EQ(rt_.calls(), (std::vector<FakeRuntime::Call>{{"ListPodSandbox", selector}, {"ListContainers", selector},
                                                         {"ContainerStatus", a}}));
  const auto* rec = st->latest("a");
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->status.state, rt::ContainerState::kExited);
  EXPECT_EQ(rec->status.exit_code, 3);
  EXPECT_EQ(rec->status.reason, "Error");

  // The sandbox stopped: its status is asked again and says so.
  ASSERT_TRUE(rt_.stop_pod_sandbox(*sb).ok());
  rt_.clear_calls();
  st = read_pod_state(rt_, kUid, &cache);
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(st->sandbox);
  EXPECT_EQ(st->sandbox->state, rt::SandboxState::kNotReady);
  EXPECT_FALSE(st->sandbox_ready());
  auto methods = rt_.methods();
  EXPECT_EQ(std::count(methods.begin(), methods.end(), "PodSandboxStatus"), 1) << ::testing::PrintToString(methods);
  // b was stopped with its sandbox: asked again as well.
  EXPECT_EQ(std::count(methods.begin(), methods.end(), "ContainerStatus"), 1) << ::testing::PrintToString(methods);
}

TEST_F(PodRuntimeTest, WhatIsGoneLeavesTheCache) {
  auto sb = rt_.run_pod_sandbox(sandbox_);
  ASSERT_TRUE(sb.ok());
  const std::string a = start(*sb, "a");
  StatusCache cache;
  ASSERT_TRUE(read_pod_state(rt_, kUid, &cache).ok());
  EXPECT_EQ(cache.containers.count(a), 1u);
  EXPECT_EQ(cache.sandboxes.count(*sb), 1u);
  ASSERT_TRUE(rt_.stop_pod_sandbox(*sb).ok());
  ASSERT_TRUE(rt_.remove_pod_sandbox(*sb).ok());  // removes its containers too
  auto st = read_pod_state(rt_, kUid, &cache);
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->containers.empty());
  EXPECT_FALSE(st->sandbox);
  EXPECT_TRUE(cache.containers.empty());
  EXPECT_TRUE(cache.sandboxes.empty());
}

rt::PodSandbox listed_sandbox(const std::string& id, rt::SandboxState state) {
  rt::PodSandbox s;
  s.id = id;
  s.state = state;
  return s;
}

ContainerRecord listed_container(const std::string& id, rt::ContainerState state) {
  ContainerRecord r;
  r.container.id = id;
  r.container.state = state;
  r.status.id = id;
  r.status.state = state;
  return r;
}

TEST(OnlyWhatWasStarted, ANewReadySandboxAndRunningContainersAreWhatASyncMeant) {
  PodRuntimeState before, after;
  after.sandboxes = {listed_sandbox("sb", rt::SandboxState::kReady)};
  after.containers = {listed_container("a", rt::ContainerState::kRunning),
                      listed_container("b", rt::ContainerState::kCreated)};
  EXPECT_TRUE(only_what_was_started(before, after));
  // Unchanged objects are fine too.
  EXPECT_TRUE(only_what_was_started(after, after));
}

TEST(OnlyWhatWasStarted, AnExitOrAStoppedSandboxWasNotPlannedFor) {
  PodRuntimeState before, after;
  after.sandboxes = {listed_sandbox("sb", rt::SandboxState::kReady)};
  after.containers = {listed_container("init", rt::ContainerState::kExited)};
  EXPECT_FALSE(only_what_was_started(before, after)) << "a new container already exited";

  before.sandboxes = after.sandboxes;
  before.containers = {listed_container("app", rt::ContainerState::kRunning)};
  after.containers = {listed_container("app", rt::ContainerState::kExited)};
  EXPECT_FALSE(only_what_was_started(before, after)) << "a running container exited meanwhile";

  after.containers = before.containers;
  after.sandboxes = {listed_sandbox("sb", rt::SandboxState::kNotReady)};
  EXPECT_FALSE(only_what_was_started(before, after)) << "the sandbox stopped";
  before.sandboxes.clear();
  EXPECT_FALSE(only_what_was_started(before, after)) << "a new sandbox that is not ready";
}

TEST(StatusCacheRemember, AReadySandboxWithoutAnAddressIsAskedAgain) {
  StatusCache cache;
  rt::PodSandboxStatus s;
  s.id = "sb";
  s.state = rt::SandboxState::kReady;
  cache.remember(s);
  EXPECT_EQ(cache.sandboxes.count("sb"), 0u) << "on the pod network, no IP yet: not kept";
  s.ip = "10.88.0.5";
  cache.remember(s);
  EXPECT_EQ(cache.sandboxes.count("sb"), 1u);
  s.ip.clear();
  cache.remember(s);
  EXPECT_EQ(cache.sandboxes.count("sb"), 0u) << "a later answer without an address drops the kept one";
  s.namespaces.network = rt::NamespaceMode::kNode;
  cache.remember(s);
  EXPECT_EQ(cache.sandboxes.count("sb"), 1u) << "host network: no address of its own to wait for";
}

TEST(StatusCacheRemember, ASigkillExitIsAskedAgainUntilItIsCalledOomKilled) {
  StatusCache cache;
  rt::ContainerStatus s;
  s.id = "c";
  s.state = rt::ContainerState::kExited;
  s.exit_code = 137;
  s.reason = "Error";
  cache.remember(s);
  EXPECT_EQ(cache.containers.count("c"), 0u) << "the runtime's OOM event may still turn it into OOMKilled";
  s.reason = "OOMKilled";
  cache.remember(s);
  EXPECT_EQ(cache.containers.count("c"), 1u);
  s.exit_code = 1;
  s.reason = "Error";
  cache.remember(s);
  EXPECT_EQ(cache.containers.count("c"), 1u) << "any other exit is final";
}

}  // namespace
