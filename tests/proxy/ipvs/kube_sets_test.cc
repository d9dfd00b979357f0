// kube-proxy's IPVS-mode ip sets: names within ipset's limit, kube-proxy's spellings.
#include "ipvs/kube_sets.h"

#include <gtest/gtest.h>

namespace knode::ipvs_proxy {
namespace {

using ipset::kMaxNameLength;
using ipset::SetType;

TEST(KubeSets, NamesFitAndFollowKubeProxy) {
  for (int family : {4, 6}) {
    auto sets = kube_proxy_sets(family);
    EXPECT_EQ(sets.size(), 17u);
    for (const auto& s : sets) {
      EXPECT_LE(s.name.size(), kMaxNameLength) << s.name;
      EXPECT_FALSE(s.comment.empty()) << s.name;
    }
  }
  EXPECT_EQ(kube_proxy_sets(4)[1].name, "KUBE-CLUSTER-IP");
  EXPECT_EQ(kube_proxy_sets(6)[1].name, "KUBE-6-CLUSTER-IP");
  EXPECT_EQ(kube_proxy_sets(4)[9].type, SetType::kBitmapPort);
  EXPECT_EQ(family_set_name(kLoadBalancerSourceCidr, 6), "KUBE-6-LOAD-BALANCER-SOURCE-CID");
}

}  // namespace
}  // namespace knode::ipvs_proxy
