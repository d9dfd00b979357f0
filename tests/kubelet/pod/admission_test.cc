#include "pod/admission.h"

#include <gtest/gtest.h>

namespace knode::kubelet {
namespace {

api::Pod with_port(const std::string& uid, int32_t host_port, const std::string& protocol = "",
                   const std::string& host_ip = "", bool init = false) {
  api::Pod p;
  p.metadata.uid = uid;
  p.metadata.name = uid;
  api::Container c;
  c.name = "c";
  if (host_port >= 0) c.ports.push_back({"p", host_port, 8080, protocol, host_ip});
  (init ? p.spec.init_containers : p.spec.containers).push_back(c);
  return p;
}

TEST(Admission, AHostPortHeldByAnActivePodIsRejectedAsNodePorts) {
  auto held = with_port("a", 21017);
  auto r = check_host_ports(with_port("b", 21017), {&held});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->reason, "NodePorts");
  EXPECT_EQ(r->message, "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports");
  // an init container's port counts too; the pod itself is no conflict
  auto init_held = with_port("i", 9000, "TCP", "", /*init=*/true);
  EXPECT_TRUE(check_host_ports(with_port("b", 9000), {&init_held}).has_value());
  EXPECT_FALSE(check_host_ports(held, {&held}).has_value());
}

TEST(Admission, ProtocolAndDistinctHostIPsDoNotConflictButAWildcardDoes) {
  auto tcp = with_port("a", 53, "TCP", "10.0.0.1");
  EXPECT_FALSE(check_host_ports(with_port("b", 53, "UDP", "10.0.0.1"), {&tcp}).has_value());
  EXPECT_FALSE(check_host_ports(with_port("b", 53, "TCP", "10.0.0.2"), {&tcp}).has_value());
  EXPECT_FALSE(check_host_ports(with_port("b", 54, "TCP", "10.0.0.1"), {&tcp}).has_value());
  EXPECT_TRUE(check_host_ports(with_port("b", 53, "TCP", "10.0.0.1"), {&tcp}).has_value());
  EXPECT_TRUE(check_host_ports(with_port("b", 53, "", "0.0.0.0"), {&tcp}).has_value()) << "unset protocol is TCP";
  auto wildcard = with_port("w", 80);
  EXPECT_TRUE(check_host_ports(with_port("b", 80, "TCP", "10.0.0.9"), {&wildcard}).has_value());
  auto no_host_port = with_port("n", 0);
  EXPECT_FALSE(check_host_ports(with_port("b", 0), {&no_host_port}).has_value());
}

}  // namespace
}  // namespace knode::kubelet
