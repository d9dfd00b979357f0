// Container and sandbox garbage collection against the fake runtime, with real log files
// in a temporary directory: how many dead containers stay, what deleted pods leave,
// sandboxes, pod log directories, and what is not the kubelet's.
#include "gc/container_gc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "fakes/fake_clock.h"
#include "fakes/fake_runtime.h"
#include "labels.h"
#include "support/temp_dir.h"

using namespace knode::kubelet;
using knode::Status;
using knode::testing::FakeClock;
using knode::testing::FakeRuntime;
using knode::testing::TempDir;
namespace rt = knode::runtime;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kImage = "registry.local/app:1";

// Pods the workers know: anything else is gone.
class FakePods : public PodStateProvider {
 public:
  std::set<std::string> live, terminated;
  bool should_pod_content_be_removed(const std::string& uid) const override {
    return live.count(uid) == 0;
  }
  bool should_pod_runtime_be_removed(const std::string& uid) const override {
    return live.count(uid) == 0 || terminated.count(uid) != 0;
  }
};

class ContainerGcTest : public ::testing::Test {
 protected:
  ContainerGcTest() : rt_(clock_), logs_(rt_, clock_, LogManagerOptions{tmp_.path(), {}}) {
    rt_.add_image(kImage, /*present=*/true);
    pods_.live = {"uid-web", "uid-db", "uid-a", "uid-b", "uid-c"};
  }

  // A sandbox of the kubelet's, or someone else's (`ours` false: no kubelet labels).
  std::string sandbox(const std::string& name, uint32_t attempt = 0, bool ours = true) {
    const std::string uid = "uid-" + name;
    rt::PodSandboxConfig c;
    c.metadata = {name, uid, "shop", attempt};
    c.log_directory = logs_.pod_log_directory("shop", name, uid);
    if (ours) {
      c.labels = {{kPodNameLabel, name}, {kPodNamespaceLabel, "shop"}, {kPodUidLabel, uid}};
    }
    auto id = rt_.run_pod_sandbox(c);
    EXPECT_TRUE(id.ok()) << id.error();
    configs_[*id] = c;
    clock_.advance(1s);
    return *id;
  }
  void stop_sandbox(const std::string& id) { EXPECT_TRUE(rt_.stop_pod_sandbox(id).ok()); }

  // A container that ran and exited (or still runs), one second after the previous one.
  std::string container(const std::string& sandbox_id, const std::string& name, uint32_t attempt,
                        bool exited = true, rt::Labels annotations = {}) {
    const rt::PodSandboxConfig& sb = configs_.at(sandbox_id);
    rt::ContainerConfig c;
    c.metadata = {name, attempt};
    c.image.image = kImage;
    c.log_path = container_log_path(name, static_cast<int32_t>(attempt));
    if (!sb.labels.empty()) {
      c.labels = sb.labels;
      c.labels[kContainerNameLabel] = name;
    }
    c.annotations = std::move(annotations);
    auto id = rt_.create_container(sandbox_id, c, sb);
    EXPECT_TRUE(id.ok()) << id.error();
    EXPECT_TRUE(rt_.start_container(*id).ok());
    if (exited) rt_.exit_container(*id, 0);
    clock_.advance(1s);
    return *id;
  }

  std::set<std::string> containers() {
    std::set<std::string> out;
    auto list = rt_.list_containers();
    for (const auto& c : *list) out.insert(c.id);
    return out;
  }
  std::set<std::string> sandboxes() {
    std::set<std::string> out;
    auto list = rt_.list_pod_sandboxes();
    for (const auto& s : *list) out.insert(s.id);
    return out;
  }
  std::vector<std::string> objects_of(const std::string& method) {
    std::vector<std::string> out;
    for (const auto& c : rt_.calls()) {
      if (c.method == method) out.push_back(c.object);
    }
    return out;
  }
  ContainerGc gc(ContainerGcPolicy policy = {}) {
    return ContainerGc(rt_, clock_, pods_, logs_, policy);
  }

  TempDir tmp_;
  FakeClock clock_;
  FakeRuntime rt_;
  LogManager logs_;
  FakePods pods_;
  std::map<std::string, rt::PodSandboxConfig> configs_;
};

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

}  // namespace

TEST_F(ContainerGcTest, DefaultsAreUpstreams) {
  ContainerGcPolicy p;
  EXPECT_EQ(p.min_age, 0s);
  EXPECT_EQ(p.max_per_pod_container, 1);
  EXPECT_EQ(p.max_containers, -1);
}

TEST_F(ContainerGcTest, KeepsTheNewestDeadContainerPerPodAndContainerName) {
  std::string sb = sandbox("web");
  std::string app0 = container(sb, "app", 0), app1 = container(sb, "app", 1),
              app2 = container(sb, "app", 2);
  std::string app3 = container(sb, "app", 3, /*exited=*/false);
  std::string side0 = container(sb, "sidecar", 0), side1 = container(sb, "sidecar", 1);

  ASSERT_TRUE(gc().garbage_collect(true).ok());
  // Oldest first within a unit.
  EXPECT_EQ(objects_of("RemoveContainer"), (std::vector<std::string>{app0, app1, side0}));
  EXPECT_EQ(containers(), (std::set<std::string>{app2, app3, side1}));
  EXPECT_EQ(sandboxes(), (std::set<std::string>{sb}));

  // A second round finds nothing more to do.
  rt_.clear_calls();
  ASSERT_TRUE(gc().garbage_collect(true).ok());
  EXPECT_EQ(rt_.count("RemoveContainer"), 0);
}

TEST_F(ContainerGcTest, ContainersOfADeletedPodGoOnceEverySourceHasSynced) {
  std::string sb = sandbox("gone");
  std::string c0 = container(sb, "app", 0), c1 = container(sb, "app", 1);
  stop_sandbox(sb);

  // Before the sources synced, an unknown pod may just not be listed yet.
  ASSERT_TRUE(gc().garbage_collect(false).ok());
  EXPECT_EQ(containers(), (std::set<std::string>{c1}));
  EXPECT_EQ(sandboxes(), (std::set<std::string>{sb}));

  ASSERT_TRUE(gc().garbage_collect(true).ok());
  EXPECT_TRUE(containers().empty());
  // Then its sandbox, dead and empty, goes in the same round.
  EXPECT_TRUE(sandboxes().empty());
  EXPECT_EQ(objects_of("RemovePodSandbox"), (std::vector<std::string>{sb}));
}

TEST_F(ContainerGcTest, ContainersAndSandboxesTheKubeletDidNotCreateAreUntouched) {
  std::string foreign = sandbox("crictl", 0, /*ours=*/false);
  for (uint32_t i = 0; i < 3; ++i) container(foreign, "debug", i);
  stop_sandbox(foreign);
  std::string empty_foreign = sandbox("other", 0, /*ours=*/false);
  stop_sandbox(empty_foreign);
  const auto before = containers();
  rt_.clear_calls();

  ASSERT_TRUE(gc().garbage_collect(true, /*evict_non_deleted_pods=*/true).ok());
  EXPECT_EQ(containers(), before);
  EXPECT_EQ(sandboxes(), (std::set<std::string>{foreign, empty_foreign}));
  for (const char* m : {"RemoveContainer", "StopContainer", "StopPodSandbox", "RemovePodSandbox"}) {
    EXPECT_EQ(rt_.count(m), 0) << m;
  }
}

TEST_F(ContainerGcTest, DeadContainersYoungerThanMinAgeStay) {
  std::string sb = sandbox("web");
  std::string c0 = container(sb, "app", 0), c1 = container(sb, "app", 1),
              c2 = container(sb, "app", 2);
  ContainerGcPolicy policy;
  policy.min_age = 1min;
  ASSERT_TRUE(gc(policy).garbage_collect(true).ok());
  EXPECT_EQ(containers().size(), 3u);

  // c0 and c1 are a minute old; c2 is not and is not counted.
  clock_.advance(1min - 2s);
  ASSERT_TRUE(gc(policy).garbage_collect(true).ok());
  EXPECT_EQ(containers(), (std::set<std::string>{c1, c2}));
}

TEST_F(ContainerGcTest, MaxContainersLeavesAnEvenShareThenTheNewest) {
  ContainerGcPolicy policy;
  policy.max_per_pod_container = -1;
  policy.max_containers = 2;
  std::vector<std::string> ids;
  for (const char* pod : {"a", "b", "c"}) {
    std::string sb = sandbox(pod);
    ids.push_back(container(sb, "app", 0));
    ids.push_back(container(sb, "app", 1));
  }
  ASSERT_TRUE(gc(policy).garbage_collect(true).ok());
  // One per unit first (2 / 3 units rounds up to 1), then the oldest of those.
  EXPECT_EQ(objects_of("RemoveContainer"),
            (std::vector<std::string>{ids[0], ids[2], ids[4], ids[1]}));
  EXPECT_EQ(containers(), (std::set<std::string>{ids[3], ids[5]}));
}

TEST_F(ContainerGcTest, AContainerInAnUnknownStateIsStoppedBeforeRemoval) {
  std::string sb = sandbox("web");
  std::string lost =
      container(sb, "app", 0, /*exited=*/false, {{kPodTerminationGracePeriodAnnotation, "45"}});
  rt_.set_container_unknown(lost);
  container(sb, "app", 1);
  rt_.fail_next("RemoveContainer", Status::Error("CRI RemoveContainer: Unknown: busy", EIO));

  Status s = gc().garbage_collect(true);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("CRI RemoveContainer: Unknown: busy"), std::string::npos)
      << s.message();
  EXPECT_EQ(objects_of("StopContainer"), (std::vector<std::string>{lost}));
  EXPECT_EQ(rt_.stop_timeout(lost), 45);
  auto methods = rt_.methods();
  auto stop = std::find(methods.begin(), methods.end(), "StopContainer");
  auto remove = std::find(methods.begin(), methods.end(), "RemoveContainer");
  EXPECT_LT(stop, remove);

  // The next round removes it (it is exited now).
  ASSERT_TRUE(gc().garbage_collect(true).ok());
  EXPECT_EQ(containers().count(lost), 0u);
}

TEST_F(ContainerGcTest, LogFilesAndSymlinkGoWithTheContainer) {
  std::string sb = sandbox("web");
  ASSERT_TRUE(logs_.ensure_container_log_directory("shop", "web", "uid-web", "app").ok());
  const std::string dir = logs_.pod_log_directory("shop", "web", "uid-web") + "/app";
  write(dir + "/0.log", "old\n");
  write(dir + "/0.log.20240102-030405.gz", "gz");
  std::string c0 = container(sb, "app", 0);
  ASSERT_TRUE(logs_.link_container_log("shop", "web", "app", c0, dir + "/0.log").ok());
  write(dir + "/1.log", "new\n");
  std::string c1 = container(sb, "app", 1);
  ASSERT_TRUE(logs_.link_container_log("shop", "web", "app", c1, dir + "/1.log").ok());
  const std::string link0 = tmp_.path() + container_log_symlink("web", "shop", "app", c0);
  const std::string link1 = tmp_.path() + container_log_symlink("web", "shop", "app", c1);
  ASSERT_TRUE(fs::is_symlink(link0));

  ASSERT_TRUE(gc().garbage_collect(true).ok());
  EXPECT_EQ(containers(), (std::set<std::string>{c1}));
  EXPECT_FALSE(fs::exists(dir + "/0.log"));
  EXPECT_FALSE(fs::exists(dir + "/0.log.20240102-030405.gz"));
  EXPECT_FALSE(fs::is_symlink(fs::symlink_status(link0)));
  EXPECT_TRUE(fs::exists(dir + "/1.log"));
  EXPECT_TRUE(fs::is_symlink(link1));
}

TEST_F(ContainerGcTest, DeadSandboxesGoOnceANewerOneExistsOrThePodIsGone) {
  // web: a dead empty sandbox and its ready replacement.
  std::string web0 = sandbox("web", 0);
  stop_sandbox(web0);
  std::string web1 = sandbox("web", 1);
  // db: its only sandbox is dead and empty; it stays while the pod exists.
  std::string db0 = sandbox("db", 0);
  stop_sandbox(db0);
  // a: a dead sandbox that still holds a (dead) container stays.
  std::string a0 = sandbox("a", 0);
  container(a0, "app", 0);
  stop_sandbox(a0);
  std::string a1 = sandbox("a", 1);
  // gone: a ready sandbox of a deleted pod stays until it is stopped.
  std::string gone = sandbox("gone", 0);

  ASSERT_TRUE(gc().garbage_collect(true).ok());
  EXPECT_EQ(sandboxes(), (std::set<std::string>{web1, db0, a0, a1, gone}));
  EXPECT_EQ(objects_of("StopPodSandbox").back(), web0);
  EXPECT_EQ(objects_of("RemovePodSandbox"), (std::vector<std::string>{web0}));

  stop_sandbox(gone);
  ASSERT_TRUE(gc().garbage_collect(true).ok());
  EXPECT_EQ(sandboxes(), (std::set<std::string>{web1, db0, a0, a1}));
}

TEST_F(ContainerGcTest, PodLogDirectoriesOfRemovedPodsGoOnceEverySourceHasSynced) {
  ASSERT_TRUE(logs_.ensure_container_log_directory("shop", "web", "uid-web", "app").ok());
  ASSERT_TRUE(logs_.ensure_container_log_directory("shop", "gone", "uid-gone", "app").ok());
  write(logs_.pod_log_directory("shop", "gone", "uid-gone") + "/app/0.log", "bye\n");

  ASSERT_TRUE(gc().garbage_collect(false).ok());
  EXPECT_TRUE(fs::exists(logs_.pod_log_directory("shop", "gone", "uid-gone")));

  ASSERT_TRUE(gc().garbage_collect(true).ok());
  EXPECT_FALSE(fs::exists(logs_.pod_log_directory("shop", "gone", "uid-gone")));
  EXPECT_TRUE(fs::exists(logs_.pod_log_directory("shop", "web", "uid-web") + "/app"));
}

TEST_F(ContainerGcTest, EvictingNonDeletedPodsTakesWhatTerminatedPodsLeft) {
  pods_.terminated = {"uid-web"};
  std::string sb = sandbox("web");
  container(sb, "app", 0);
  std::string newest = container(sb, "app", 1);
  stop_sandbox(sb);

  ASSERT_TRUE(gc().garbage_collect(true).ok());
  EXPECT_EQ(containers(), (std::set<std::string>{newest}));
  EXPECT_EQ(sandboxes(), (std::set<std::string>{sb}));

  ASSERT_TRUE(gc().garbage_collect(true, /*evict_non_deleted_pods=*/true).ok());
  EXPECT_TRUE(containers().empty());
  EXPECT_TRUE(sandboxes().empty());
}
