// DockerRuntime against the in-process model of dockerd (fake_docker.h): every call of the
// runtime seam, the errors runtime.h promises, the CNI runs of a sandbox (a fake plugin),
// the CRI log copies, and that containers knode did not create stay untouched.
#include "docker/docker_runtime.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "docker/convert.h"
#include "fake_docker.h"
#include "labels.h"

namespace knode::docker {
namespace {

namespace rt = knode::runtime;
using namespace std::chrono_literals;
using nlohmann::json;
using testing::FakeDocker;

constexpr char kPause[] = "127.0.0.1:5000/pause:3.10";
constexpr char kKubia[] = "127.0.0.1:5000/kubia:1";

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Polls `cond` until it holds or `limit` passes; the copier works on a thread of its own.
template <typename F>
bool eventually(F cond, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (auto wait = 1ms; std::chrono::steady_clock::now() < end; wait = std::min(wait * 2, 50ms)) {
    if (cond()) return true;
    std::this_thread::sleep_for(wait);
  }
  return cond();
}

class DockerRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(docker_.server().started());
    char tmpl[] = "/tmp/knode-docker-rt-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/bin");
    std::filesystem::create_directories(dir_ + "/net.d");
    std::filesystem::create_directories(dir_ + "/logs/app");
    // A plugin that records each command's environment and answers ADD with an address.
    const std::string plugin = dir_ + "/bin/fake-cni";
    std::ofstream(plugin)
        << "#!/bin/sh\n"
        << "env | grep ^CNI_ | sort > " << dir_ << "/cni.$CNI_COMMAND.env\n"
        << "cat > " << dir_ << "/cni.$CNI_COMMAND.stdin\n"
        << "echo $CNI_COMMAND >> " << dir_ << "/cni.log\n"
        << "[ -e " << dir_
        << "/cni.fail ] && { echo '{\"code\":7,\"msg\":\"bad config\"}'; exit 1; }\n"
        << "[ $CNI_COMMAND = ADD ] && echo "
           "'{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.88.0.7/24\"}]}'\n"
        << "exit 0\n";
    ::chmod(plugin.c_str(), 0755);
    std::ofstream(dir_ + "/net.d/10-test.conflist")
        << R"({"cniVersion":"1.0.0","name":"knode","plugins":[{"type":"fake-cni","capabilities":{"portMappings":true}}]})";
    docker_.add_registry_image(kPause);
    docker_.add_registry_image(kKubia);
    runtime_ = make();
  }
  void TearDown() override {
    runtime_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<DockerRuntime> make() {
    DockerOptions o;
    o.endpoint = docker_.endpoint();
    o.request_timeout = 5s;
    o.pod_infra_image = kPause;
    // An interface no namespace here has: an address read back from a namespace is then
    // none, whatever this machine's interfaces are.
    o.cni = {dir_ + "/net.d", {dir_ + "/bin"}, "knode-test0", 10s};
    o.log_retry = 50ms;
    auto r = DockerRuntime::connect(o);
    EXPECT_TRUE(r.ok()) << r.error();
    return r.ok() ? std::move(*r) : nullptr;
  }

  rt::PodSandboxConfig sandbox_config(const std::string& name = "web") {
    rt::PodSandboxConfig c;
    c.metadata = {name, name + "-uid", "default", 0};
    c.hostname = name;
    c.log_directory = dir_ + "/logs";
    c.labels = {{kubelet::kPodUidLabel, name + "-uid"},
                {kubelet::kPodNameLabel, name},
                {kubelet::kPodNamespaceLabel, "default"}};
    c.port_mappings = {{rt::Protocol::kTCP, 8080, 30080, ""}};
    return c;
  }

  rt::ContainerConfig container_config(uint32_t attempt = 0) {
    rt::ContainerConfig c;
    c.metadata = {"app", attempt};
    c.image.image = kKubia;
    c.labels = {{kubelet::kPodUidLabel, "web-uid"}, {kubelet::kContainerNameLabel, "app"}};
    c.annotations = {{kubelet::kRestartCountAnnotation, std::to_string(attempt)}};
    c.log_path = "app/" + std::to_string(attempt) + ".log";
    return c;
  }

  // A running pod with one running container; returns (sandbox, container).
  std::pair<std::string, std::string> running_pod() {
    auto sb = runtime_->run_pod_sandbox(sandbox_config());
    EXPECT_TRUE(sb.ok()) << sb.error();
    EXPECT_TRUE(runtime_->pull_image({kKubia, {}}, std::nullopt, nullptr).ok());
    auto id = runtime_->create_container(*sb, container_config(), sandbox_config());
    EXPECT_TRUE(id.ok()) << id.error();
    Status s = runtime_->start_container(*id);
    EXPECT_TRUE(s.ok()) << s.message();
    return {*sb, *id};
  }

  FakeDocker docker_;
  std::string dir_;
  std::unique_ptr<DockerRuntime> runtime_;
};

TEST_F(DockerRuntimeTest, NegotiatesTheApiVersionOnce) {
  EXPECT_EQ(runtime_->id_scheme(), "docker");
  auto v = runtime_->version();
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->runtime_name, "docker");
  EXPECT_EQ(v->runtime_version, "20.10.24");
  EXPECT_EQ(v->runtime_api_version, "1.41");
  ASSERT_TRUE(runtime_->status().ok());
  ASSERT_TRUE(runtime_->list_containers({}).ok());
  EXPECT_EQ(docker_.server().requests("GET", "/version").size(), 1u);
  for (const auto& r : docker_.server().requests()) {
    if (r.path != "/version") {
      EXPECT_TRUE(r.path.starts_with("/v1.41/")) << r.path;
    }
  }
}

TEST_F(DockerRuntimeTest, ANewerDaemonIsSpokenToInTheNewestVersionKnown) {
  docker_.set_versions("1.52", "1.44");
  ASSERT_TRUE(runtime_->list_pod_sandboxes({}).ok());
  EXPECT_EQ(docker_.server()
                .requests("GET", std::string("/v") + kMaxApiVersion + "/containers/json")
                .size(),
            1u);
}

TEST_F(DockerRuntimeTest, AnOldDaemonIsRefused) {
  docker_.set_versions("1.40", "1.12");
  auto v = runtime_->version();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().error_number(), ENOTSUP);
  EXPECT_EQ(runtime_->list_containers({}).status().error_number(), ENOTSUP);
}

TEST_F(DockerRuntimeTest, StatusAndCgroupDriver) {
  auto st = runtime_->status();
  ASSERT_TRUE(st.ok()) << st.error();
  EXPECT_TRUE(st->condition("RuntimeReady"));
  EXPECT_TRUE(st->condition("NetworkReady"));
  std::filesystem::remove(dir_ + "/net.d/10-test.conflist");
  st = runtime_->status();
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->condition("NetworkReady"));
  EXPECT_EQ(st->conditions[1].reason, "NetworkPluginNotReady");

  EXPECT_EQ(*runtime_->cgroup_driver(), rt::CgroupDriver::kCgroupfs);
  docker_.set_cgroup_driver("systemd");
  EXPECT_EQ(*runtime_->cgroup_driver(), rt::CgroupDriver::kSystemd);
  docker_.set_cgroup_driver("none");
  EXPECT_EQ(runtime_->cgroup_driver().status().error_number(), ENOTSUP);
}

TEST_F(DockerRuntimeTest, ADaemonThatIsDownIsConnectionRefused) {
  DockerOptions o;
  o.endpoint = "unix://" + dir_ + "/absent.sock";
  auto down = DockerRuntime::connect(o);
  ASSERT_TRUE(down.ok());  // lazily: knode starts before dockerd
  auto v = (*down)->version();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().error_number(), ECONNREFUSED) << v.error();
  EXPECT_EQ((*down)->list_pod_sandboxes({}).status().error_number(), ECONNREFUSED);
  EXPECT_FALSE(DockerRuntime::connect({.endpoint = "tcp://127.0.0.1:2375"}).ok());
}

TEST_F(DockerRuntimeTest, ASandboxIsAPauseContainerNetworkedByCni) {
  EXPECT_FALSE(docker_.has_image(kPause));
  auto sb = runtime_->run_pod_sandbox(sandbox_config());
  ASSERT_TRUE(sb.ok()) << sb.error();
  EXPECT_TRUE(docker_.has_image(kPause));  // pulled on demand
  json pause = docker_.container(*sb);
  EXPECT_EQ(pause["Name"], "/k8s_POD_web_default_web-uid_0");
  EXPECT_EQ(pause["HostConfig"]["NetworkMode"], "none");
  EXPECT_TRUE(pause["State"]["Running"].get<bool>());
  const std::string env = slurp(dir_ + "/cni.ADD.env");
  EXPECT_NE(env.find("CNI_NETNS=/proc/" + std::to_string(::getpid()) + "/ns/net\n"),
            std::string::npos)
      << env;
  EXPECT_NE(env.find("CNI_CONTAINERID=" + *sb + "\n"), std::string::npos);
  EXPECT_NE(env.find("K8S_POD_NAME=web;"), std::string::npos);
  EXPECT_NE(slurp(dir_ + "/cni.ADD.stdin")
                .find("\"portMappings\":[{\"containerPort\":8080,\"hostPort\":30080"),
            std::string::npos);

  auto st = runtime_->pod_sandbox_status(*sb);
  ASSERT_TRUE(st.ok()) << st.error();
  EXPECT_EQ(st->state, rt::SandboxState::kReady);
  EXPECT_EQ(st->ip, "10.88.0.7");
  EXPECT_EQ(st->metadata, sandbox_config().metadata);
  EXPECT_EQ(st->labels, sandbox_config().labels);

  auto listed = runtime_->list_pod_sandboxes(
      {"", rt::SandboxState::kReady, {{kubelet::kPodUidLabel, "web-uid"}}});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, *sb);
  EXPECT_TRUE(runtime_->list_pod_sandboxes({"", rt::SandboxState::kNotReady, {}})->empty());
  EXPECT_TRUE(runtime_->list_pod_sandboxes({"", std::nullopt, {{kubelet::kPodUidLabel, "other"}}})
                  ->empty());
  EXPECT_EQ(runtime_->list_pod_sandboxes({sb->substr(0, 12), std::nullopt, {}})->size(), 1u);

  ASSERT_TRUE(runtime_->stop_pod_sandbox(*sb).ok());
  EXPECT_EQ(slurp(dir_ + "/cni.log"), "ADD\nDEL\n");
  EXPECT_NE(slurp(dir_ + "/cni.DEL.env").find("CNI_NETNS=/proc/"),
            std::string::npos);  // while it still ran
  st = runtime_->pod_sandbox_status(*sb);
  EXPECT_EQ(st->state, rt::SandboxState::kNotReady);
  EXPECT_EQ(st->ip, "");
  ASSERT_TRUE(runtime_->stop_pod_sandbox(*sb).ok());  // idempotent
  ASSERT_TRUE(runtime_->remove_pod_sandbox(*sb).ok());
  EXPECT_FALSE(docker_.exists(*sb));
  EXPECT_TRUE(runtime_->remove_pod_sandbox(*sb).ok());  // gone is fine
  EXPECT_EQ(runtime_->pod_sandbox_status(*sb).status().error_number(), ENOENT);
  EXPECT_EQ(runtime_->stop_pod_sandbox(*sb).error_number(), ENOENT);
}

TEST_F(DockerRuntimeTest, ASandboxWhoseNetworkFailsIsRemoved) {
  std::ofstream(dir_ + "/cni.fail") << "";
  auto sb = runtime_->run_pod_sandbox(sandbox_config());
  ASSERT_FALSE(sb.ok());
  EXPECT_NE(sb.error().find("set up the pod network"), std::string::npos) << sb.error();
  EXPECT_NE(sb.error().find("bad config"), std::string::npos) << sb.error();
  EXPECT_TRUE(docker_.ids().empty());
}

TEST_F(DockerRuntimeTest, AHostNetworkSandboxRunsNoCni) {
  auto c = sandbox_config();
  c.namespaces.network = rt::NamespaceMode::kNode;
  c.hostname.clear();
  auto sb = runtime_->run_pod_sandbox(c);
  ASSERT_TRUE(sb.ok()) << sb.error();
  EXPECT_EQ(docker_.container(*sb)["HostConfig"]["NetworkMode"], "host");
  EXPECT_EQ(runtime_->pod_sandbox_status(*sb)->namespaces.network, rt::NamespaceMode::kNode);
  ASSERT_TRUE(runtime_->remove_pod_sandbox(*sb).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/cni.log"));
}

TEST_F(DockerRuntimeTest, AContainerRunsInItsSandboxAndLogsInCriFormat) {
  auto [sb, id] = running_pod();
  json c = docker_.container(id);
  EXPECT_EQ(c["Name"], "/k8s_app_web_default_web-uid_0");
  EXPECT_EQ(c["HostConfig"]["NetworkMode"], "container:" + sb);
  EXPECT_EQ(c["HostConfig"]["IpcMode"], "container:" + sb);
  const std::string log = dir_ + "/logs/app/0.log";
  EXPECT_EQ(c["Config"]["Labels"][kLogPathLabel], log);
  EXPECT_TRUE(std::filesystem::exists(log));  // before any output: the kubelet links it

  docker_.log(id, 1, "2026-12-01T10:00:02.000000001Z", "hello\n");
  docker_.log(id, 2, "2026-12-01T10:00:02.5Z", "partial");
  docker_.log(id, 2, "2026-12-01T10:00:02.6Z", " line\n");
  const std::string want =
      "2026-12-01T10:00:02.000000001Z stdout F hello\n"
      "2026-12-01T10:00:02.5Z stderr P partial\n"
      "2026-12-01T10:00:02.6Z stderr F  line\n";
  EXPECT_TRUE(eventually([&] { return slurp(log) == want; })) << slurp(log);

  auto st = runtime_->container_status(id);
  ASSERT_TRUE(st.ok()) << st.error();
  EXPECT_EQ(st->state, rt::ContainerState::kRunning);
  EXPECT_EQ(st->metadata, (rt::ContainerMetadata{"app", 0}));
  EXPECT_EQ(st->log_path, log);
  EXPECT_EQ(st->image.image, kKubia);
  EXPECT_TRUE(st->image_ref.starts_with("127.0.0.1:5000/kubia@sha256:")) << st->image_ref;
  EXPECT_EQ(st->annotations, container_config().annotations);
  auto listed = runtime_->list_containers(
      {"", sb, rt::ContainerState::kRunning, {{kubelet::kContainerNameLabel, "app"}}});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].pod_sandbox_id, sb);
  EXPECT_EQ((*listed)[0].metadata.name, "app");

  // It ends: the last lines are copied, the copy finishes, the status says how it ended.
  docker_.log(id, 1, "2026-12-01T10:00:07Z", "bye\n");
  docker_.exit_container(id, 2);
  EXPECT_TRUE(eventually([&] { return runtime_->active_log_copies() == 0; }));
  EXPECT_EQ(slurp(log), want + "2026-12-01T10:00:07Z stdout F bye\n");
  st = runtime_->container_status(id);
  EXPECT_EQ(st->state, rt::ContainerState::kExited);
  EXPECT_EQ(st->reason, "Error");
  EXPECT_EQ(st->exit_code, 2);
  ASSERT_TRUE(runtime_->remove_container(id).ok());
  EXPECT_FALSE(docker_.exists(id));
  EXPECT_TRUE(runtime_->remove_container(id).ok());
  EXPECT_EQ(runtime_->container_status(id).status().error_number(), ENOENT);
}

// The status that first says a container exited comes with its whole log: the kubelet
// reads the log's end at once for FallbackToLogsOnError (the runtime tier's
// termination-message test once found the log without its last lines there).
TEST_F(DockerRuntimeTest, AnExitedContainersStatusComesWithItsWholeLog) {
  auto [sb, id] = running_pod();
  const std::string log = dir_ + "/logs/app/0.log";
  docker_.log(id, 1, "2026-12-01T10:00:02Z", "first\n");
  EXPECT_TRUE(eventually([&] { return !slurp(log).empty(); }));
  // A burst at the end, then the exit: the copy is still writing when the status is asked.
  std::string want = "2026-12-01T10:00:02Z stdout F first\n";
  for (int i = 0; i < 3000; ++i) {
    docker_.log(id, 1, "2026-12-01T10:00:03Z", "line " + std::to_string(i) + "\n");
    want += "2026-12-01T10:00:03Z stdout F line " + std::to_string(i) + "\n";
  }
  docker_.exit_container(id, 3);
  auto st = runtime_->container_status(id);
  ASSERT_TRUE(st.ok()) << st.error();
  ASSERT_EQ(st->state, rt::ContainerState::kExited);
  EXPECT_EQ(slurp(log), want);
}

TEST_F(DockerRuntimeTest, ExitReasonsOomKilledAndCompleted) {
  auto [sb, id] = running_pod();
  docker_.exit_container(id, 137, true);
  EXPECT_EQ(runtime_->container_status(id)->reason, "OOMKilled");
  auto second = runtime_->create_container(sb, container_config(1), sandbox_config());
  ASSERT_TRUE(second.ok()) << second.error();
  ASSERT_TRUE(runtime_->start_container(*second).ok());
  docker_.exit_container(*second, 0);
  EXPECT_EQ(runtime_->container_status(*second)->reason, "Completed");
}

TEST_F(DockerRuntimeTest, AContainerThatCannotStartIsAStartError) {
  auto sb = runtime_->run_pod_sandbox(sandbox_config());
  ASSERT_TRUE(runtime_->pull_image({kKubia, {}}, std::nullopt, nullptr).ok());
  auto c = container_config();
  c.command = {"/missing"};
  auto id = runtime_->create_container(*sb, c, sandbox_config());
  ASSERT_TRUE(id.ok());
  Status s = runtime_->start_container(*id);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("docker StartContainer"), std::string::npos);
  EXPECT_NE(s.message().find("500"), std::string::npos) << s.message();
  auto st = runtime_->container_status(*id);
  EXPECT_EQ(st->state, rt::ContainerState::kExited);
  EXPECT_EQ(st->reason, "StartError");
  EXPECT_EQ(st->exit_code, 127);
}

TEST_F(DockerRuntimeTest, StopPassesTheGracePeriodAndStopPodSandboxKillsTheRest) {
  auto [sb, id] = running_pod();
  ASSERT_TRUE(runtime_->stop_container(id, 7).ok());
  EXPECT_EQ(docker_.container(id)["StoppedWith"], "7");
  ASSERT_TRUE(runtime_->stop_container(id, 7).ok());  // stopped already: 304
  auto second = runtime_->create_container(sb, container_config(1), sandbox_config());
  ASSERT_TRUE(runtime_->start_container(*second).ok());
  ASSERT_TRUE(runtime_->stop_pod_sandbox(sb).ok());
  EXPECT_EQ(docker_.container(*second)["StoppedWith"], "0");
  EXPECT_FALSE(docker_.container(sb)["State"]["Running"].get<bool>());
  // Removing the sandbox removes its containers.
  ASSERT_TRUE(runtime_->remove_pod_sandbox(sb).ok());
  EXPECT_TRUE(docker_.ids().empty());
}

TEST_F(DockerRuntimeTest, ExecSyncCollectsOutputAndExitCode) {
  auto [sb, id] = running_pod();
  auto r = runtime_->exec_sync(id, {"echo", "ready", "now"}, 5);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->stdout_, "ready now\n");
  EXPECT_EQ(r->stderr_, "");
  EXPECT_EQ(r->exit_code, 0);
  r = runtime_->exec_sync(id, {"fail"}, 0);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->stderr_, "boom\n");
  EXPECT_EQ(r->exit_code, 3);

  const auto t0 = std::chrono::steady_clock::now();
  r = runtime_->exec_sync(id, {"hang"}, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error_number(), ETIMEDOUT) << r.error();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  EXPECT_EQ(runtime_->exec_sync("nope-nope-nope", {"echo"}, 1).status().error_number(), ENOENT);
  docker_.exit_container(id, 0);
  EXPECT_FALSE(runtime_->exec_sync(id, {"echo"}, 1).ok());  // not running
}

TEST_F(DockerRuntimeTest, ReopenMakesANewFileAfterRotation) {
  auto [sb, id] = running_pod();
  const std::string log = dir_ + "/logs/app/0.log";
  docker_.log(id, 1, "2026-12-01T10:00:02Z", "before\n");
  ASSERT_TRUE(eventually([&] { return !slurp(log).empty(); }));
  std::filesystem::rename(log, log + ".20261201-100003");
  ASSERT_TRUE(runtime_->reopen_container_log(id).ok());
  EXPECT_TRUE(std::filesystem::exists(log));
  docker_.log(id, 1, "2026-12-01T10:00:04Z", "after\n");
  EXPECT_TRUE(eventually([&] { return slurp(log) == "2026-12-01T10:00:04Z stdout F after\n"; }))
      << slurp(log);
  EXPECT_EQ(slurp(log + ".20261201-100003"), "2026-12-01T10:00:02Z stdout F before\n");
  docker_.exit_container(id, 0);
  EXPECT_EQ(runtime_->reopen_container_log(id).error_number(), EIO);  // only running ones
}

TEST_F(DockerRuntimeTest, ARestartedKnodeResumesTheLogCopyWithoutDuplicates) {
  auto [sb, id] = running_pod();
  const std::string log = dir_ + "/logs/app/0.log";
  docker_.log(id, 1, "2026-12-01T10:00:02Z", "one\n");
  ASSERT_TRUE(eventually([&] { return slurp(log) == "2026-12-01T10:00:02Z stdout F one\n"; }));
  runtime_.reset();  // knode stops; the container runs on
  EXPECT_TRUE(docker_.container(id)["State"]["Running"].get<bool>());
  docker_.log(id, 1, "2026-12-01T10:00:03Z", "two\n");

  runtime_ = make();
  auto listed = runtime_->list_containers({});  // the relist after the restart
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, id);
  EXPECT_EQ((*listed)[0].pod_sandbox_id, sb);
  EXPECT_EQ(runtime_->list_pod_sandboxes({})->size(), 1u);
  docker_.log(id, 1, "2026-12-01T10:00:04Z", "three\n");
  const std::string want =
      "2026-12-01T10:00:02Z stdout F one\n2026-12-01T10:00:03Z stdout F two\n2026-12-01T10:00:04Z "
      "stdout F three\n";
  EXPECT_TRUE(eventually([&] { return slurp(log) == want; })) << slurp(log);
  // The resumed copy asked from the last line it had.
  auto logs = docker_.server().requests("GET", "/v1.41/containers/" + id + "/logs");
  ASSERT_FALSE(logs.empty());
  EXPECT_EQ(logs.back().query.at("since"), "1796119202.000000000");
}

TEST_F(DockerRuntimeTest, ContainersKnodeDidNotCreateAreNeverTouched) {
  const std::string foreign = docker_.add_foreign_container("my-nginx", true);
  auto [sb, id] = running_pod();
  auto sandboxes = runtime_->list_pod_sandboxes({});
  auto containers = runtime_->list_containers({});
  ASSERT_TRUE(sandboxes.ok() && containers.ok());
  EXPECT_EQ(sandboxes->size(), 1u);
  ASSERT_EQ(containers->size(), 1u);
  EXPECT_EQ((*containers)[0].id, id);
  EXPECT_EQ(runtime_->container_status(foreign).status().error_number(), ENOENT);
  EXPECT_EQ(runtime_->pod_sandbox_status(foreign).status().error_number(), ENOENT);
  EXPECT_EQ(runtime_->stop_container(foreign, 0).error_number(), ENOENT);
  EXPECT_EQ(runtime_->stop_pod_sandbox(foreign).error_number(), ENOENT);
  EXPECT_EQ(runtime_->exec_sync(foreign, {"echo", "x"}, 1).status().error_number(), ENOENT);
  EXPECT_EQ(runtime_->reopen_container_log(foreign).error_number(), ENOENT);
  EXPECT_EQ(runtime_->container_stats(foreign).status().error_number(), ENOENT);
  EXPECT_TRUE(runtime_->remove_container(foreign).ok());  // as if it did not exist
  EXPECT_TRUE(runtime_->remove_pod_sandbox(foreign).ok());
  // A container ID is not a sandbox ID, nor the other way round.
  EXPECT_EQ(runtime_->pod_sandbox_status(id).status().error_number(), ENOENT);
  EXPECT_EQ(runtime_->container_status(sb).status().error_number(), ENOENT);
  json f = docker_.container(foreign);
  ASSERT_FALSE(f.is_null());
  EXPECT_TRUE(f["State"]["Running"].get<bool>());
  EXPECT_FALSE(f.contains("StoppedWith"));
  EXPECT_TRUE(docker_.server().requests("POST", "/v1.41/containers/" + foreign + "/*").empty());
  EXPECT_TRUE(docker_.server().requests("DELETE", "/v1.41/containers/" + foreign).empty());
  EXPECT_TRUE(docker_.exec_commands().empty());
}

TEST_F(DockerRuntimeTest, ImagesPullWithCredentialsInspectListRemove) {
  auto pulled = runtime_->pull_image(
      {kKubia, {}}, rt::AuthConfig{"alice", "s3cret", "", "127.0.0.1:5000", "", ""}, nullptr);
  ASSERT_TRUE(pulled.ok()) << pulled.error();
  EXPECT_TRUE(pulled->starts_with("sha256:"));
  auto pulls = docker_.server().requests("POST", "/v1.41/images/create");
  ASSERT_EQ(pulls.size(), 1u);
  EXPECT_EQ(pulls[0].query.at("fromImage"), "127.0.0.1:5000/kubia");
  EXPECT_EQ(pulls[0].query.at("tag"), "1");
  EXPECT_EQ(
      pulls[0].headers.at("x-registry-auth"),
      base64(R"({"password":"s3cret","serveraddress":"127.0.0.1:5000","username":"alice"})", true));

  auto missing = runtime_->pull_image({"127.0.0.1:5000/nope:1", {}}, std::nullopt, nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().error_number(), ENOENT) << missing.error();
  docker_.fail_next_pull_in_stream("unauthorized: authentication required");
  auto denied = runtime_->pull_image({kKubia, {}}, std::nullopt, nullptr);
  ASSERT_FALSE(denied.ok());
  EXPECT_NE(denied.error().find("unauthorized: authentication required"), std::string::npos)
      << denied.error();

  auto img = runtime_->image_status({kKubia, {}});
  ASSERT_TRUE(img.ok() && img->has_value());
  EXPECT_EQ((*img)->id, *pulled);
  EXPECT_EQ((*img)->repo_tags, std::vector<std::string>{kKubia});
  EXPECT_FALSE((*img)->pinned);
  EXPECT_FALSE(runtime_->image_status({"127.0.0.1:5000/absent:1", {}})->has_value());
  ASSERT_TRUE(runtime_->pull_image({kPause, {}}, std::nullopt, nullptr).ok());
  auto all = runtime_->list_images();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  for (const auto& i : *all)
    EXPECT_EQ(i.pinned, i.repo_tags == std::vector<std::string>{kPause}) << i.id;
  auto fs = runtime_->image_fs_info();
  ASSERT_TRUE(fs.ok());
  EXPECT_EQ((*fs)[0].mountpoint, "/var/lib/docker");
  EXPECT_EQ((*fs)[0].used_bytes, 123456u);

  ASSERT_TRUE(runtime_->remove_image({kKubia, {}}).ok());
  EXPECT_FALSE(docker_.has_image(kKubia));
  EXPECT_TRUE(runtime_->remove_image({kKubia, {}}).ok());  // gone is fine
}

TEST_F(DockerRuntimeTest, StatsOfAContainer) {
  auto [sb, id] = running_pod();
  auto s = runtime_->container_stats(id);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->id, id);
  EXPECT_EQ(s->cpu_usage_core_nanoseconds, 5000000u);
  EXPECT_EQ(s->memory_working_set_bytes, 8000u);
  EXPECT_EQ(s->writable_layer_used_bytes, 4096u);
}

TEST_F(DockerRuntimeTest, ANameStillTakenGetsASuffix) {
  auto sb = runtime_->run_pod_sandbox(sandbox_config());
  ASSERT_TRUE(sb.ok());
  auto again = runtime_->run_pod_sandbox(sandbox_config());  // same pod, same attempt
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_NE(*again, *sb);
  EXPECT_TRUE(docker_.container(*again)["Name"].get<std::string>().starts_with(
      "/k8s_POD_web_default_web-uid_0_"));
  EXPECT_EQ(runtime_->pod_sandbox_status(*again)->metadata, sandbox_config().metadata);
}

}  // namespace
}  // namespace knode::docker
