// Every runtime call the kubelet makes is counted and timed under upstream's metric
// names and operation types, and the call's answer passes through untouched.
#include "instrumented_runtime.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <memory>
#include <string>

#include "fakes/fake_runtime.h"

namespace rt = knode::runtime;
using knode::Status;
using knode::kubelet::InstrumentedRuntime;
using knode::metrics::Registry;
using knode::testing::FakeRuntime;

namespace {

constexpr const char* kPause = "127.0.0.1:5000/pause:3.10";
constexpr const char* kImage = "127.0.0.1:5000/kubia:1";

rt::PodSandboxConfig sandbox(const std::string& name) {
  rt::PodSandboxConfig c;
  c.metadata = {name, name + "-uid", "default", 0};
  c.log_directory = "/var/log/pods/default_" + name + "_" + name + "-uid";
  return c;
}

rt::ContainerConfig container(const std::string& name) {
  rt::ContainerConfig c;
  c.metadata = {name, 0};
  c.image.image = kImage;
  c.log_path = name + "/0.log";
  return c;
}

// The value of one sample line ("name{labels} value") in the exposition; -1 when absent.
double sample(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

class InstrumentedRuntimeTest : public ::testing::Test {
 protected:
  InstrumentedRuntimeTest() {
    auto fake = std::make_unique<FakeRuntime>();
    fake_ = fake.get();
    fake_->add_image(kPause, /*present=*/true);
    fake_->add_image(kImage, /*present=*/true);
    rt_ = std::make_unique<InstrumentedRuntime>(std::move(fake), registry_);
  }
  std::string text() const { return registry_.render(); }

  Registry registry_;
  FakeRuntime* fake_ = nullptr;
  std::unique_ptr<InstrumentedRuntime> rt_;
};

TEST_F(InstrumentedRuntimeTest, EachCallCountsUnderUpstreamsOperationType) {
  auto pod = rt_->run_pod_sandbox(sandbox("web"));
  ASSERT_TRUE(pod.ok()) << pod.error();
  auto id = rt_->create_container(*pod, container("app"), sandbox("web"));
  ASSERT_TRUE(id.ok()) << id.error();
  ASSERT_TRUE(rt_->start_container(*id).ok());
  ASSERT_TRUE(rt_->list_containers({}).ok());
  ASSERT_TRUE(rt_->list_containers({}).ok());
  ASSERT_TRUE(rt_->pod_sandbox_status(*pod).ok());
  ASSERT_TRUE(rt_->image_status({kImage}).ok());

  const std::string t = text();
  for (const auto& [op, n] : std::map<std::string, double>{{"run_podsandbox", 1},
                                                           {"create_container", 1},
                                                           {"start_container", 1},
                                                           {"list_containers", 2},
                                                           {"podsandbox_status", 1},
                                                           {"image_status", 1}}) {
    const std::string labels = "{operation_type=\"" + op + "\"}";
    EXPECT_EQ(sample(t, "kubelet_runtime_operations_total" + labels), n) << op << "\n" << t;
    EXPECT_EQ(sample(t, "kubelet_runtime_operations_duration_seconds_count" + labels), n) << op;
    EXPECT_EQ(sample(t, "kubelet_runtime_operations_errors_total" + labels), -1) << op << ": no error happened";
  }
  // Only what was called appears.
  EXPECT_EQ(sample(t, "kubelet_runtime_operations_total{operation_type=\"stop_container\"}"), -1);
  EXPECT_EQ(sample(t, "kubelet_run_podsandbox_duration_seconds_count{runtime_handler=\"\"}"), 1) << t;
  // What the runtime did is what the kubelet sees: the calls reached it, in order.
  EXPECT_EQ(fake_->methods(), (std::vector<std::string>{"RunPodSandbox", "CreateContainer", "StartContainer",
                                                        "ListContainers", "ListContainers", "PodSandboxStatus",
                                                        "ImageStatus"}));
}

TEST_F(InstrumentedRuntimeTest, AFailedCallCountsAnErrorAndPassesItsErrorOn) {
  auto pod = rt_->run_pod_sandbox(sandbox("web"));
  ASSERT_TRUE(pod.ok());
  auto id = rt_->create_container(*pod, container("app"), sandbox("web"));
  ASSERT_TRUE(id.ok());
  fake_->fail_next("StartContainer", Status::Error("boom", EIO));
  Status s = rt_->start_container(*id);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error_number(), EIO);
  EXPECT_NE(s.message().find("boom"), std::string::npos) << s.message();
  ASSERT_TRUE(rt_->start_container(*id).ok());  // the second try works

  fake_->fail_next("RunPodSandbox", Status::Error("no network", EIO));
  EXPECT_FALSE(rt_->run_pod_sandbox(sandbox("other")).ok());

  const std::string t = text();
  EXPECT_EQ(sample(t, "kubelet_runtime_operations_total{operation_type=\"start_container\"}"), 2) << t;
  EXPECT_EQ(sample(t, "kubelet_runtime_operations_errors_total{operation_type=\"start_container\"}"), 1) << t;
  EXPECT_EQ(sample(t, "kubelet_runtime_operations_total{operation_type=\"run_podsandbox\"}"), 2);
  EXPECT_EQ(sample(t, "kubelet_runtime_operations_errors_total{operation_type=\"run_podsandbox\"}"), 1);
  EXPECT_EQ(sample(t, "kubelet_run_podsandbox_errors_total{runtime_handler=\"\"}"), 1) << t;
  EXPECT_EQ(sample(t, "kubelet_run_podsandbox_duration_seconds_count{runtime_handler=\"\"}"), 2) << t;
}

TEST_F(InstrumentedRuntimeTest, AnswersPassThroughUnchanged) {
  auto pod = rt_->run_pod_sandbox(sandbox("web"));
  ASSERT_TRUE(pod.ok());
  auto direct = fake_->pod_sandbox_status(*pod);
  auto through = rt_->pod_sandbox_status(*pod);
  ASSERT_TRUE(direct.ok() && through.ok());
  EXPECT_EQ(through->id, direct->id);
  EXPECT_EQ(through->ip, direct->ip);
  EXPECT_EQ(rt_->id_scheme(), fake_->id_scheme());
  auto missing = rt_->container_status("nope");
  EXPECT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().error_number(), ENOENT);
  EXPECT_EQ(sample(text(), "kubelet_runtime_operations_errors_total{operation_type=\"container_status\"}"), 1);
}

}  // namespace
