// DockerRuntime against a real dockerd (runtime tier). run_dockerd_test.py starts dockerd,
// a registry and knode-cni's configuration in a network namespace of its own and runs this
// binary inside that namespace with:
//   KNODE_DOCKER_ENDPOINT        dockerd's socket
//   KNODE_DOCKER_CNI_CONF/_BIN   knode-cni's conflist directory and plugin directory
//   KNODE_DOCKER_IPAM_DIR        host-local's reservations (knode-cni --data-dir)
//   KNODE_DOCKER_POD_CIDR        10.88.0.0/24
//   KNODE_DOCKER_PAUSE/_KUBIA/_BUSYBOX   the test images in the registry
//   KNODE_DOCKER_KUBIA_DIGEST    kubia's manifest digest
//   KNODE_DOCKER_LOG_DIR         where pod logs go
//   KNODE_DOCKER_CGROUP_PARENT   the cgroup the test's pods live under
// Without them every test skips.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "docker/convert.h"
#include "docker/docker_runtime.h"
#include "docker/http_client.h"
#include "labels.h"

namespace knode::docker {
namespace {

namespace rt = knode::runtime;
using namespace std::chrono_literals;
using nlohmann::json;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <typename F>
bool eventually(F cond, std::chrono::milliseconds limit = 20s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (auto wait = 5ms; std::chrono::steady_clock::now() < end; wait = std::min(wait * 2, 100ms)) {
    if (cond()) return true;
    std::this_thread::sleep_for(wait);
  }
  return cond();
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// A real HTTP/1.0 GET from this (the node's) network namespace; the answer's body, or
// what went wrong.
std::string http_get(const std::string& ip, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, 3000) != 1) {
    ::close(fd);
    return "connect timed out";
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    ::close(fd);
    return std::string("connect: ") + std::strerror(err);
  }
  const std::string req = "GET / HTTP/1.0\r\nHost: " + ip + "\r\n\r\n";
  (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (;;) {
    p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 3000) != 1) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? out : out.substr(body + 4);
}

class DockerdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env("KNODE_DOCKER_ENDPOINT").empty()) {
      GTEST_SKIP() << "needs a dockerd: run through tests/kubelet/docker/run_dockerd_test.py";
    }
    runtime_ = make();
    ASSERT_NE(runtime_, nullptr);
  }

  void TearDown() override {
    if (!runtime_) return;
    // Whatever a failed test left: its pods go, network included.
    auto sandboxes = runtime_->list_pod_sandboxes({});
    if (sandboxes.ok()) {
      for (const auto& s : *sandboxes) EXPECT_TRUE(runtime_->remove_pod_sandbox(s.id).ok());
    }
    auto containers = runtime_->list_containers({});
    if (containers.ok()) {
      for (const auto& c : *containers) EXPECT_TRUE(runtime_->remove_container(c.id).ok());
    }
    EXPECT_TRUE(eventually([&] { return runtime_->active_log_copies() == 0; }, 10s));
  }

  static std::unique_ptr<DockerRuntime> make() {
    DockerOptions o;
    o.endpoint = env("KNODE_DOCKER_ENDPOINT");
    o.request_timeout = 60s;
    o.pod_infra_image = env("KNODE_DOCKER_PAUSE");
    o.cni.conf = env("KNODE_DOCKER_CNI_CONF");
    o.cni.bin_dirs = {env("KNODE_DOCKER_CNI_BIN")};
    o.restrict_oom_score_adj = true;  // no CAP_SYS_RESOURCE on this host
    o.log_retry = 100ms;
    auto r = DockerRuntime::connect(o);
    EXPECT_TRUE(r.ok()) << r.error();
    return r.ok() ? std::move(*r) : nullptr;
  }

  rt::PodSandboxConfig pod(const std::string& name, bool share_pid = false) {
    rt::PodSandboxConfig c;
    c.metadata = {name, name + "-uid", "default", 0};
    c.hostname = name + "-host";
    c.log_directory = env("KNODE_DOCKER_LOG_DIR") + "/default_" + name + "_" + name + "-uid";
    c.dns = {{"10.96.0.10"}, {"default.svc.cluster.local"}, {"ndots:5"}};
    c.labels = {{kubelet::kPodUidLabel, name + "-uid"},
                {kubelet::kPodNameLabel, name},
                {kubelet::kPodNamespaceLabel, "default"}};
    c.annotations = {{"kubernetes.io/config.source", "file"}};
    c.cgroup_parent = env("KNODE_DOCKER_CGROUP_PARENT") + "/pod" + name;
    c.seccomp = rt::SecurityProfile{rt::SecurityProfile::Type::kUnconfined, ""};
    if (share_pid) c.namespaces.pid = rt::NamespaceMode::kPod;
    return c;
  }

  rt::ContainerConfig container(const rt::PodSandboxConfig& p, const std::string& name,
                                const std::string& image, std::vector<std::string> command = {},
                                uint32_t attempt = 0) {
    rt::ContainerConfig c;
    c.metadata = {name, attempt};
    c.image.image = image;
    c.command = std::move(command);
    c.labels = {{kubelet::kPodUidLabel, p.metadata.uid},
                {kubelet::kPodNameLabel, p.metadata.name},
                {kubelet::kPodNamespaceLabel, "default"},
                {kubelet::kContainerNameLabel, name}};
    c.log_path = name + "/" + std::to_string(attempt) + ".log";
    c.security.namespaces = p.namespaces;
    c.security.seccomp = rt::SecurityProfile{rt::SecurityProfile::Type::kUnconfined, ""};
    c.security.masked_paths = {"/proc/kcore"};
    c.security.readonly_paths = {"/proc/sys"};
    std::filesystem::create_directories(p.log_directory + "/" + name);
    return c;
  }

  // Pulls, creates and starts; the container's ID.
  std::string run(const std::string& sandbox, const rt::PodSandboxConfig& p,
                  const rt::ContainerConfig& c) {
    auto ref = runtime_->pull_image({c.image.image, {}}, std::nullopt, &p);
    EXPECT_TRUE(ref.ok()) << ref.error();
    auto id = runtime_->create_container(sandbox, c, p);
    EXPECT_TRUE(id.ok()) << id.error();
    if (!id.ok()) return "";
    Status s = runtime_->start_container(*id);
    EXPECT_TRUE(s.ok()) << s.message();
    return *id;
  }

  rt::ContainerStatus wait_state(const std::string& id, rt::ContainerState want,
                                 std::chrono::milliseconds limit = 20s) {
    rt::ContainerStatus last;
    eventually(
        [&] {
          auto st = runtime_->container_status(id);
          if (st.ok()) last = *st;
          return st.ok() && st->state == want;
        },
        limit);
    return last;
  }

  std::unique_ptr<DockerRuntime> runtime_;
};

TEST_F(DockerdTest, VersionStatusAndCgroupDriver) {
  auto v = runtime_->version();
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->runtime_name, "docker");
  EXPECT_EQ(v->runtime_api_version, "1.41");
  EXPECT_TRUE(v->runtime_version.starts_with("20.10")) << v->runtime_version;
  auto st = runtime_->status();
  ASSERT_TRUE(st.ok()) << st.error();
  EXPECT_TRUE(st->condition("RuntimeReady"));
  EXPECT_TRUE(st->condition("NetworkReady"));
  auto d = runtime_->cgroup_driver();
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(*d, rt::CgroupDriver::kCgroupfs);
}

TEST_F(DockerdTest, PullsFromTheLocalRegistry) {
  const std::string kubia = env("KNODE_DOCKER_KUBIA");
  auto missing = runtime_->pull_image({"127.0.0.1:5000/nope:1", {}}, std::nullopt, nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().error_number(), ENOENT) << missing.error();
  auto ref = runtime_->pull_image({kubia, {}}, std::nullopt, nullptr);
  ASSERT_TRUE(ref.ok()) << ref.error();
  EXPECT_TRUE(ref->starts_with("sha256:")) << *ref;
  auto img = runtime_->image_status({kubia, {}});
  ASSERT_TRUE(img.ok() && img->has_value()) << img.error();
  EXPECT_EQ((*img)->id, *ref);
  EXPECT_EQ((*img)->repo_tags, std::vector<std::string>{kubia});
  ASSERT_FALSE((*img)->repo_digests.empty());
  EXPECT_EQ((*img)->repo_digests[0], "127.0.0.1:5000/kubia@" + env("KNODE_DOCKER_KUBIA_DIGEST"));
  EXPECT_GT((*img)->size, 0u);
  EXPECT_FALSE(runtime_->image_status({"127.0.0.1:5000/absent:1", {}})->has_value());
  auto fs = runtime_->image_fs_info();
  ASSERT_TRUE(fs.ok()) << fs.error();
  EXPECT_GT((*fs)[0].used_bytes, 0u);
}

TEST_F(DockerdTest, APodServesHttpOnItsIpAndItsContainersShareTheNetwork) {
  const auto p = pod("web");
  auto sb = runtime_->run_pod_sandbox(p);
  ASSERT_TRUE(sb.ok()) << sb.error();
  auto sbs = runtime_->pod_sandbox_status(*sb);
  ASSERT_TRUE(sbs.ok()) << sbs.error();
  EXPECT_EQ(sbs->state, rt::SandboxState::kReady);
  EXPECT_EQ(sbs->metadata, p.metadata);
  EXPECT_TRUE(sbs->ip.starts_with("10.88.0.")) << sbs->ip;
  // host-local reserved it for this sandbox.
  const std::string reservation = env("KNODE_DOCKER_IPAM_DIR") + "/knode/" + sbs->ip;
  EXPECT_NE(slurp(reservation).find(*sb), std::string::npos);

  const std::string kubia = run(*sb, p, container(p, "kubia", env("KNODE_DOCKER_KUBIA")));
  ASSERT_FALSE(kubia.empty());
  std::string answer;
  EXPECT_TRUE(eventually([&] {
    answer = http_get(sbs->ip, 8080);
    return answer == "You've hit web-host\n";
  })) << answer;

  // A second container joins the pod's network, IPC and UTS: localhost is kubia.
  const std::string box =
      run(*sb, p, container(p, "box", env("KNODE_DOCKER_BUSYBOX"), {"sleep", "3600"}));
  ASSERT_FALSE(box.empty());
  auto r = runtime_->exec_sync(box, {"wget", "-qO-", "http://127.0.0.1:8080/"}, 10);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->stdout_, "You've hit web-host\n");
  EXPECT_EQ(r->exit_code, 0);
  r = runtime_->exec_sync(box, {"hostname"}, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_, "web-host\n");
  // The pod's DNS, as containerd writes it.
  r = runtime_->exec_sync(box, {"cat", "/etc/resolv.conf"}, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_,
            "search default.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n");
  // Its own PID namespace: the sleep is PID 1.
  r = runtime_->exec_sync(box, {"cat", "/proc/1/cmdline"}, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_, std::string("sleep\0"
                                    "3600\0",
                                    11));
  r = runtime_->exec_sync(box, {"sh", "-c", "echo out; echo err >&2; exit 4"}, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdout_, "out\n");
  EXPECT_EQ(r->stderr_, "err\n");
  EXPECT_EQ(r->exit_code, 4);

  // kubia logged the request: in the CRI format, at the path the kubelet named.
  const std::string log = p.log_directory + "/kubia/0.log";
  EXPECT_TRUE(eventually([&] {
    return slurp(log).find(" stdout F Received request from ") != std::string::npos;
  })) << slurp(log);
  auto kst = runtime_->container_status(kubia);
  ASSERT_TRUE(kst.ok());
  EXPECT_EQ(kst->state, rt::ContainerState::kRunning);
  EXPECT_EQ(kst->log_path, log);
  EXPECT_EQ(kst->image.image, env("KNODE_DOCKER_KUBIA"));
  EXPECT_EQ(kst->image_ref, "127.0.0.1:5000/kubia@" + env("KNODE_DOCKER_KUBIA_DIGEST"));
  auto stats = runtime_->container_stats(kubia);
  ASSERT_TRUE(stats.ok()) << stats.error();
  EXPECT_GT(stats->memory_working_set_bytes, 0u);
  EXPECT_GT(stats->timestamp, 0);

  // Removal: containers, the network (veth, reservation), the pause container.
  ASSERT_TRUE(runtime_->stop_pod_sandbox(*sb).ok());
  EXPECT_EQ(runtime_->pod_sandbox_status(*sb)->state, rt::SandboxState::kNotReady);
  EXPECT_FALSE(std::filesystem::exists(reservation));
  EXPECT_NE(http_get(sbs->ip, 8080), "You've hit web-host\n");
  ASSERT_TRUE(runtime_->remove_pod_sandbox(*sb).ok());
  EXPECT_EQ(runtime_->container_status(kubia).status().error_number(), ENOENT);
  EXPECT_EQ(runtime_->pod_sandbox_status(*sb).status().error_number(), ENOENT);
  EXPECT_TRUE(runtime_->list_containers({})->empty());
}

TEST_F(DockerdTest, ShareProcessNamespaceJoinsThePausePidNamespace) {
  const auto p = pod("shared", true);
  auto sb = runtime_->run_pod_sandbox(p);
  ASSERT_TRUE(sb.ok()) << sb.error();
  const std::string box =
      run(*sb, p, container(p, "box", env("KNODE_DOCKER_BUSYBOX"), {"sleep", "3600"}));
  ASSERT_FALSE(box.empty());
  auto r = runtime_->exec_sync(box, {"cat", "/proc/1/cmdline"}, 10);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->stdout_, std::string("/pause\0", 7));
}

TEST_F(DockerdTest, StopHonoursTheGracePeriodAndExitReasonsAreCris) {
  const auto p = pod("exits");
  auto sb = runtime_->run_pod_sandbox(p);
  ASSERT_TRUE(sb.ok()) << sb.error();
  const std::string busybox = env("KNODE_DOCKER_BUSYBOX");
  // Leaves on SIGTERM, saying so.
  const std::string polite =
      run(*sb, p,
          container(
              p, "polite", busybox,
              {"sh", "-c", "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.1; done"}));
  // Ignores SIGTERM: only the SIGKILL at the end of the grace period ends it.
  const std::string stubborn =
      run(*sb, p,
          container(p, "stubborn", busybox,
                    {"sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.1; done"}));
  const std::string failing =
      run(*sb, p, container(p, "failing", busybox, {"sh", "-c", "echo oops >&2; exit 3"}));
  ASSERT_TRUE(eventually([&] {
    return slurp(p.log_directory + "/polite/0.log").find("stdout F up") != std::string::npos;
  }));
  ASSERT_TRUE(eventually([&] {
    return slurp(p.log_directory + "/stubborn/0.log").find("stdout F up") != std::string::npos;
  }));

  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(runtime_->stop_container(polite, 30).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  auto st = runtime_->container_status(polite);
  EXPECT_EQ(st->state, rt::ContainerState::kExited);
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_EQ(st->reason, "Completed");
  EXPECT_GE(st->finished_at, st->started_at);
  EXPECT_TRUE(eventually([&] {
    return slurp(p.log_directory + "/polite/0.log").find("stdout F bye\n") != std::string::npos;
  })) << slurp(p.log_directory + "/polite/0.log");

  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(runtime_->stop_container(stubborn, 2).ok());
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 1900ms);
  EXPECT_LT(took, 15s);
  st = runtime_->container_status(stubborn);
  EXPECT_EQ(st->exit_code, 137);
  EXPECT_EQ(st->reason, "Error");

  const auto failed = wait_state(failing, rt::ContainerState::kExited);
  EXPECT_EQ(failed.exit_code, 3);
  EXPECT_EQ(failed.reason, "Error");
  EXPECT_TRUE(eventually([&] {
    return slurp(p.log_directory + "/failing/0.log").find(" stderr F oops\n") != std::string::npos;
  }));
}

TEST_F(DockerdTest, OomKilledAndStartError) {
  const auto p = pod("oom");
  auto sb = runtime_->run_pod_sandbox(p);
  ASSERT_TRUE(sb.ok()) << sb.error();
  auto hog = container(p, "hog", env("KNODE_DOCKER_BUSYBOX"), {"tail", "/dev/zero"});
  hog.resources.memory_limit_in_bytes = 16 << 20;
  hog.resources.memory_swap_limit_in_bytes = 16 << 20;
  const std::string id = run(*sb, p, hog);
  auto st = wait_state(id, rt::ContainerState::kExited, 60s);
  EXPECT_EQ(st.exit_code, 137);
  // dockerd learns of the OOM kill from containerd's OOM event, which may come after the
  // exit: an inspect right at the exit can still say OOMKilled false.
  EXPECT_TRUE(eventually([&] {
    auto now = runtime_->container_status(id);
    return now.ok() && now->reason == "OOMKilled";
  }, 10s)) << "last reason: " << st.reason;

  auto bad = container(p, "bad", env("KNODE_DOCKER_BUSYBOX"), {"/no/such/program"});
  auto bid = runtime_->create_container(*sb, bad, p);
  ASSERT_TRUE(bid.ok()) << bid.error();
  Status s = runtime_->start_container(*bid);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("docker StartContainer"), std::string::npos) << s.message();
  st = *runtime_->container_status(*bid);
  EXPECT_EQ(st.state, rt::ContainerState::kExited);
  EXPECT_EQ(st.reason, "StartError");
  EXPECT_NE(st.exit_code, 0);
  EXPECT_NE(st.message.find("/no/such/program"), std::string::npos) << st.message;
}

TEST_F(DockerdTest, ExecTimeoutKillsTheCommand) {
  const auto p = pod("exec");
  auto sb = runtime_->run_pod_sandbox(p);
  ASSERT_TRUE(sb.ok()) << sb.error();
  const std::string box =
      run(*sb, p, container(p, "box", env("KNODE_DOCKER_BUSYBOX"), {"sleep", "3600"}));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = runtime_->exec_sync(box, {"sh", "-c", "exec sleep 77"}, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error_number(), ETIMEDOUT) << r.error();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  // The command does not outlive its timeout.
  EXPECT_TRUE(eventually(
      [&] {
        auto ps =
            runtime_->exec_sync(box, {"sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"}, 10);
        return ps.ok() && ps->stdout_.find("sleep 77") == std::string::npos;
      },
      10s));
}

TEST_F(DockerdTest, LogRotationReopensTheFile) {
  const auto p = pod("rotate");
  auto sb = runtime_->run_pod_sandbox(p);
  ASSERT_TRUE(sb.ok()) << sb.error();
  const std::string talker =
      run(*sb, p,
          container(p, "talker", env("KNODE_DOCKER_BUSYBOX"),
                    {"sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.05; done"}));
  const std::string log = p.log_directory + "/talker/0.log";
  ASSERT_TRUE(eventually([&] { return count(slurp(log), "\n") >= 3; }));
  std::filesystem::rename(log, log + ".20261201-100000");
  ASSERT_TRUE(runtime_->reopen_container_log(talker).ok());
  ASSERT_TRUE(eventually([&] { return count(slurp(log), "\n") >= 3; })) << slurp(log);
  ASSERT_TRUE(runtime_->stop_container(talker, 0).ok());
  EXPECT_TRUE(eventually([&] { return runtime_->active_log_copies() == 0; }));
  // Together, the two files hold every line once, in order.
  std::istringstream all(slurp(log + ".20261201-100000") + slurp(log));
  int want = 0;
  for (std::string line; std::getline(all, line);) {
    EXPECT_NE(line.find(" stdout F line " + std::to_string(want)), std::string::npos) << line;
    ++want;
  }
  EXPECT_GE(want, 6);
}

TEST_F(DockerdTest, ARestartedBackendAdoptsPodsFromTheirLabels) {
  const auto p = pod("adopt");
  auto sb = runtime_->run_pod_sandbox(p);
  ASSERT_TRUE(sb.ok()) << sb.error();
  const std::string kubia = run(*sb, p, container(p, "kubia", env("KNODE_DOCKER_KUBIA")));
  const std::string ip = runtime_->pod_sandbox_status(*sb)->ip;
  const std::string log = p.log_directory + "/kubia/0.log";
  ASSERT_TRUE(eventually([&] { return http_get(ip, 8080) == "You've hit adopt-host\n"; }));
  ASSERT_TRUE(eventually([&] { return count(slurp(log), "Received request") == 1; })) << slurp(log);

  runtime_.reset();                                          // knode stops: the pod runs on
  EXPECT_EQ(http_get(ip, 8080), "You've hit adopt-host\n");  // logged while nobody copies
  runtime_ = make();
  auto sandboxes = runtime_->list_pod_sandboxes({});
  ASSERT_TRUE(sandboxes.ok());
  ASSERT_EQ(sandboxes->size(), 1u);
  EXPECT_EQ((*sandboxes)[0].id, *sb);
  EXPECT_EQ((*sandboxes)[0].metadata, p.metadata);
  EXPECT_EQ((*sandboxes)[0].annotations, p.annotations);
  auto containers = runtime_->list_containers({});
  ASSERT_TRUE(containers.ok());
  ASSERT_EQ(containers->size(), 1u);
  EXPECT_EQ((*containers)[0].id, kubia);
  EXPECT_EQ((*containers)[0].pod_sandbox_id, *sb);
  // The IP from the pause container's network namespace, as CNI left it.
  EXPECT_EQ(runtime_->pod_sandbox_status(*sb)->ip, ip);
  EXPECT_EQ(runtime_->container_status(kubia)->state, rt::ContainerState::kRunning);
  EXPECT_EQ(http_get(ip, 8080), "You've hit adopt-host\n");
  // The copy resumed: each request logged exactly once.
  EXPECT_TRUE(eventually([&] { return count(slurp(log), "Received request") == 3; })) << slurp(log);
  std::this_thread::sleep_for(300ms);  // a duplicate would show up right behind
  EXPECT_EQ(count(slurp(log), "Received request"), 3u) << slurp(log);
}

TEST_F(DockerdTest, ForeignContainersAreNeverTouched) {
  // A container someone else made with `docker run`, in the test's cgroup (cleanup).
  UnixHttpClient client(socket_path(env("KNODE_DOCKER_ENDPOINT")).value());
  auto deadline = [] { return std::chrono::steady_clock::now() + 30s; };
  ASSERT_TRUE(runtime_->pull_image({env("KNODE_DOCKER_BUSYBOX"), {}}, std::nullopt, nullptr).ok());
  json body = {{"Image", env("KNODE_DOCKER_BUSYBOX")},
               {"Cmd", {"sleep", "3600"}},
               {"Labels", {{"app", "not-knode"}}},
               {"HostConfig",
                {{"NetworkMode", "none"},
                 {"CgroupParent", env("KNODE_DOCKER_CGROUP_PARENT") + "/foreign"}}}};
  auto made = client.request(
      {"POST", "/v1.41/containers/create?name=someones-sleeper", body.dump(), {}}, deadline());
  ASSERT_TRUE(made.ok() && made->status == 201) << (made.ok() ? made->body : made.error());
  const std::string foreign = json::parse(made->body)["Id"];
  auto started =
      client.request({"POST", "/v1.41/containers/" + foreign + "/start", "", {}}, deadline());
  ASSERT_TRUE(started.ok() && started->status == 204);

  const auto p = pod("owned");
  auto sb = runtime_->run_pod_sandbox(p);
  ASSERT_TRUE(sb.ok()) << sb.error();
  run(*sb, p, container(p, "box", env("KNODE_DOCKER_BUSYBOX"), {"sleep", "3600"}));
  EXPECT_EQ(runtime_->list_pod_sandboxes({})->size(), 1u);
  EXPECT_EQ(runtime_->list_containers({})->size(), 1u);
  EXPECT_EQ(runtime_->container_status(foreign).status().error_number(), ENOENT);
  EXPECT_EQ(runtime_->stop_container(foreign, 0).error_number(), ENOENT);
  EXPECT_EQ(runtime_->exec_sync(foreign, {"true"}, 1).status().error_number(), ENOENT);
  EXPECT_TRUE(runtime_->remove_container(foreign).ok());
  EXPECT_TRUE(runtime_->remove_pod_sandbox(foreign).ok());
  ASSERT_TRUE(runtime_->remove_pod_sandbox(*sb).ok());
  auto still =
      client.request({"GET", "/v1.41/containers/" + foreign + "/json", "", {}}, deadline());
  ASSERT_TRUE(still.ok());
  ASSERT_EQ(still->status, 200);
  EXPECT_TRUE(json::parse(still->body)["State"]["Running"].get<bool>());
  auto gone =
      client.request({"DELETE", "/v1.41/containers/" + foreign + "?force=1", "", {}}, deadline());
  EXPECT_TRUE(gone.ok() && gone->status == 204);
}

}  // namespace
}  // namespace knode::docker
