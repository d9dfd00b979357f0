// iptables mode on this machine's kernel, in a private network namespace: partial syncs
// (a shared chain written only when a service port's part of it changed) leave the nat
// and filter tables exactly as a full sync of the same model writes them; the periodic
// check (kernel_as_left) sees a rule someone else added or removed, also when a partial
// sync ran in between, and the full sync it leads to repairs the table.
#include <gtest/gtest.h>

#include "iptables/proxier.h"
#include "support/netns_host.h"
#include "support/netns_util.h"

using namespace knode;
using knode::iptables::testing::run;
using knode::iptables::testing::saved;

namespace {

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }

using knode::testing::NetnsHost;

proxy::ServicePort service(int i, int endpoints, uint16_t node_port = 0) {
  proxy::ServicePort s;
  s.name = "ns/svc-" + std::to_string(i) + ":http";
  s.cluster_ip = ip(("10.96.0." + std::to_string(10 + i)).c_str());
  s.port = 80;
  s.node_port = node_port;
  for (int e = 0; e < endpoints; ++e) {
    proxy::Endpoint ep;
    ep.ip = ip(("10.244." + std::to_string(i) + "." + std::to_string(10 + e)).c_str());
    ep.port = 8080;
    ep.local = true;
    s.cluster_endpoints.push_back(ep);
  }
  s.local_endpoints = s.cluster_endpoints;
  s.has_any_endpoint = endpoints > 0;
  return s;
}

class IptablesModeNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    KNODE_REQUIRE_NETNS();
    iptables::testing::reset_tables();
    config_.cluster_cidrs = {*net::Cidr::Parse("10.244.0.0/16")};
    proxier_ = iptables_proxy::make_iptables_proxier(config_, host_);
  }
  void TearDown() override {
    if (proxier_) (void)proxier_->cleanup();
  }
  Status sync(ProxyBackend& p, const std::set<std::string>& changed, bool full) {
    proxy::ProxyState st;
    for (const auto& [n, s] : model_) st.services.push_back(s);
    SyncStats stats;
    return p.sync(st, changed, full, &stats);
  }
  void put(const proxy::ServicePort& s) { model_[s.name] = s; }
  // Both tables as a fresh proxier's full sync of the same model writes them.
  std::pair<std::vector<std::string>, std::vector<std::string>> as_a_full_sync_writes_them() {
    auto now = std::make_pair(saved("nat"), saved("filter"));
    iptables::testing::reset_tables();
    auto fresh = iptables_proxy::make_iptables_proxier(config_, host_);
    EXPECT_TRUE(sync(*fresh, {}, true).ok());
    auto want = std::make_pair(saved("nat"), saved("filter"));
    EXPECT_EQ(now, want);
    return want;
  }

  NetnsHost host_;
  iptables_proxy::IptablesConfig config_;
  ProxyBackendPtr proxier_;
  std::map<std::string, proxy::ServicePort> model_;
};

}  // namespace

TEST_F(IptablesModeNetns, PartialSyncsLeaveTheTablesAsAFullSyncWritesThem) {
  for (int i = 0; i < 6; ++i) put(service(i, 3, i % 2 ? static_cast<uint16_t>(30000 + i) : 0));
  ASSERT_TRUE(sync(*proxier_, {}, true).ok());
  // One endpoint less (no shared chain changes), a service losing all endpoints (nat
  // KUBE-SERVICES loses its rule, filter KUBE-SERVICES gains a reject), a new service, a
  // removed one, a node port added: each as a partial sync naming only that service.
  put(service(1, 2, 30001));
  ASSERT_TRUE(sync(*proxier_, {"ns/svc-1:http"}, false).ok());
  put(service(2, 0));
  ASSERT_TRUE(sync(*proxier_, {"ns/svc-2:http"}, false).ok());
  put(service(7, 2));
  ASSERT_TRUE(sync(*proxier_, {"ns/svc-7:http"}, false).ok());
  model_.erase("ns/svc-4:http");
  ASSERT_TRUE(sync(*proxier_, {"ns/svc-4:http"}, false).ok());
  put(service(0, 3, 30100));
  ASSERT_TRUE(sync(*proxier_, {"ns/svc-0:http"}, false).ok());
  put(service(2, 1));
  ASSERT_TRUE(sync(*proxier_, {"ns/svc-2:http"}, false).ok());
  // The same name with another protocol (the TCP chains go); a node port with the Local
  // policy (a KUBE-SVL- chain over its endpoint chains), then with an endpoint less and
  // client affinity: the chains a service port had are found from the table, not kept.
  auto udp = service(3, 2);
  udp.protocol = net::Protocol::kUDP;
  put(udp);
  ASSERT_TRUE(sync(*proxier_, {"ns/svc-3:http"}, false).ok());
  auto local = service(5, 3, 30005);
  local.external_policy_local = true;
  put(local);
  ASSERT_TRUE(sync(*proxier_, {"ns/svc-5:http"}, false).ok());
  local = service(5, 2, 30005);
  local.external_policy_local = true;
  local.affinity_timeout_seconds = 60;
  put(local);
  ASSERT_TRUE(sync(*proxier_, {"ns/svc-5:http"}, false).ok());
  EXPECT_TRUE(proxier_->kernel_as_left());
  auto tables = as_a_full_sync_writes_them();
  // The changes are in: svc-7's cluster IP, svc-0's node port, no svc-4.
  auto has = [](const std::vector<std::string>& lines, const std::string& what) {
    for (const auto& l : lines) {
      if (l.find(what) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has(tables.first, "-d 10.96.0.17/32"));
  EXPECT_TRUE(has(tables.first, "--dport 30100"));
  EXPECT_FALSE(has(tables.first, "-d 10.96.0.14/32"));
  EXPECT_TRUE(has(tables.first, "-d 10.96.0.13/32 -p udp"));
  EXPECT_FALSE(has(tables.first, "-d 10.96.0.13/32 -p tcp"));
  EXPECT_TRUE(has(tables.first, "-A KUBE-SVL-"));
  EXPECT_FALSE(has(tables.first, "10.244.5.12"));  // svc-5's third endpoint
}

TEST_F(IptablesModeNetns, ThePeriodicCheckSeesForeignRulesAndTheFullSyncRepairs) {
  for (int i = 0; i < 4; ++i) put(service(i, 2));
  ASSERT_TRUE(sync(*proxier_, {}, true).ok());
  EXPECT_TRUE(proxier_->kernel_as_left());
  const auto nat = saved("nat");

  // Someone deletes a rule of ours: the check sees it; a full sync puts it back.
  run("iptables-legacy -t nat -D KUBE-SERVICES 1");
  EXPECT_FALSE(proxier_->kernel_as_left());
  ASSERT_TRUE(sync(*proxier_, {}, true).ok());
  EXPECT_EQ(saved("nat"), nat);
  EXPECT_TRUE(proxier_->kernel_as_left());

  // Someone removes a nat rule of ours, then a change is synced partially: that sync
  // reads the changed table, asks for a prompt follow-up, and the follow-up (a partial
  // sync by its arguments) is full and puts the rule back.
  run("iptables-legacy -t nat -D KUBE-SERVICES 2");
  put(service(2, 1));
  {
    proxy::ProxyState st;
    for (const auto& [n, sv] : model_) st.services.push_back(sv);
    SyncStats stats;
    ASSERT_TRUE(proxier_->sync(st, {"ns/svc-2:http"}, false, &stats).ok());
    EXPECT_GT(stats.resync_after.count(), 0);
  }
  EXPECT_FALSE(proxier_->kernel_as_left());
  ASSERT_TRUE(sync(*proxier_, {}, false).ok());
  EXPECT_TRUE(proxier_->kernel_as_left());
  as_a_full_sync_writes_them();

  // Someone adds a filter rule, then a change is synced partially before the periodic
  // check (that sync does not touch the filter table), and the check still says no.
  run("iptables-legacy -t filter -A KUBE-SERVICES -d 192.0.2.1/32 -j DROP");
  put(service(3, 1));
  ASSERT_TRUE(sync(*proxier_, {"ns/svc-3:http"}, false).ok());
  EXPECT_FALSE(proxier_->kernel_as_left());
  ASSERT_TRUE(sync(*proxier_, {}, true).ok());
  EXPECT_TRUE(proxier_->kernel_as_left());
  as_a_full_sync_writes_them();
}
