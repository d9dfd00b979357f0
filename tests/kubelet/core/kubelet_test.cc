// The kubelet in a cluster against the fake runtime and a fake API writer, on the test's
// io_context (the pool too, so every step is settled before the test looks): what it
// writes back when someone else changes a pod's status in the API (the node lifecycle
// controller marking the pods of a node it thinks is down not Ready).
#include "kubelet.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "fake_environment.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_runtime.h"
#include "labels.h"

namespace knode::kubelet {
namespace {

using namespace std::chrono_literals;

class RecordingApi final : public ApiPods {
 public:
  void status(const api::Pod& pod) override { statuses.push_back(pod.status); }
  void restate(const api::Pod& pod) override { restated.push_back(pod.status); }
  void terminated(const api::Pod&) override {}
  void mirror(const api::Pod&) override {}
  void unmirror(const api::Pod&) override {}
  std::vector<api::PodStatus> statuses, restated;
};

api::Pod bound_pod() {
  api::Pod p;
  p.metadata.name = "web";
  p.metadata.namespace_ = "default";
  p.metadata.uid = "uid-1";
  p.metadata.generation = 1;
  p.spec.node_name = "node1";
  p.spec.restart_policy = "Always";
  api::Container c;
  c.name = "app";
  c.image = "127.0.0.1:5000/kubia:1";
  p.spec.containers = {c};
  return p;
}

class KubeletTest : public ::testing::Test {
 protected:
  KubeletTest() {
    rt_.add_image("127.0.0.1:5000/kubia:1", /*present=*/true);
    KubeletOptions o;
    o.node = node_;
    o.relist_period = 1ms;
    o.api = &api_;
    kubelet_ = std::make_unique<Kubelet>(io_, store_, rt_, env_, o, health_, clock_, io_.get_executor());
    kubelet_->start();
  }
  ~KubeletTest() override { kubelet_->stop(); }

  void settle() {
    io_.restart();
    while (io_.poll() > 0) io_.restart();
  }
  // Runs the loop until at least one whole relist went by (each starts only after the
  // last one's result was handled), bounded at 5 s.
  void relist() {
    const int before = rt_.count("ListPodSandbox");
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    io_.restart();
    while (rt_.count("ListPodSandbox") < before + 2 && std::chrono::steady_clock::now() < deadline) {
      io_.run_one_for(100ms);
    }
    ASSERT_GE(rt_.count("ListPodSandbox"), before + 2) << "no relist within 5 s";
    settle();
  }
  void from_api(EventType type, const api::Pod& pod, const api::Pod* old = nullptr) {
    store_.on_event(Event{type, std::make_shared<const api::Object>(pod),
                          old ? std::make_shared<const api::Object>(*old) : nullptr});
    settle();
  }
  // The pod as the API holds it after the kubelet's own last write.
  api::Pod as_written() {
    auto p = bound_pod();
    EXPECT_FALSE(api_.statuses.empty());
    if (!api_.statuses.empty()) p.status = api_.statuses.back();
    return p;
  }
  // The same with one of the kubelet's conditions flipped by someone else.
  api::Pod overwritten() {
    auto p = as_written();
    for (auto& c : p.status.conditions) {
      if (c.type == "Ready") c.status = c.status == "True" ? "False" : "True";
    }
    return p;
  }

  knode::testing::FakeClock clock_;
  knode::testing::FakeRuntime rt_{clock_};
  FakeEnvironment env_;
  NodeSettings node_{.node_name = "node1", .host_ips = {"192.168.1.10"}};
  boost::asio::io_context io_;
  ObjectStore store_;
  health::HealthRegistry health_{clock_};
  RecordingApi api_;
  std::unique_ptr<Kubelet> kubelet_;
};

TEST_F(KubeletTest, RunsABoundPodAndWritesItsStatus) {
  from_api(EventType::kAdded, bound_pod());
  relist();
  EXPECT_EQ(rt_.count("StartContainer"), 1);
  ASSERT_FALSE(api_.statuses.empty());
  EXPECT_EQ(api_.statuses.back().phase, "Running");
  bool ready = false;
  for (const auto& c : api_.statuses.back().conditions) ready |= c.type == "Ready" && c.status == "True";
  EXPECT_TRUE(ready);
  EXPECT_TRUE(api_.restated.empty());
}

// The relist (PLEG) sees the sandbox and container a worker just started; that worker
// acted on exactly those states already, so it does not read the pod again. What it has
// not seen (its container exiting) it reads and acts on.
TEST_F(KubeletTest, ARelistThatSeesOnlyTheWorkersOwnStartDoesNotSyncItAgain) {
  const std::string mine = std::string(knode::kubelet::kPodUidLabel) + "=uid-1";
  auto reads = [&] {
    int n = 0;
    for (const auto& c : rt_.calls()) n += c.method == "ListContainers" && c.object == mine;
    return n;
  };
  relist();  // the first relist syncs every pod (the runtime "came"); this one finds none
  from_api(EventType::kAdded, bound_pod());
  ASSERT_EQ(rt_.count("StartContainer"), 1);
  const int after_start = reads();
  EXPECT_EQ(after_start, 2) << "the worker reads the pod before and after starting it";
  relist();
  relist();
  EXPECT_EQ(reads(), after_start) << "the relists found what the worker had seen";

  auto running = rt_.list_containers({});
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(running->size(), 1u);
  rt_.exit_container(running->front().id, 1, "Error");
  relist();
  EXPECT_GT(reads(), after_start) << "an exit the worker had not seen makes it read the pod";
  EXPECT_EQ(rt_.count("StartContainer"), 2) << "and restart the container (restartPolicy Always)";
}

// An init container done before the worker reads the pod back: the worker's own read
// found it exited, which its plan did not cover, so the relist that lists it syncs the pod
// and the app container starts at once (not at the next periodic resync).
TEST_F(KubeletTest, AQuickInitContainerIsFollowedAtTheNextRelist) {
  relist();
  api::Pod p = bound_pod();
  api::Container init;
  init.name = "setup";
  init.image = "127.0.0.1:5000/kubia:1";
  p.spec.init_containers = {init};
  rt_.exit_on_start("setup", 0);
  from_api(EventType::kAdded, p);
  ASSERT_GE(rt_.count("StartContainer"), 1);  // a relist may already have come meanwhile
  relist();
  relist();
  EXPECT_EQ(rt_.count("StartContainer"), 2) << "the app container started after the relist saw the init exit";
}

// A container that crashes at once is restarted at the relist that lists it exited.
TEST_F(KubeletTest, AContainerThatExitsAtStartIsRestartedAtTheNextRelist) {
  relist();
  rt_.exit_on_start("app", 1);
  from_api(EventType::kAdded, bound_pod());
  ASSERT_GE(rt_.count("StartContainer"), 1);  // a relist may already have come meanwhile
  relist();
  relist();
  EXPECT_EQ(rt_.count("StartContainer"), 2) << "restartPolicy Always: the first restart has no back-off";
}

TEST_F(KubeletTest, TheEchoOfItsOwnWriteIsNotWrittenAgain) {
  from_api(EventType::kAdded, bound_pod());
  relist();
  const auto writes = api_.statuses.size();
  auto echo = as_written();
  from_api(EventType::kModified, echo);
  relist();
  EXPECT_TRUE(api_.restated.empty());
  EXPECT_EQ(api_.statuses.size(), writes);
}

TEST_F(KubeletTest, AStatusSomeoneElseWroteIsWrittenAgainAtMostEveryTenSeconds) {
  from_api(EventType::kAdded, bound_pod());
  relist();
  ASSERT_TRUE(api_.restated.empty());
  const auto mine = api_.statuses.back();

  // The node lifecycle controller marks the pod not Ready: the kubelet's status goes back
  // at once.
  from_api(EventType::kModified, overwritten());
  ASSERT_EQ(api_.restated.size(), 1u);
  EXPECT_EQ(api_.restated[0], mine);

  // It does so again for every pod update (as it does while it thinks the node is down):
  // nothing more is written for 10 s, however many updates and relists go by...
  for (int i = 0; i < 5; ++i) {
    clock_.advance(1s);
    from_api(EventType::kModified, overwritten());
    relist();
  }
  EXPECT_EQ(api_.restated.size(), 1u);
  clock_.advance(4500ms);  // 9.5 s after the first
  relist();
  EXPECT_EQ(api_.restated.size(), 1u);

  // ...then the relist writes it once more, with no new update needed, and only once.
  clock_.advance(500ms);
  relist();
  ASSERT_EQ(api_.restated.size(), 2u);
  EXPECT_EQ(api_.restated[1], mine);
  clock_.advance(30s);
  relist();
  EXPECT_EQ(api_.restated.size(), 2u);

  // The API holds the kubelet's status again; an overwrite long after the last write is
  // answered at once.
  from_api(EventType::kModified, as_written());
  from_api(EventType::kModified, overwritten());
  EXPECT_EQ(api_.restated.size(), 3u);
}

TEST_F(KubeletTest, AnOverwriteSettledBeforeTheThrottleEndsIsNotWrittenAgain) {
  from_api(EventType::kAdded, bound_pod());
  relist();
  from_api(EventType::kModified, overwritten());
  ASSERT_EQ(api_.restated.size(), 1u);
  clock_.advance(2s);
  from_api(EventType::kModified, overwritten());
  // Someone writes the kubelet's conditions back before the kubelet may again.
  from_api(EventType::kModified, as_written());
  clock_.advance(20s);
  relist();
  EXPECT_EQ(api_.restated.size(), 1u);
}

}  // namespace
}  // namespace knode::kubelet
