#include "cluster/node_status.h"

#include <gtest/gtest.h>

#include "knode/api/codec.h"

namespace knode::kubelet {
namespace {

NodeFacts facts() {
  NodeFacts f;
  f.name = "node-1";
  f.hostname = "node-1";
  f.internal_ips = {"192.168.77.10"};
  f.cpus = 2;
  f.memory_bytes = 24ll << 30;
  f.ephemeral_storage_bytes = 100ll << 30;
  f.kernel_version = "6.18.0";
  f.os_image = "Debian GNU/Linux 12 (bookworm)";
  f.kubelet_version = "v1.37.2+knode.0.1.0";
  return f;
}

const api::NodeCondition* find(const api::NodeStatus& s, const std::string& type) {
  for (const auto& c : s.conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

TEST(NodeStatusTest, RegistrationCarriesTheWellKnownLabels) {
  api::Node n = registration(facts());
  EXPECT_EQ(n.metadata.name, "node-1");
  EXPECT_EQ(n.metadata.labels.at("kubernetes.io/hostname"), "node-1");
  EXPECT_EQ(n.metadata.labels.at("kubernetes.io/os"), "linux");
  EXPECT_EQ(n.metadata.labels.at("kubernetes.io/arch"), "amd64");
}

TEST(NodeStatusTest, CapacityAddressesAndNodeInfo) {
  NodeSignals s;
  s.runtime_ready = true;
  s.runtime_version = "containerd://v2.4.2";
  auto st = node_status(facts(), s, {}, api::Time::FromUnixNanos(1000000000000));
  EXPECT_EQ(st.capacity.at("cpu").str(), "2");
  EXPECT_EQ(st.capacity.at("memory").str(), "25165824Ki");
  EXPECT_EQ(st.capacity.at("pods").str(), "110");
  EXPECT_EQ(st.capacity.at("ephemeral-storage").str(), "104857600Ki");
  EXPECT_EQ(st.allocatable, st.capacity);
  ASSERT_EQ(st.addresses.size(), 2u);
  EXPECT_EQ(st.addresses[0].type, "InternalIP");
  EXPECT_EQ(st.addresses[0].address, "192.168.77.10");
  EXPECT_EQ(st.addresses[1].type, "Hostname");
  EXPECT_EQ(st.node_info.kubelet_version, "v1.37.2+knode.0.1.0");
  EXPECT_EQ(st.node_info.container_runtime_version, "containerd://v2.4.2");
  EXPECT_EQ(st.daemon_endpoints.kubelet_endpoint.port, 10250);
  ASSERT_TRUE(find(st, "Ready"));
  EXPECT_EQ(find(st, "Ready")->status, "True");
  EXPECT_EQ(find(st, "Ready")->reason, "KubeletReady");
  EXPECT_EQ(find(st, "MemoryPressure")->status, "False");
  EXPECT_EQ(find(st, "DiskPressure")->reason, "KubeletHasNoDiskPressure");
  EXPECT_EQ(find(st, "PIDPressure")->reason, "KubeletHasSufficientPID");
}

TEST(NodeStatusTest, TransitionTimesStayUntilTheStatusChangesAndHeartbeatsAloneAreNoChange) {
  NodeSignals ready;
  ready.runtime_ready = true;
  auto t1 = api::Time::FromUnixNanos(1000ll * 1000000000);
  auto t2 = api::Time::FromUnixNanos(1010ll * 1000000000);
  auto a = node_status(facts(), ready, {}, t1);
  auto b = node_status(facts(), ready, a.conditions, t2);
  EXPECT_EQ(find(b, "Ready")->last_transition_time, t1);
  EXPECT_EQ(find(b, "Ready")->last_heartbeat_time, t2);
  EXPECT_FALSE(status_differs(a, b));
  NodeSignals down;
  down.not_ready_message = "container runtime is down";
  auto c = node_status(facts(), down, b.conditions, t2);
  EXPECT_TRUE(status_differs(b, c));
  EXPECT_EQ(find(c, "Ready")->status, "False");
  EXPECT_EQ(find(c, "Ready")->reason, "KubeletNotReady");
  EXPECT_EQ(find(c, "Ready")->message, "container runtime is down");
  EXPECT_EQ(find(c, "Ready")->last_transition_time, t2);
  EXPECT_EQ(find(c, "MemoryPressure")->last_transition_time, t1);
}

TEST(NodeStatusTest, StatusEncodesAsTheApiSpellsIt) {
  NodeSignals s;
  s.runtime_ready = true;
  api::Node n;
  n.metadata.name = "node-1";
  n.status = node_status(facts(), s, {}, api::Time::FromUnixNanos(1000ll * 1000000000));
  auto j = api::to_json(api::Object(n));
  EXPECT_EQ(j["status"]["nodeInfo"]["kubeletVersion"], "v1.37.2+knode.0.1.0");
  EXPECT_EQ(j["status"]["conditions"][3]["type"], "Ready");
  EXPECT_EQ(j["status"]["conditions"][3]["lastHeartbeatTime"], "1970-01-01T00:16:40Z");
}

TEST(NodeStatusTest, LeaseIsOwnedByTheNodeWithAMicroTime) {
  auto l = lease_object("node-1", "uid-1", 40, api::Time::FromUnixNanos(1000ll * 1000000000 + 1234567));
  EXPECT_EQ(l["metadata"]["namespace"], "kube-node-lease");
  EXPECT_EQ(l["spec"]["holderIdentity"], "node-1");
  EXPECT_EQ(l["spec"]["leaseDurationSeconds"], 40);
  EXPECT_EQ(l["spec"]["renewTime"], "1970-01-01T00:16:40.001234Z");
  EXPECT_EQ(l["metadata"]["ownerReferences"][0]["uid"], "uid-1");
  EXPECT_EQ(l["metadata"]["ownerReferences"][0]["kind"], "Node");
}

TEST(NodeStatusTest, MachineFactsAreRead) {
  auto f = read_node_facts("n", {"10.0.0.1"}, "/");
  EXPECT_GT(f.cpus, 0);
  EXPECT_GT(f.memory_bytes, 0);
  EXPECT_GT(f.ephemeral_storage_bytes, 0);
  EXPECT_FALSE(f.kernel_version.empty());
}

}  // namespace
}  // namespace knode::kubelet
