// The pod's and its containers' runtime configs (runtime_config.h), pure.
#include "runtime_config.h"

#include <gtest/gtest.h>

namespace knode::kubelet {
namespace {

api::Pod pod_with_groups(std::optional<int64_t> fs_group, std::vector<int64_t> supplemental) {
  api::Pod p;
  p.metadata.name = "web";
  p.metadata.namespace_ = "shop";
  p.metadata.uid = "uid-1";
  api::Container c;
  c.name = "app";
  c.image = "busybox";
  p.spec.containers = {c};
  api::PodSecurityContext sc;
  sc.run_as_user = 1000;
  sc.fs_group = fs_group;
  sc.supplemental_groups = std::move(supplemental);
  p.spec.security_context = sc;
  return p;
}

// fsGroup joins the supplementalGroups of the sandbox and of every container (once), so a
// container of another user reads what a volume gave the group (a secret at 0440).
TEST(RuntimeConfig, FsGroupIsASupplementalGroupOfTheSandboxAndItsContainers) {
  NodeSettings node{.node_name = "n1", .cluster_dns = {}, .cluster_domain = "cluster.local", .resolv_conf = "/dev/null"};
  auto pod = pod_with_groups(1001, {2000});
  auto c = container_config(pod, pod.spec.containers[0], 0, "busybox", {}, {}, node);
  EXPECT_EQ(c.security.supplemental_groups, (std::vector<int64_t>{2000, 1001}));
  EXPECT_EQ(c.security.run_as_user, 1000);
  auto s = sandbox_config(pod, 0, node);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->supplemental_groups, (std::vector<int64_t>{2000, 1001}));

  pod = pod_with_groups(2000, {2000});
  c = container_config(pod, pod.spec.containers[0], 0, "busybox", {}, {}, node);
  EXPECT_EQ(c.security.supplemental_groups, (std::vector<int64_t>{2000}));
  pod = pod_with_groups(std::nullopt, {});
  c = container_config(pod, pod.spec.containers[0], 0, "busybox", {}, {}, node);
  EXPECT_TRUE(c.security.supplemental_groups.empty());
}

}  // namespace
}  // namespace knode::kubelet
