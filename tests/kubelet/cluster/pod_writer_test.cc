// PodWriter against a fake API server: a pod's status is PATCHed (merge patch, the UID as
// precondition) only when it changed, and again on restate() even when unchanged, which is
// how the kubelet writes back what the node lifecycle controller overwrote.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "cluster/pod_writer.h"
#include "common/kube/fake_apiserver.h"
#include "knode/kube/client.h"

namespace knode::kubelet {
namespace {

using knode::testing::FakeApiServer;

api::Pod pod(const std::string& name, const std::string& phase) {
  api::Pod p;
  p.metadata.namespace_ = "default";
  p.metadata.name = name;
  p.metadata.uid = "uid-" + name;
  p.status.phase = phase;
  return p;
}

class PodWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kube::KubeConfig c;
    c.server = server_.url();
    c.token = "t";
    c.source = "test";
    auto cl = kube::RestClient::create(c, kube::ClientOptions{.qps = 0});
    ASSERT_TRUE(cl.ok()) << cl.status().message();
    client_ = std::move(*cl);
    writer_ = std::make_unique<PodWriter>(*client_, "n1");
    writer_->start();
  }
  void TearDown() override { writer_->stop(); }

  // The status PATCHes of a pod the server saw.
  std::vector<FakeApiServer::Request> patches(const std::string& name) const {
    std::vector<FakeApiServer::Request> out;
    for (const auto& r : server_.requests()) {
      if (r.method == "PATCH" && r.target == "/api/v1/namespaces/default/pods/" + name + "/status") out.push_back(r);
    }
    return out;
  }
  // Writes go out in order: once `marker`'s status has arrived, everything asked before it
  // was handled.
  void barrier(int n) {
    const std::string marker = "marker";
    writer_->status(pod(marker, "Phase" + std::to_string(n)));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (static_cast<int>(patches(marker).size()) < n) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the writer did not write the marker";
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling the fake server's record
    }
  }

  FakeApiServer server_;
  std::unique_ptr<kube::RestClient> client_;
  std::unique_ptr<PodWriter> writer_;
};

TEST_F(PodWriterTest, StatusIsWrittenWhenItChangesAndAgainWhenRestated) {
  writer_->status(pod("web", "Pending"));
  barrier(1);
  auto got = patches("web");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].content_type, "application/merge-patch+json");
  auto body = nlohmann::json::parse(got[0].body);
  EXPECT_EQ(body["metadata"]["uid"], "uid-web");
  EXPECT_EQ(body["status"]["phase"], "Pending");

  writer_->status(pod("web", "Pending"));  // unchanged: not written
  barrier(2);
  EXPECT_EQ(patches("web").size(), 1u);

  writer_->restate(pod("web", "Pending"));  // the API holds another: written again
  barrier(3);
  ASSERT_EQ(patches("web").size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(patches("web")[1].body)["status"]["phase"], "Pending");

  writer_->status(pod("web", "Running"));
  barrier(4);
  ASSERT_EQ(patches("web").size(), 3u);
  EXPECT_EQ(nlohmann::json::parse(patches("web")[2].body)["status"]["phase"], "Running");
  EXPECT_EQ(writer_->writes(), 7u);  // web 3, marker 4
}

}  // namespace
}  // namespace knode::kubelet
