// FakeRuntime with one running container to exec in, behind a thin wrapper that also
// records the timeout each ExecSync was given (FakeRuntime keeps only method and object).
#pragma once

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "fakes/fake_runtime.h"
#include "knode/runtime.h"

namespace knode::kubelet::prober::testing {

class ExecRuntime final : public runtime::ContainerRuntime {
 public:
  ExecRuntime() {
    fake.add_image("busybox:1.37", /*present=*/true);
    runtime::PodSandboxConfig sandbox;
    sandbox.metadata = {"web-0", "uid-1", "default", 0};
    auto sb = fake.run_pod_sandbox(sandbox);
    EXPECT_TRUE(sb.ok()) << sb.error();
    runtime::ContainerConfig config;
    config.metadata = {"web", 0};
    config.image.image = "busybox:1.37";
    auto c = fake.create_container(*sb, config, sandbox);
    EXPECT_TRUE(c.ok()) << c.error();
    EXPECT_TRUE(fake.start_container(*c).ok());
    container_id = *c;
  }

  std::vector<int64_t> exec_timeouts() const {
    std::lock_guard lock(mu_);
    return timeouts_;
  }

  knode::testing::FakeRuntime fake;
  std::string container_id;

  // ---- runtime::ContainerRuntime: FakeRuntime's answers ----
  std::string id_scheme() const override { return fake.id_scheme(); }
  Result<runtime::VersionInfo> version() override { return fake.version(); }
  Result<runtime::RuntimeStatus> status() override { return fake.status(); }
  Result<runtime::CgroupDriver> cgroup_driver() override { return fake.cgroup_driver(); }
  Result<std::string> run_pod_sandbox(const runtime::PodSandboxConfig& c) override {
    return fake.run_pod_sandbox(c);
  }
  Status stop_pod_sandbox(const std::string& id) override { return fake.stop_pod_sandbox(id); }
  Status remove_pod_sandbox(const std::string& id) override { return fake.remove_pod_sandbox(id); }
  Result<runtime::PodSandboxStatus> pod_sandbox_status(const std::string& id) override {
    return fake.pod_sandbox_status(id);
  }
  Result<std::vector<runtime::PodSandbox>> list_pod_sandboxes(
      const runtime::SandboxFilter& f = {}) override {
    return fake.list_pod_sandboxes(f);
  }
  Result<std::string> create_container(const std::string& sb, const runtime::ContainerConfig& c,
                                       const runtime::PodSandboxConfig& s) override {
    return fake.create_container(sb, c, s);
  }
  Status start_container(const std::string& id) override { return fake.start_container(id); }
  Status update_container_resources(const std::string& id, const runtime::LinuxResources& r) override {
    return fake.update_container_resources(id, r);
  }
  Status stop_container(const std::string& id, int64_t t) override {
    return fake.stop_container(id, t);
  }
  Status remove_container(const std::string& id) override { return fake.remove_container(id); }
  Result<std::vector<runtime::Container>> list_containers(
      const runtime::ContainerFilter& f = {}) override {
    return fake.list_containers(f);
  }
  Result<runtime::ContainerStatus> container_status(const std::string& id) override {
    return fake.container_status(id);
  }
  Result<runtime::ExecResult> exec_sync(const std::string& id, const std::vector<std::string>& cmd,
                                        int64_t timeout_seconds) override {
    {
      std::lock_guard lock(mu_);
      timeouts_.push_back(timeout_seconds);
    }
    return fake.exec_sync(id, cmd, timeout_seconds);
  }
  Result<std::string> exec(const runtime::ExecRequest& r) override { return fake.exec(r); }
  Result<std::string> attach(const runtime::AttachRequest& r) override { return fake.attach(r); }
  Result<std::string> port_forward(const std::string& id, const std::vector<int32_t>& ports) override {
    return fake.port_forward(id, ports);
  }
  Status reopen_container_log(const std::string& id) override {
    return fake.reopen_container_log(id);
  }
  Result<runtime::ContainerStats> container_stats(const std::string& id) override {
    return fake.container_stats(id);
  }
  Result<std::string> pull_image(const runtime::ImageSpec& i,
                                 const std::optional<runtime::AuthConfig>& a,
                                 const runtime::PodSandboxConfig* s) override {
    return fake.pull_image(i, a, s);
  }
  Result<std::optional<runtime::Image>> image_status(const runtime::ImageSpec& i) override {
    return fake.image_status(i);
  }
  Result<std::vector<runtime::Image>> list_images() override { return fake.list_images(); }
  Status remove_image(const runtime::ImageSpec& i) override { return fake.remove_image(i); }
  Result<std::vector<runtime::FilesystemUsage>> image_fs_info() override {
    return fake.image_fs_info();
  }

 private:
  mutable std::mutex mu_;
  std::vector<int64_t> timeouts_;
};

}  // namespace knode::kubelet::prober::testing
