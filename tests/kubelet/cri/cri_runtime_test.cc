// CriRuntime against an in-process CRI server on a unix socket in a temp dir: what each
// call sends, the deadline it carries, and how the runtime's answers and failures come
// back (runtime.h's errno-style codes).
#include "cri/cri_runtime.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <thread>

#include "cri/convert.h"
#include "fake_cri_server.h"
#include "test_values.h"

namespace rt = knode::runtime;
namespace pb = ::runtime::v1;
using knode::cri::CriOptions;
using knode::cri::CriRuntime;
using knode::cri::testing::FakeCriServer;
using knode::cri::testing::full_container_config;
using knode::cri::testing::full_sandbox_config;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

class CriRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/knode-cri-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    socket_ = dir_ + "/cri.sock";
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void start_server() {
    server_ = std::make_unique<FakeCriServer>(socket_);
    ASSERT_TRUE(server_->started()) << "could not listen on " << socket_;
  }
  std::unique_ptr<CriRuntime> client(std::chrono::milliseconds timeout = 10s) {
    auto c = CriRuntime::connect(CriOptions{"unix://" + socket_, timeout});
    EXPECT_TRUE(c.ok()) << c.error();
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::string dir_, socket_;
  std::unique_ptr<FakeCriServer> server_;
};

pb::VersionResponse version_answer(const std::string& name) {
  pb::VersionResponse v;
  v.set_version("0.1.0");
  v.set_runtime_name(name);
  v.set_runtime_version("v1.6.20");
  v.set_runtime_api_version("v1");
  return v;
}

}  // namespace

// ---- endpoints ----

TEST(CriEndpoint, UnixSchemeAndBarePathAreAccepted) {
  EXPECT_EQ(*knode::cri::grpc_target("unix:///run/containerd/containerd.sock"),
            "unix:///run/containerd/containerd.sock");
  EXPECT_EQ(*knode::cri::grpc_target("/run/crio/crio.sock"), "unix:///run/crio/crio.sock");
  for (const char* bad : {"", "tcp://127.0.0.1:1234", "npipe:////./pipe/x", "run/x.sock",
                          "unix://relative.sock", "unix://"}) {
    auto t = knode::cri::grpc_target(bad);
    EXPECT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().error_number(), EINVAL) << bad;
  }
}

TEST(CriEndpoint, DefaultsAreContainerdAndTwoMinutes) {
  CriOptions o;
  EXPECT_EQ(o.endpoint, "unix:///run/containerd/containerd.sock");
  EXPECT_EQ(o.request_timeout, std::chrono::minutes(2));
  auto bad = CriRuntime::connect(CriOptions{"tcp://127.0.0.1:1", 1s});
  EXPECT_EQ(bad.status().error_number(), EINVAL);
  auto zero = CriRuntime::connect(CriOptions{"/run/x.sock", 0ms});
  EXPECT_EQ(zero.status().error_number(), EINVAL);
}

TEST_F(CriRuntimeTest, BarePathReachesTheRuntime) {
  start_server();
  server_->respond("Version", version_answer("containerd"));
  auto c = CriRuntime::connect(CriOptions{socket_, 10s});
  ASSERT_TRUE(c.ok()) << c.error();
  auto v = (*c)->version();
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->runtime_name, "containerd");
}

// ---- version and the ID scheme ----

TEST_F(CriRuntimeTest, VersionAndIdSchemeAskedOnce) {
  start_server();
  server_->respond("Version", version_answer("CRI-O"));
  auto c = client();
  EXPECT_EQ(c->id_scheme(), "cri-o");
  EXPECT_EQ(c->id_scheme(), "cri-o");
  EXPECT_EQ(server_->count("Version"), 1);
  EXPECT_EQ(server_->last<pb::VersionRequest>("Version").version(), "0.1.0");

  auto v = c->version();
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(*v, (rt::VersionInfo{"0.1.0", "CRI-O", "v1.6.20", "v1"}));
  EXPECT_EQ(server_->count("Version"), 2);  // version() itself always asks
}

TEST_F(CriRuntimeTest, VersionCallFillsTheIdScheme) {
  start_server();
  server_->respond("Version", version_answer("containerd"));
  auto c = client();
  ASSERT_TRUE(c->version().ok());
  EXPECT_EQ(c->id_scheme(), "containerd");
  EXPECT_EQ(server_->count("Version"), 1);
}

TEST_F(CriRuntimeTest, StatusConditions) {
  start_server();
  pb::StatusResponse s;
  auto* cond = s.mutable_status()->add_conditions();
  cond->set_type("RuntimeReady");
  cond->set_status(true);
  cond = s.mutable_status()->add_conditions();
  cond->set_type("NetworkReady");
  cond->set_status(false);
  cond->set_reason("NetworkPluginNotReady");
  server_->respond("Status", s);
  auto st = client()->status();
  ASSERT_TRUE(st.ok()) << st.error();
  EXPECT_TRUE(st->condition("RuntimeReady"));
  EXPECT_FALSE(st->condition("NetworkReady"));
  EXPECT_EQ(st->conditions[1].reason, "NetworkPluginNotReady");
}

// ---- cgroup driver ----

TEST_F(CriRuntimeTest, RuntimeConfigUnimplementedIsEnotsup) {
  start_server();  // RuntimeConfig unscripted: UNIMPLEMENTED, as containerd 1.6
  auto d = client()->cgroup_driver();
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().error_number(), ENOTSUP);
  EXPECT_NE(d.error().find("CRI RuntimeConfig: Unimplemented"), std::string::npos) << d.error();
  EXPECT_EQ(server_->count("RuntimeConfig"), 1);
}

TEST_F(CriRuntimeTest, RuntimeConfigGivesTheDriver) {
  start_server();
  auto c = client();
  pb::RuntimeConfigResponse r;
  r.mutable_linux()->set_cgroup_driver(pb::CGROUPFS);
  server_->respond("RuntimeConfig", r);
  auto d = c->cgroup_driver();
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(*d, rt::CgroupDriver::kCgroupfs);

  r.mutable_linux()->set_cgroup_driver(pb::SYSTEMD);
  server_->respond("RuntimeConfig", r);
  d = c->cgroup_driver();
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(*d, rt::CgroupDriver::kSystemd);

  // No Linux part: its zero value would read "systemd"; it is "not known" instead.
  server_->respond("RuntimeConfig", pb::RuntimeConfigResponse());
  d = c->cgroup_driver();
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().error_number(), ENOTSUP);
}

// ---- calls carry their fields ----

TEST_F(CriRuntimeTest, SandboxCallsCarryTheirFields) {
  start_server();
  auto c = client();
  pb::RunPodSandboxResponse run;
  run.set_pod_sandbox_id("sb-1");
  server_->respond("RunPodSandbox", run);
  const rt::PodSandboxConfig config = full_sandbox_config();
  auto id = c->run_pod_sandbox(config);
  ASSERT_TRUE(id.ok()) << id.error();
  EXPECT_EQ(*id, "sb-1");
  auto req = server_->last<pb::RunPodSandboxRequest>("RunPodSandbox");
  EXPECT_EQ(knode::cri::from_proto(req.config()), config);
  EXPECT_EQ(req.config().linux().cgroup_parent(), config.cgroup_parent);

  ASSERT_TRUE(c->stop_pod_sandbox("sb-1").ok());
  EXPECT_EQ(server_->last<pb::StopPodSandboxRequest>("StopPodSandbox").pod_sandbox_id(), "sb-1");
  ASSERT_TRUE(c->remove_pod_sandbox("sb-2").ok());
  EXPECT_EQ(server_->last<pb::RemovePodSandboxRequest>("RemovePodSandbox").pod_sandbox_id(),
            "sb-2");

  pb::PodSandboxStatusResponse st;
  st.mutable_status()->set_id("sb-1");
  st.mutable_status()->set_state(pb::SANDBOX_READY);
  st.mutable_status()->mutable_network()->set_ip("10.244.1.9");
  server_->respond("PodSandboxStatus", st);
  auto status = c->pod_sandbox_status("sb-1");
  ASSERT_TRUE(status.ok()) << status.error();
  EXPECT_EQ(status->ip, "10.244.1.9");
  EXPECT_EQ(status->state, rt::SandboxState::kReady);
  EXPECT_EQ(server_->last<pb::PodSandboxStatusRequest>("PodSandboxStatus").pod_sandbox_id(),
            "sb-1");

  pb::ListPodSandboxResponse list;
  list.add_items()->set_id("sb-1");
  list.add_items()->set_id("sb-2");
  server_->respond("ListPodSandbox", list);
  auto all = c->list_pod_sandboxes({});
  ASSERT_TRUE(all.ok()) << all.error();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].id, "sb-2");
  EXPECT_FALSE(server_->last<pb::ListPodSandboxRequest>("ListPodSandbox").has_filter());
  rt::SandboxFilter f{"", rt::SandboxState::kReady, {{"app", "web"}}};
  ASSERT_TRUE(c->list_pod_sandboxes(f).ok());
  auto lreq = server_->last<pb::ListPodSandboxRequest>("ListPodSandbox");
  ASSERT_TRUE(lreq.has_filter());
  EXPECT_EQ(knode::cri::from_proto(lreq.filter()), f);
}

TEST_F(CriRuntimeTest, ContainerCallsCarryTheirFields) {
  start_server();
  auto c = client();
  pb::CreateContainerResponse created;
  created.set_container_id("c-1");
  server_->respond("CreateContainer", created);
  const rt::ContainerConfig config = full_container_config();
  const rt::PodSandboxConfig sandbox = full_sandbox_config();
  auto id = c->create_container("sb-1", config, sandbox);
  ASSERT_TRUE(id.ok()) << id.error();
  EXPECT_EQ(*id, "c-1");
  auto req = server_->last<pb::CreateContainerRequest>("CreateContainer");
  EXPECT_EQ(req.pod_sandbox_id(), "sb-1");
  EXPECT_EQ(knode::cri::from_proto(req.config()), config);
  EXPECT_EQ(knode::cri::from_proto(req.sandbox_config()), sandbox);

  ASSERT_TRUE(c->start_container("c-1").ok());
  EXPECT_EQ(server_->last<pb::StartContainerRequest>("StartContainer").container_id(), "c-1");
  ASSERT_TRUE(c->stop_container("c-1", 30).ok());
  auto stop = server_->last<pb::StopContainerRequest>("StopContainer");
  EXPECT_EQ(stop.container_id(), "c-1");
  EXPECT_EQ(stop.timeout(), 30);
  ASSERT_TRUE(c->remove_container("c-2").ok());
  EXPECT_EQ(server_->last<pb::RemoveContainerRequest>("RemoveContainer").container_id(), "c-2");
  ASSERT_TRUE(c->reopen_container_log("c-3").ok());
  EXPECT_EQ(server_->last<pb::ReopenContainerLogRequest>("ReopenContainerLog").container_id(),
            "c-3");

  pb::ContainerStatusResponse st;
  st.mutable_status()->set_id("c-1");
  st.mutable_status()->set_state(pb::CONTAINER_EXITED);
  st.mutable_status()->set_exit_code(2);
  st.mutable_status()->set_reason("Error");
  server_->respond("ContainerStatus", st);
  auto status = c->container_status("c-1");
  ASSERT_TRUE(status.ok()) << status.error();
  EXPECT_EQ(status->state, rt::ContainerState::kExited);
  EXPECT_EQ(status->exit_code, 2);
  EXPECT_EQ(status->reason, "Error");
  EXPECT_EQ(server_->last<pb::ContainerStatusRequest>("ContainerStatus").container_id(), "c-1");

  pb::ListContainersResponse list;
  list.add_containers()->set_id("c-1");
  server_->respond("ListContainers", list);
  rt::ContainerFilter f{"", "sb-1", rt::ContainerState::kRunning, {}};
  auto l = c->list_containers(f);
  ASSERT_TRUE(l.ok()) << l.error();
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ(knode::cri::from_proto(
                server_->last<pb::ListContainersRequest>("ListContainers").filter()),
            f);

  pb::ExecSyncResponse exec;
  exec.set_stdout("ready\n");
  exec.set_exit_code(1);
  server_->respond("ExecSync", exec);
  auto r = c->exec_sync("c-1", {"cat", "/tmp/healthy"}, 5);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->stdout_, "ready\n");
  EXPECT_EQ(r->exit_code, 1);
  auto ereq = server_->last<pb::ExecSyncRequest>("ExecSync");
  EXPECT_EQ(ereq.container_id(), "c-1");
  ASSERT_EQ(ereq.cmd_size(), 2);
  EXPECT_EQ(ereq.cmd(1), "/tmp/healthy");
  EXPECT_EQ(ereq.timeout(), 5);

  pb::ContainerStatsResponse stats;
  stats.mutable_stats()->mutable_attributes()->set_id("c-1");
  stats.mutable_stats()->mutable_memory()->mutable_working_set_bytes()->set_value(4096);
  server_->respond("ContainerStats", stats);
  auto s = c->container_stats("c-1");
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->memory_working_set_bytes, 4096u);
  EXPECT_EQ(server_->last<pb::ContainerStatsRequest>("ContainerStats").container_id(), "c-1");
}

TEST_F(CriRuntimeTest, StreamingCallsAnswerTheRuntimesUrl) {
  start_server();
  auto c = client();
  pb::ExecResponse exec;
  exec.set_url("http://127.0.0.1:40001/exec/tok1");
  server_->respond("Exec", exec);
  auto e = c->exec({"c-1", {"sh", "-c", "echo hi"}, true, true, true, false});
  ASSERT_TRUE(e.ok()) << e.error();
  EXPECT_EQ(*e, "http://127.0.0.1:40001/exec/tok1");
  auto ereq = server_->last<pb::ExecRequest>("Exec");
  EXPECT_EQ(knode::cri::from_proto(ereq), (rt::ExecRequest{"c-1", {"sh", "-c", "echo hi"}, true, true, true, false}));

  pb::AttachResponse attach;
  attach.set_url("http://127.0.0.1:40001/attach/tok2");
  server_->respond("Attach", attach);
  auto a = c->attach({"c-2", false, true, true, true});
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ(*a, "http://127.0.0.1:40001/attach/tok2");
  EXPECT_EQ(knode::cri::from_proto(server_->last<pb::AttachRequest>("Attach")),
            (rt::AttachRequest{"c-2", false, true, true, true}));

  pb::PortForwardResponse pf;
  pf.set_url("http://127.0.0.1:40001/portforward/tok3");
  server_->respond("PortForward", pf);
  auto p = c->port_forward("sb-1", {8080, 9090});
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_EQ(*p, "http://127.0.0.1:40001/portforward/tok3");
  auto preq = server_->last<pb::PortForwardRequest>("PortForward");
  EXPECT_EQ(preq.pod_sandbox_id(), "sb-1");
  ASSERT_EQ(preq.port_size(), 2);
  EXPECT_EQ(preq.port(1), 9090);
}

TEST_F(CriRuntimeTest, StreamingWithoutAUrlOrAServerIsAnError) {
  start_server();
  auto c = client();
  // An empty answer has no URL to proxy to.
  auto e = c->exec({"c-1", {"true"}, false, false, true, false});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().find("Exec c-1"), std::string::npos) << e.error();
  server_->fail("PortForward", grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no streaming"));
  auto p = c->port_forward("sb-1", {80});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().error_number(), ENOTSUP);
}

TEST_F(CriRuntimeTest, ImageCallsCarryTheirFields) {
  start_server();
  auto c = client();
  pb::PullImageResponse pulled;
  pulled.set_image_ref("sha256:abc");
  server_->respond("PullImage", pulled);
  const rt::PodSandboxConfig sandbox = full_sandbox_config();
  const rt::AuthConfig auth{"u", "p", "", "127.0.0.1:5000", "", ""};
  auto ref = c->pull_image({"127.0.0.1:5000/pause:3.10", {}}, auth, &sandbox);
  ASSERT_TRUE(ref.ok()) << ref.error();
  EXPECT_EQ(*ref, "sha256:abc");
  auto preq = server_->last<pb::PullImageRequest>("PullImage");
  EXPECT_EQ(preq.image().image(), "127.0.0.1:5000/pause:3.10");
  ASSERT_TRUE(preq.has_auth());
  EXPECT_EQ(knode::cri::from_proto(preq.auth()), auth);
  ASSERT_TRUE(preq.has_sandbox_config());
  EXPECT_EQ(knode::cri::from_proto(preq.sandbox_config()), sandbox);

  ASSERT_TRUE(c->pull_image({"busybox:1.37", {}}, std::nullopt, nullptr).ok());
  preq = server_->last<pb::PullImageRequest>("PullImage");
  EXPECT_FALSE(preq.has_auth());
  EXPECT_FALSE(preq.has_sandbox_config());

  // Present, absent (empty answer), absent (NOT_FOUND from some runtimes).
  pb::ImageStatusResponse present;
  present.mutable_image()->set_id("sha256:abc");
  present.mutable_image()->add_repo_tags("busybox:1.37");
  server_->respond("ImageStatus", present);
  auto st = c->image_status({"busybox:1.37", {}});
  ASSERT_TRUE(st.ok()) << st.error();
  ASSERT_TRUE(st->has_value());
  EXPECT_EQ((*st)->id, "sha256:abc");
  EXPECT_EQ(server_->last<pb::ImageStatusRequest>("ImageStatus").image().image(), "busybox:1.37");
  server_->respond("ImageStatus", pb::ImageStatusResponse());
  st = c->image_status({"nginx:1.27", {}});
  ASSERT_TRUE(st.ok()) << st.error();
  EXPECT_FALSE(st->has_value());
  server_->fail("ImageStatus", grpc::Status(grpc::StatusCode::NOT_FOUND, "no such image"));
  st = c->image_status({"nginx:1.27", {}});
  ASSERT_TRUE(st.ok()) << st.error();
  EXPECT_FALSE(st->has_value());

  pb::ListImagesResponse list;
  list.add_images()->set_id("sha256:1");
  list.add_images()->set_id("sha256:2");
  server_->respond("ListImages", list);
  auto images = c->list_images();
  ASSERT_TRUE(images.ok()) << images.error();
  EXPECT_EQ(images->size(), 2u);

  ASSERT_TRUE(c->remove_image({"sha256:1", {}}).ok());
  EXPECT_EQ(server_->last<pb::RemoveImageRequest>("RemoveImage").image().image(), "sha256:1");

  pb::ImageFsInfoResponse fs;
  auto* u = fs.add_image_filesystems();
  u->mutable_fs_id()->set_mountpoint("/var/lib/containerd");
  u->mutable_used_bytes()->set_value(1000);
  fs.add_container_filesystems()->mutable_fs_id()->set_mountpoint("/other");
  server_->respond("ImageFsInfo", fs);
  auto usage = c->image_fs_info();
  ASSERT_TRUE(usage.ok()) << usage.error();
  ASSERT_EQ(usage->size(), 1u);
  EXPECT_EQ((*usage)[0].mountpoint, "/var/lib/containerd");
  EXPECT_EQ((*usage)[0].used_bytes, 1000u);
}

TEST_F(CriRuntimeTest, AnswersMissingTheirSubjectAreErrors) {
  start_server();  // nothing scripted: empty answers
  auto c = client();
  auto id = c->run_pod_sandbox(full_sandbox_config());
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().error_number(), EIO);
  EXPECT_NE(id.error().find("CRI RunPodSandbox shop/web-0"), std::string::npos) << id.error();
  EXPECT_EQ(c->container_status("c-1").status().error_number(), EIO);
  EXPECT_EQ(c->pod_sandbox_status("sb-1").status().error_number(), EIO);
  EXPECT_EQ(c->container_stats("c-1").status().error_number(), EIO);
  EXPECT_EQ(c->pull_image({"x", {}}, std::nullopt, nullptr).status().error_number(), EIO);
}

// ---- deadlines ----

TEST_F(CriRuntimeTest, EveryCallCarriesADeadline) {
  start_server();
  auto c = client(20s);
  // gRPC sends the timeout rounded up (grpc-timeout has few digits), so allow a little over.
  auto near = [](std::chrono::milliseconds left, std::chrono::milliseconds want) {
    return left <= want + 1s && left > want - 5s;
  };
  ASSERT_TRUE(c->status().ok());
  EXPECT_TRUE(near(server_->deadline_left("Status"), 20s))
      << server_->deadline_left("Status").count();
  ASSERT_TRUE(c->remove_image({"x", {}}).ok());
  EXPECT_TRUE(near(server_->deadline_left("RemoveImage"), 20s));
  ASSERT_TRUE(c->stop_pod_sandbox("sb").ok());
  EXPECT_TRUE(near(server_->deadline_left("StopPodSandbox"), 20s));
  // The grace period comes on top: the runtime waits that long before it kills.
  ASSERT_TRUE(c->stop_container("c", 30).ok());
  EXPECT_TRUE(near(server_->deadline_left("StopContainer"), 50s))
      << server_->deadline_left("StopContainer").count();
  // ExecSync: the command's own timeout plus the request timeout as a margin; none when
  // the command has none.
  ASSERT_TRUE(c->exec_sync("c", {"true"}, 10).ok());
  EXPECT_TRUE(near(server_->deadline_left("ExecSync"), 30s))
      << server_->deadline_left("ExecSync").count();
  ASSERT_TRUE(c->exec_sync("c", {"true"}, 0).ok());
  EXPECT_EQ(server_->deadline_left("ExecSync"), std::chrono::milliseconds::max());
}

TEST_F(CriRuntimeTest, SlowHandlerEndsInEtimedout) {
  start_server();
  auto c = client(300ms);
  server_->hold("Status");
  const auto start = Clock::now();
  auto st = c->status();
  const auto took = Clock::now() - start;
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().error_number(), ETIMEDOUT);
  EXPECT_NE(st.error().find("CRI Status: DeadlineExceeded"), std::string::npos) << st.error();
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 5s);

  // A pull may take the whole request timeout, and not longer.
  server_->hold("PullImage");
  auto ref = c->pull_image({"127.0.0.1:5000/big:1", {}}, std::nullopt, nullptr);
  ASSERT_FALSE(ref.ok());
  EXPECT_EQ(ref.status().error_number(), ETIMEDOUT);
  EXPECT_NE(ref.error().find("CRI PullImage 127.0.0.1:5000/big:1"), std::string::npos)
      << ref.error();
}

// ---- errors ----

TEST_F(CriRuntimeTest, NotFoundIsEnoentNamingCallAndObject) {
  start_server();
  server_->fail("ContainerStatus",
                grpc::Status(grpc::StatusCode::NOT_FOUND,
                             "an error occurred when try to find container \"abc\": not found"));
  auto st = client()->container_status("abc");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().error_number(), ENOENT);
  EXPECT_EQ(st.error(),
            "CRI ContainerStatus abc: NotFound: an error occurred when try to find container "
            "\"abc\": not found");
}

TEST_F(CriRuntimeTest, OtherCodesAreEio) {
  start_server();
  server_->fail("StartContainer", grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                               "container is in CONTAINER_EXITED state"));
  auto s = client()->start_container("c-9");
  EXPECT_EQ(s.error_number(), EIO);
  EXPECT_NE(s.message().find("CRI StartContainer c-9: FailedPrecondition"), std::string::npos)
      << s.message();
}

TEST_F(CriRuntimeTest, NoSocketIsEconnrefused) {
  auto c = client(10s);  // nothing listens on socket_
  const auto start = Clock::now();
  auto v = c->version();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().error_number(), ECONNREFUSED);
  EXPECT_NE(v.error().find("CRI Version: Unavailable"), std::string::npos) << v.error();
  EXPECT_LT(Clock::now() - start, 5s);  // fails fast, not at the request timeout
  EXPECT_EQ(c->id_scheme(), "");
  EXPECT_EQ(c->list_images().status().error_number(), ECONNREFUSED);
}

TEST_F(CriRuntimeTest, RecoversWhenTheRuntimeComesUp) {
  auto c = client(10s);
  ASSERT_EQ(c->version().status().error_number(), ECONNREFUSED);
  start_server();
  server_->respond("Version", version_answer("containerd"));
  // The channel reconnects on its back-off (at most 3 s); poll for it, with a bound.
  const auto limit = Clock::now() + 15s;
  knode::Result<rt::VersionInfo> v = c->version();
  while (!v.ok() && Clock::now() < limit) {
    ASSERT_EQ(v.status().error_number(), ECONNREFUSED) << v.error();
    std::this_thread::sleep_for(100ms);
    v = c->version();
  }
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(c->id_scheme(), "containerd");
}

TEST_F(CriRuntimeTest, ConcurrentCallsFromWorkers) {
  start_server();
  server_->respond("Version", version_answer("containerd"));
  auto c = client();
  std::atomic<int> ok{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < 25; ++i) ok += c->version().ok() && c->id_scheme() == "containerd";
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_EQ(server_->count("Version"), 100);  // id_scheme() never asked again
}
