// CriRuntime against a real containerd (runtime tier). run_containerd_test.sh starts
// containerd and a registry in a network namespace of their own, pushes a busybox image,
// and runs this binary inside that namespace with:
//   KNODE_CRI_ENDPOINT       containerd's socket
//   KNODE_CRI_IMAGE          the pushed image (127.0.0.1:5000/busybox:1.37)
//   KNODE_CRI_REGISTRY       the registry (127.0.0.1:5000)
//   KNODE_CRI_LOG_DIR        where pod logs go
//   KNODE_CRI_CGROUP_PARENT  the cgroup the test's pods live under
// Without them every test skips.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cri/cri_runtime.h"

namespace rt = knode::runtime;
using knode::cri::CriOptions;
using knode::cri::CriRuntime;
using namespace std::chrono_literals;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

class ContainerdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env("KNODE_CRI_ENDPOINT").empty()) {
      GTEST_SKIP() << "needs a containerd: run through tests/kubelet/cri/run_containerd_test.sh";
    }
    auto c = CriRuntime::connect(CriOptions{env("KNODE_CRI_ENDPOINT"), 60s});
    ASSERT_TRUE(c.ok()) << c.error();
    cri_ = std::move(*c);
    image_ = env("KNODE_CRI_IMAGE");
  }

  // A host-network pod: the test's namespace has no CNI. Such a pod shares the node's UTS
  // namespace, so it must not ask for a hostname (runc refuses one).
  rt::PodSandboxConfig sandbox_config(const std::string& name) const {
    rt::PodSandboxConfig c;
    c.metadata = {name, name + "-uid", "default", 0};
    c.log_directory = env("KNODE_CRI_LOG_DIR") + "/default_" + name + "_" + name + "-uid";
    c.namespaces.network = rt::NamespaceMode::kNode;
    c.cgroup_parent = env("KNODE_CRI_CGROUP_PARENT");
    c.labels = {{"io.kubernetes.pod.name", name}};
    return c;
  }

  std::unique_ptr<CriRuntime> cri_;
  std::string image_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_F(ContainerdTest, VersionStatusAndConfig) {
  auto v = cri_->version();
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->runtime_name, "containerd");
  EXPECT_EQ(v->runtime_api_version, "v1");
  EXPECT_EQ(cri_->id_scheme(), "containerd");

  auto st = cri_->status();
  ASSERT_TRUE(st.ok()) << st.error();
  EXPECT_TRUE(st->condition("RuntimeReady"));
  // No CNI config in the test's containerd: the network is reported not ready.
  EXPECT_FALSE(st->condition("NetworkReady"));

  // containerd 1.6 predates RuntimeConfig; later ones answer it.
  auto d = cri_->cgroup_driver();
  if (v->runtime_version.starts_with("1.6") || v->runtime_version.starts_with("v1.6")) {
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().error_number(), ENOTSUP) << d.error();
  } else {
    EXPECT_TRUE(d.ok()) << d.error();
  }
}

TEST_F(ContainerdTest, PullsFromTheLocalRegistry) {
  auto missing = cri_->pull_image({env("KNODE_CRI_REGISTRY") + "/nope:1", {}}, std::nullopt,
                                  nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().error_number(), ENOENT) << missing.error();

  auto ref = cri_->pull_image({image_, {}}, std::nullopt, nullptr);
  ASSERT_TRUE(ref.ok()) << ref.error();
  EXPECT_TRUE(ref->starts_with("sha256:")) << *ref;
  auto img = cri_->image_status({image_, {}});
  ASSERT_TRUE(img.ok()) << img.error();
  ASSERT_TRUE(img->has_value());
  EXPECT_EQ((*img)->id, *ref);
  EXPECT_EQ((*img)->repo_tags, std::vector<std::string>{image_});
  EXPECT_GT((*img)->size, 0u);
  auto absent = cri_->image_status({env("KNODE_CRI_REGISTRY") + "/absent:1", {}});
  ASSERT_TRUE(absent.ok()) << absent.error();
  EXPECT_FALSE(absent->has_value());

  auto all = cri_->list_images();
  ASSERT_TRUE(all.ok()) << all.error();
  bool listed = false;
  for (const auto& i : *all) listed |= i.id == *ref;
  EXPECT_TRUE(listed);
  auto fs = cri_->image_fs_info();
  ASSERT_TRUE(fs.ok()) << fs.error();
  ASSERT_FALSE(fs->empty());
  EXPECT_FALSE((*fs)[0].mountpoint.empty());
}

TEST_F(ContainerdTest, RunsAPodThroughItsLifecycle) {
  ASSERT_TRUE(cri_->pull_image({image_, {}}, std::nullopt, nullptr).ok());
  const rt::PodSandboxConfig sb_config = sandbox_config("lifecycle");
  auto sb = cri_->run_pod_sandbox(sb_config);
  ASSERT_TRUE(sb.ok()) << sb.error();
  auto sbs = cri_->pod_sandbox_status(*sb);
  ASSERT_TRUE(sbs.ok()) << sbs.error();
  EXPECT_EQ(sbs->state, rt::SandboxState::kReady);
  EXPECT_EQ(sbs->namespaces.network, rt::NamespaceMode::kNode);
  EXPECT_EQ(sbs->metadata, sb_config.metadata);
  auto listed = cri_->list_pod_sandboxes(
      {"", rt::SandboxState::kReady, {{"io.kubernetes.pod.name", "lifecycle"}}});
  ASSERT_TRUE(listed.ok()) << listed.error();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, *sb);

  rt::ContainerConfig cc;
  cc.metadata = {"main", 0};
  cc.image.image = image_;
  cc.command = {"/bin/sh", "-c"};
  cc.args = {"echo hello from $WHO; exec sleep 1000"};
  cc.envs = {{"WHO", "knode"}};
  cc.log_path = "main/0.log";
  cc.labels = {{"io.kubernetes.container.name", "main"}};
  cc.resources.memory_limit_in_bytes = 64 << 20;
  cc.security.namespaces.network = rt::NamespaceMode::kNode;
  cc.security.masked_paths = {"/proc/keys"};  // one that exists on every kernel
  cc.security.readonly_paths = {"/proc/sys"};
  auto id = cri_->create_container(*sb, cc, sb_config);
  ASSERT_TRUE(id.ok()) << id.error();
  ASSERT_TRUE(cri_->start_container(*id).ok());

  auto st = cri_->container_status(*id);
  ASSERT_TRUE(st.ok()) << st.error();
  EXPECT_EQ(st->state, rt::ContainerState::kRunning);
  EXPECT_EQ(st->metadata, cc.metadata);
  EXPECT_EQ(st->log_path, sb_config.log_directory + "/main/0.log");
  EXPECT_GT(st->started_at, 0);

  // Exec: output, exit code, and the runtime's own timeout as ETIMEDOUT.
  auto ex = cri_->exec_sync(*id, {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, 10);
  ASSERT_TRUE(ex.ok()) << ex.error();
  EXPECT_EQ(ex->stdout_, "out\n");
  EXPECT_EQ(ex->stderr_, "err\n");
  EXPECT_EQ(ex->exit_code, 3);
  // The environment arrived, the masked path has something mounted over it, and the
  // read-only one is mounted read-only.
  auto seen = cri_->exec_sync(*id,
                              {"/bin/sh", "-c",
                               "echo $WHO; grep -c ' /proc/keys ' /proc/self/mountinfo; "
                               "grep -c ' /proc/sys ro,' /proc/self/mountinfo"},
                              10);
  ASSERT_TRUE(seen.ok()) << seen.error();
  EXPECT_EQ(seen->stdout_, "knode\n1\n1\n");
  auto slow = cri_->exec_sync(*id, {"/bin/sleep", "30"}, 1);
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.status().error_number(), ETIMEDOUT) << slow.error();

  // The container wrote its first line to the log the kubelet named.
  EXPECT_NE(read_file(st->log_path).find("stdout F hello from knode"), std::string::npos)
      << read_file(st->log_path);
  EXPECT_TRUE(cri_->reopen_container_log(*id).ok());
  auto stats = cri_->container_stats(*id);
  ASSERT_TRUE(stats.ok()) << stats.error();
  EXPECT_EQ(stats->id, *id);
  EXPECT_GT(stats->memory_working_set_bytes, 0u);

  auto running = cri_->list_containers({"", *sb, rt::ContainerState::kRunning, {}});
  ASSERT_TRUE(running.ok()) << running.error();
  ASSERT_EQ(running->size(), 1u);
  EXPECT_EQ((*running)[0].id, *id);

  ASSERT_TRUE(cri_->stop_container(*id, 2).ok());
  st = cri_->container_status(*id);
  ASSERT_TRUE(st.ok()) << st.error();
  EXPECT_EQ(st->state, rt::ContainerState::kExited);
  EXPECT_NE(st->exit_code, 0);
  EXPECT_GT(st->finished_at, 0);
  ASSERT_TRUE(cri_->remove_container(*id).ok());
  EXPECT_EQ(cri_->container_status(*id).status().error_number(), ENOENT);

  ASSERT_TRUE(cri_->stop_pod_sandbox(*sb).ok());
  EXPECT_EQ(cri_->pod_sandbox_status(*sb)->state, rt::SandboxState::kNotReady);
  ASSERT_TRUE(cri_->remove_pod_sandbox(*sb).ok());
  EXPECT_TRUE(cri_->remove_pod_sandbox(*sb).ok());  // idempotent, as CRI says
  EXPECT_EQ(cri_->stop_pod_sandbox(*sb).error_number(), ENOENT);
}
