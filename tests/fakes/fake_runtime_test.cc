// The in-memory runtime the kubelet's tests drive: it must move through CRI's states and
// fail where a real runtime fails, or kubelet tests would pass against a runtime that
// does not exist.
#include "fakes/fake_runtime.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <thread>

#include "fakes/fake_clock.h"

namespace rt = knode::runtime;
using knode::Status;
using knode::testing::FakeClock;
using knode::testing::FakeRuntime;
using Call = FakeRuntime::Call;
using namespace std::chrono_literals;

namespace {

constexpr const char* kPause = "127.0.0.1:5000/pause:3.10";
constexpr const char* kNginx = "127.0.0.1:5000/nginx:1.27";

rt::PodSandboxConfig sandbox(const std::string& name, uint32_t attempt = 0) {
  rt::PodSandboxConfig c;
  c.metadata = {name, name + "-uid", "default", attempt};
  c.log_directory = "/var/log/pods/default_" + name + "_" + name + "-uid";
  c.labels = {{"io.kubernetes.pod.name", name}};
  return c;
}

rt::ContainerConfig container(const std::string& name, const std::string& image,
                              uint32_t attempt = 0) {
  rt::ContainerConfig c;
  c.metadata = {name, attempt};
  c.image.image = image;
  c.log_path = name + "/" + std::to_string(attempt) + ".log";
  c.labels = {{"io.kubernetes.container.name", name}};
  return c;
}

int64_t nanos(const FakeClock& clock) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             clock.system_now().time_since_epoch())
      .count();
}

class FakeRuntimeTest : public ::testing::Test {
 protected:
  FakeRuntimeTest() : rt_(clock_) {
    rt_.add_image(kPause, /*present=*/true);
    rt_.add_image(kNginx);
  }
  FakeClock clock_;
  FakeRuntime rt_;
};

}  // namespace

TEST_F(FakeRuntimeTest, PodLifecycleThroughCriStates) {
  const auto sb_config = sandbox("web");
  auto sb = rt_.run_pod_sandbox(sb_config);
  ASSERT_TRUE(sb.ok()) << sb.error();
  auto sbs = rt_.pod_sandbox_status(*sb);
  ASSERT_TRUE(sbs.ok());
  EXPECT_EQ(sbs->state, rt::SandboxState::kReady);
  EXPECT_FALSE(sbs->ip.empty());
  EXPECT_EQ(sbs->created_at, nanos(clock_));
  EXPECT_EQ(rt_.sandbox_config(*sb), sb_config);

  ASSERT_TRUE(rt_.pull_image({kNginx, {}}, std::nullopt, &sb_config).ok());
  const auto c_config = container("nginx", kNginx);
  auto c = rt_.create_container(*sb, c_config, sb_config);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(rt_.container_status(*c)->state, rt::ContainerState::kCreated);
  EXPECT_EQ(rt_.container_config(*c), c_config);

  clock_.advance(2s);
  ASSERT_TRUE(rt_.start_container(*c).ok());
  auto st = rt_.container_status(*c);
  EXPECT_EQ(st->state, rt::ContainerState::kRunning);
  EXPECT_EQ(st->started_at, nanos(clock_));
  EXPECT_EQ(st->log_path, sb_config.log_directory + "/nginx/0.log");
  EXPECT_FALSE(st->image_ref.empty());

  clock_.advance(3s);
  rt_.exit_container(*c, 1, "Error", "boom");
  st = rt_.container_status(*c);
  EXPECT_EQ(st->state, rt::ContainerState::kExited);
  EXPECT_EQ(st->exit_code, 1);
  EXPECT_EQ(st->reason, "Error");
  EXPECT_EQ(st->message, "boom");
  EXPECT_EQ(st->finished_at, nanos(clock_));
  EXPECT_THROW(rt_.exit_container(*c, 0), std::invalid_argument);  // no longer running

  ASSERT_TRUE(rt_.stop_pod_sandbox(*sb).ok());
  EXPECT_EQ(rt_.pod_sandbox_status(*sb)->state, rt::SandboxState::kNotReady);
  ASSERT_TRUE(rt_.remove_pod_sandbox(*sb).ok());
  EXPECT_EQ(rt_.pod_sandbox_status(*sb).status().error_number(), ENOENT);
  EXPECT_EQ(rt_.container_status(*c).status().error_number(), ENOENT);  // went with it

  EXPECT_EQ(rt_.calls(), (std::vector<Call>{{"RunPodSandbox", "default/web"},
                                            {"PodSandboxStatus", *sb},
                                            {"PullImage", kNginx},
                                            {"CreateContainer", *sb + "/nginx"},
                                            {"ContainerStatus", *c},
                                            {"StartContainer", *c},
                                            {"ContainerStatus", *c},
                                            {"ContainerStatus", *c},
                                            {"StopPodSandbox", *sb},
                                            {"PodSandboxStatus", *sb},
                                            {"RemovePodSandbox", *sb},
                                            {"PodSandboxStatus", *sb},
                                            {"ContainerStatus", *c}}));
}

TEST_F(FakeRuntimeTest, StoppingKillsRunningContainers) {
  auto sb = rt_.run_pod_sandbox(sandbox("web"));
  auto a = rt_.create_container(*sb, container("a", kPause), sandbox("web"));
  auto b = rt_.create_container(*sb, container("b", kPause), sandbox("web"));
  ASSERT_TRUE(rt_.start_container(*a).ok());
  ASSERT_TRUE(rt_.start_container(*b).ok());

  rt_.set_stop_exit_code(143);
  ASSERT_TRUE(rt_.stop_container(*a, 30).ok());
  EXPECT_EQ(rt_.stop_timeout(*a), 30);
  EXPECT_EQ(rt_.container_status(*a)->exit_code, 143);
  ASSERT_TRUE(rt_.stop_container(*a, 30).ok());  // again: fine

  // A running container cannot be removed, nor its ready sandbox.
  EXPECT_EQ(rt_.remove_container(*b).error_number(), EIO);
  EXPECT_EQ(rt_.remove_pod_sandbox(*sb).error_number(), EIO);
  ASSERT_TRUE(rt_.stop_pod_sandbox(*sb).ok());
  EXPECT_EQ(rt_.container_status(*b)->state, rt::ContainerState::kExited);
  ASSERT_TRUE(rt_.remove_container(*b).ok());
  ASSERT_TRUE(rt_.remove_container(*b).ok());  // already gone: fine
  EXPECT_EQ(rt_.stop_pod_sandbox("sb-404").error_number(), ENOENT);
  EXPECT_TRUE(rt_.remove_pod_sandbox("sb-404").ok());
}

TEST_F(FakeRuntimeTest, ImagesMustBePulledAndUnknownOnesAreNotFound) {
  auto sb = rt_.run_pod_sandbox(sandbox("web"));
  auto c = rt_.create_container(*sb, container("nginx", kNginx), sandbox("web"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().error_number(), ENOENT);
  EXPECT_EQ(*rt_.image_status({kNginx, {}}), std::nullopt);

  auto missing = rt_.pull_image({"127.0.0.1:5000/nope:1", {}}, std::nullopt, nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().error_number(), ENOENT);
  EXPECT_NE(missing.error().find("not found"), std::string::npos) << missing.error();

  rt_.set_pull_error(kNginx, Status::Error("CRI PullImage: Unknown: 401 Unauthorized", EACCES));
  const rt::AuthConfig auth{"u", "p", "", "127.0.0.1:5000", "", ""};
  auto denied = rt_.pull_image({kNginx, {}}, auth, nullptr);
  EXPECT_EQ(denied.status().error_number(), EACCES);
  EXPECT_EQ(rt_.last_pull_auth(), auth);
  EXPECT_FALSE(rt_.image_present(kNginx));
  rt_.set_pull_error(kNginx, Status::Ok());
  auto ref = rt_.pull_image({kNginx, {}}, std::nullopt, nullptr);
  ASSERT_TRUE(ref.ok()) << ref.error();
  auto img = rt_.image_status({kNginx, {}});
  ASSERT_TRUE(img.ok() && img->has_value());
  EXPECT_EQ((*img)->id, *ref);
  EXPECT_EQ(rt_.image_status({*ref, {}})->value().repo_tags, std::vector<std::string>{kNginx});
  EXPECT_EQ(rt_.list_images()->size(), 2u);

  ASSERT_TRUE(rt_.remove_image({kNginx, {}}).ok());
  EXPECT_FALSE(rt_.image_present(kNginx));
  EXPECT_EQ(rt_.list_images()->size(), 1u);
}

TEST_F(FakeRuntimeTest, FailNextFailsOneCallAndChangesNothing) {
  auto sb = rt_.run_pod_sandbox(sandbox("web"));
  auto c = rt_.create_container(*sb, container("a", kPause), sandbox("web"));
  rt_.fail_next("StartContainer",
                Status::Error("CRI StartContainer: DeadlineExceeded: slow", ETIMEDOUT));
  rt_.fail_next("StartContainer", Status::Error("CRI StartContainer: Unknown: again", EIO));
  EXPECT_EQ(rt_.start_container(*c).error_number(), ETIMEDOUT);
  EXPECT_EQ(rt_.container_status(*c)->state, rt::ContainerState::kCreated);
  EXPECT_EQ(rt_.start_container(*c).error_number(), EIO);
  EXPECT_TRUE(rt_.start_container(*c).ok());
  EXPECT_EQ(rt_.count("StartContainer"), 3);  // failed calls are logged too
  EXPECT_THROW(rt_.fail_next("StartContainers", Status::Error("x", EIO)), std::invalid_argument);

  rt_.fail_next("Version", Status::Error("CRI Version: Unavailable: down", ECONNREFUSED));
  EXPECT_EQ(rt_.version().status().error_number(), ECONNREFUSED);
  EXPECT_TRUE(rt_.version().ok());
}

TEST_F(FakeRuntimeTest, ExecAnswersWhatWasScripted) {
  auto sb = rt_.run_pod_sandbox(sandbox("web"));
  auto a = rt_.create_container(*sb, container("a", kPause), sandbox("web"));
  auto b = rt_.create_container(*sb, container("b", kPause), sandbox("web"));
  const std::vector<std::string> probe{"cat", "/tmp/healthy"};
  EXPECT_EQ(rt_.exec_sync(*a, probe, 1).status().error_number(), EIO);  // not running
  ASSERT_TRUE(rt_.start_container(*a).ok());
  ASSERT_TRUE(rt_.start_container(*b).ok());

  auto unscripted = rt_.exec_sync(*a, probe, 1);
  ASSERT_FALSE(unscripted.ok());
  EXPECT_NE(unscripted.error().find("cat /tmp/healthy"), std::string::npos);

  rt_.script_exec("", probe, rt::ExecResult{"ok\n", "", 0});
  rt_.script_exec(*b, probe, rt::ExecResult{"", "No such file\n", 1});
  EXPECT_EQ(*rt_.exec_sync(*a, probe, 1), (rt::ExecResult{"ok\n", "", 0}));
  EXPECT_EQ(rt_.exec_sync(*b, probe, 1)->exit_code, 1);
  rt_.script_exec("", probe, knode::Status::Error("CRI ExecSync: DeadlineExceeded: x", ETIMEDOUT));
  EXPECT_EQ(rt_.exec_sync(*a, probe, 1).status().error_number(), ETIMEDOUT);
  EXPECT_EQ(rt_.exec_sync("ctr-404", probe, 1).status().error_number(), ENOENT);
}

TEST_F(FakeRuntimeTest, ListsFilterByIdStateSandboxAndLabels) {
  auto web = rt_.run_pod_sandbox(sandbox("web"));
  auto db = rt_.run_pod_sandbox(sandbox("db"));
  ASSERT_TRUE(rt_.stop_pod_sandbox(*db).ok());
  auto a = rt_.create_container(*web, container("a", kPause), sandbox("web"));
  auto b = rt_.create_container(*web, container("b", kPause), sandbox("web"));
  ASSERT_TRUE(rt_.start_container(*a).ok());

  EXPECT_EQ(rt_.list_pod_sandboxes()->size(), 2u);
  auto ready = rt_.list_pod_sandboxes({"", rt::SandboxState::kReady, {}});
  ASSERT_EQ(ready->size(), 1u);
  EXPECT_EQ((*ready)[0].id, *web);
  auto by_label = rt_.list_pod_sandboxes({"", std::nullopt, {{"io.kubernetes.pod.name", "db"}}});
  ASSERT_EQ(by_label->size(), 1u);
  EXPECT_EQ((*by_label)[0].id, *db);
  EXPECT_EQ(rt_.list_pod_sandboxes({*db, std::nullopt, {}})->size(), 1u);

  EXPECT_EQ(rt_.list_containers({"", *web, std::nullopt, {}})->size(), 2u);
  EXPECT_EQ(rt_.list_containers({"", *db, std::nullopt, {}})->size(), 0u);
  auto running = rt_.list_containers({"", "", rt::ContainerState::kRunning, {}});
  ASSERT_EQ(running->size(), 1u);
  EXPECT_EQ((*running)[0].id, *a);
  EXPECT_EQ((*running)[0].pod_sandbox_id, *web);
  auto named = rt_.list_containers({"", "", std::nullopt, {{"io.kubernetes.container.name", "b"}}});
  ASSERT_EQ(named->size(), 1u);
  EXPECT_EQ((*named)[0].id, *b);
}

TEST_F(FakeRuntimeTest, NamesAreReservedPerAttempt) {
  auto sb = rt_.run_pod_sandbox(sandbox("web"));
  EXPECT_EQ(rt_.run_pod_sandbox(sandbox("web")).status().error_number(), EIO);
  EXPECT_TRUE(rt_.run_pod_sandbox(sandbox("web", 1)).ok());
  ASSERT_TRUE(rt_.create_container(*sb, container("a", kPause), sandbox("web")).ok());
  EXPECT_FALSE(rt_.create_container(*sb, container("a", kPause), sandbox("web")).ok());
  EXPECT_TRUE(rt_.create_container(*sb, container("a", kPause, 1), sandbox("web")).ok());
  ASSERT_TRUE(rt_.stop_pod_sandbox(*sb).ok());
  // A sandbox that is not ready takes no new containers.
  auto not_ready = rt_.create_container(*sb, container("b", kPause), sandbox("web"));
  EXPECT_EQ(not_ready.status().error_number(), EIO);
  EXPECT_EQ(rt_.create_container("sb-404", container("b", kPause), sandbox("web"))
                .status()
                .error_number(),
            ENOENT);
}

TEST_F(FakeRuntimeTest, HostNetworkSandboxHasNoPodIp) {
  auto config = sandbox("node-exporter");
  config.namespaces.network = rt::NamespaceMode::kNode;
  auto sb = rt_.run_pod_sandbox(config);
  EXPECT_EQ(rt_.pod_sandbox_status(*sb)->ip, "");
  EXPECT_EQ(rt_.pod_sandbox_status(*sb)->namespaces.network, rt::NamespaceMode::kNode);
}

TEST_F(FakeRuntimeTest, RuntimeLevelAnswersAreScriptable) {
  EXPECT_EQ(rt_.id_scheme(), "fake");
  EXPECT_TRUE(rt_.status()->condition("RuntimeReady"));
  EXPECT_EQ(*rt_.cgroup_driver(), rt::CgroupDriver::kCgroupfs);
  rt_.set_version({"0.1.0", "containerd", "v1.6.20", "v1"});
  EXPECT_EQ(rt_.id_scheme(), "containerd");
  rt_.set_status({{{"RuntimeReady", true, "", ""}, {"NetworkReady", false, "NoCNI", ""}}});
  EXPECT_FALSE(rt_.status()->condition("NetworkReady"));
  rt_.set_cgroup_driver(Status::Error("CRI RuntimeConfig: Unimplemented: x", ENOTSUP));
  EXPECT_EQ(rt_.cgroup_driver().status().error_number(), ENOTSUP);
  rt_.set_image_fs({{"/var/lib/containerd", 10, 100}});
  EXPECT_EQ(rt_.image_fs_info()->at(0).used_bytes, 10u);

  auto sb = rt_.run_pod_sandbox(sandbox("web"));
  auto c = rt_.create_container(*sb, container("a", kPause), sandbox("web"));
  EXPECT_EQ(rt_.container_stats(*c)->id, *c);
  rt_.set_stats(*c, {*c, 1, 2, 3, 4});
  EXPECT_EQ(rt_.container_stats(*c)->memory_working_set_bytes, 3u);
  EXPECT_EQ(rt_.reopen_container_log(*c).error_number(), EIO);  // not running
  ASSERT_TRUE(rt_.start_container(*c).ok());
  EXPECT_TRUE(rt_.reopen_container_log(*c).ok());
}

TEST_F(FakeRuntimeTest, ImagesByIdPinnedAndUnknownContainers) {
  // A container may name its image by the ID ensure_image returns, as with containerd.
  const std::string id = rt_.image_id(kPause);
  rt_.set_image_pinned(kPause, true);
  auto images = rt_.list_images();
  ASSERT_EQ(images->size(), 1u);
  EXPECT_TRUE(images->at(0).pinned);
  EXPECT_EQ(images->at(0).id, id);
  auto sb = rt_.run_pod_sandbox(sandbox("web"));
  auto c = rt_.create_container(*sb, container("a", id), sandbox("web"));
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(rt_.container_status(*c)->image_ref, id);

  // A container the runtime lost track of becomes exited once stopped.
  ASSERT_TRUE(rt_.start_container(*c).ok());
  rt_.set_container_unknown(*c);
  EXPECT_EQ(rt_.container_status(*c)->state, rt::ContainerState::kUnknown);
  ASSERT_TRUE(rt_.stop_container(*c, 5).ok());
  EXPECT_EQ(rt_.container_status(*c)->state, rt::ContainerState::kExited);
}

TEST_F(FakeRuntimeTest, ReopenHookAndHeldPulls) {
  auto sb = rt_.run_pod_sandbox(sandbox("web"));
  auto c = rt_.create_container(*sb, container("a", kPause), sandbox("web"));
  ASSERT_TRUE(rt_.start_container(*c).ok());
  std::vector<std::string> reopened;
  rt_.on_reopen_log([&](const std::string& id, const std::string& path) {
    reopened.push_back(id + " " + path);
  });
  ASSERT_TRUE(rt_.reopen_container_log(*c).ok());
  EXPECT_EQ(reopened, (std::vector<std::string>{*c + " /var/log/pods/default_web_web-uid/a/0.log"}));

  rt_.hold_pulls(kNginx);
  knode::Result<std::string> pulled = std::string();
  std::thread t([&] { pulled = rt_.pull_image({kNginx, {}}, std::nullopt, nullptr); });
  ASSERT_TRUE(rt_.wait_for_calls("PullImage", 1));
  EXPECT_FALSE(rt_.image_present(kNginx));  // still in flight
  EXPECT_TRUE(rt_.image_status({kPause, {}}).ok());  // other calls go on meanwhile
  rt_.release_pulls(kNginx);
  t.join();
  EXPECT_TRUE(pulled.ok());
  EXPECT_TRUE(rt_.image_present(kNginx));
  EXPECT_EQ(rt_.pull_auths(), (std::vector<std::optional<rt::AuthConfig>>{std::nullopt}));
}
