// ADD, CHECK, DEL against the real kernel, the plugin running in a test "node" netns.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "netns_harness.h"

namespace knode::cni::testing {
namespace {

class CniAddDel : public CniNetnsTest {
 protected:
  std::string pod_ip(const PluginRun& r) {
    std::string a = r.json()["ips"][0]["address"];
    return a.substr(0, a.find('/'));
  }
  bool reserved(const std::string& ip) {
    struct stat st {};
    return ::stat((data_dir_ + "/" + network_ + "/" + ip).c_str(), &st) == 0;
  }
};

TEST_F(CniAddDel, AddGivesThePodItsAddressDefaultRouteAndLoopback) {
  std::string pod = add_netns("pod-a");
  auto r = cni("ADD", "ctr-a", pod, conf("10.231.0.0/24"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = r.json();
  EXPECT_EQ(j["cniVersion"], "1.1.0");
  EXPECT_EQ(j["ips"][0]["address"], "10.231.0.2/24");
  EXPECT_EQ(j["ips"][0]["gateway"], "10.231.0.1");
  EXPECT_EQ(j["interfaces"][2]["name"], "eth0");
  EXPECT_EQ(j["interfaces"][2]["sandbox"], pod);
  std::string out;
  ASSERT_EQ(in_ns("pod-a", "ip -4 addr show dev eth0", &out), 0);
  EXPECT_NE(out.find("10.231.0.2/24"), std::string::npos) << out;
  ASSERT_EQ(in_ns("pod-a", "ip route show default", &out), 0);
  EXPECT_NE(out.find("via 10.231.0.1 dev eth0"), std::string::npos) << out;
  ASSERT_EQ(in_ns("pod-a", "ip link show lo", &out), 0);
  EXPECT_NE(out.find("UP"), std::string::npos) << out;
  // The host end is on the bridge, which holds the gateway address, in the node netns only.
  std::string host = j["interfaces"][1]["name"];
  ASSERT_EQ(in_ns("node", "ip link show " + host, &out), 0);
  EXPECT_NE(out.find("master kcbr0"), std::string::npos) << out;
  ASSERT_EQ(in_ns("node", "ip -4 addr show dev kcbr0", &out), 0);
  EXPECT_NE(out.find("10.231.0.1/24"), std::string::npos) << out;
  EXPECT_EQ(sh("ip link show kcbr0 >/dev/null 2>&1"), 1) << "the bridge leaked into the root netns";
  EXPECT_TRUE(reserved("10.231.0.2"));
}

TEST_F(CniAddDel, TwoPodsReachEachOtherAndTheNode) {
  std::string a = add_netns("pod-a");
  std::string b = add_netns("pod-b");
  std::string c = conf("10.232.0.0/24", R"("hairpinMode":true)");
  auto ra = cni("ADD", "ctr-a", a, c);
  auto rb = cni("ADD", "ctr-b", b, c);
  ASSERT_EQ(ra.exit_code, 0) << ra.out;
  ASSERT_EQ(rb.exit_code, 0) << rb.out;
  EXPECT_NE(pod_ip(ra), pod_ip(rb));
  EXPECT_TRUE(ping("pod-a", pod_ip(rb)));
  EXPECT_TRUE(ping("pod-b", pod_ip(ra)));
  EXPECT_TRUE(ping("pod-a", "10.232.0.1"));  // the node, through its bridge address
  EXPECT_TRUE(ping("node", pod_ip(rb)));
  std::string out;
  ASSERT_EQ(in_ns("node", "bridge -d link show", &out), 0);
  EXPECT_NE(out.find("hairpin on"), std::string::npos) << out;
}

TEST_F(CniAddDel, CheckPassesAfterAddAndNamesAMissingAddressOrRoute) {
  std::string pod = add_netns("pod-a");
  auto added = cni("ADD", "ctr-a", pod, conf("10.233.0.0/24"));
  ASSERT_EQ(added.exit_code, 0) << added.out;
  auto with_prev = nlohmann::json::parse(conf("10.233.0.0/24"));
  with_prev["prevResult"] = added.json();
  auto ok = cni("CHECK", "ctr-a", pod, with_prev.dump());
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_EQ(ok.out, "");

  ASSERT_EQ(in_ns("pod-a", "ip route del default"), 0);
  auto no_route = cni("CHECK", "ctr-a", pod, with_prev.dump());
  EXPECT_EQ(no_route.code(), 104) << no_route.out;
  EXPECT_NE(no_route.json()["msg"].get<std::string>().find("0.0.0.0/0"), std::string::npos);

  ASSERT_EQ(in_ns("pod-a", "ip addr del 10.233.0.2/24 dev eth0"), 0);
  auto no_addr = cni("CHECK", "ctr-a", pod, with_prev.dump());
  EXPECT_EQ(no_addr.code(), 103) << no_addr.out;
  EXPECT_NE(no_addr.json()["msg"].get<std::string>().find("10.233.0.2/24"), std::string::npos);

  ASSERT_EQ(in_ns("pod-a", "ip link del eth0"), 0);
  auto no_if = cni("CHECK", "ctr-a", pod, with_prev.dump());
  EXPECT_EQ(no_if.code(), 102) << no_if.out;
}

TEST_F(CniAddDel, DelFreesAddressAndVethAndCanBeRepeated) {
  std::string pod = add_netns("pod-a");
  std::string c = conf("10.234.0.0/24");
  auto added = cni("ADD", "ctr-a", pod, c);
  ASSERT_EQ(added.exit_code, 0) << added.out;
  std::string host = added.json()["interfaces"][1]["name"];
  ASSERT_TRUE(reserved("10.234.0.2"));
  auto del = cni("DEL", "ctr-a", pod, c);
  EXPECT_EQ(del.exit_code, 0) << del.out;
  EXPECT_EQ(del.out, "");
  EXPECT_FALSE(reserved("10.234.0.2"));
  EXPECT_NE(in_ns("node", "ip link show " + host + " 2>/dev/null"), 0);
  EXPECT_NE(in_ns("pod-a", "ip link show eth0 2>/dev/null"), 0);
  auto again = cni("DEL", "ctr-a", pod, c);
  EXPECT_EQ(again.exit_code, 0) << again.out;
}

TEST_F(CniAddDel, DelSucceedsWhenTheNetnsIsGone) {
  std::string pod = add_netns("pod-a");
  std::string c = conf("10.235.0.0/24");
  ASSERT_EQ(cni("ADD", "ctr-a", pod, c).exit_code, 0);
  del_netns("pod-a");
  auto del = cni("DEL", "ctr-a", pod, c);
  EXPECT_EQ(del.exit_code, 0) << del.out;
  EXPECT_FALSE(reserved("10.235.0.2"));
  auto no_netns = cni("DEL", "ctr-a", "", c);
  EXPECT_EQ(no_netns.exit_code, 0) << no_netns.out;
}

TEST_F(CniAddDel, AddOfAnExistingIfnameFailsCleanly) {
  std::string pod = add_netns("pod-a");
  ASSERT_EQ(in_ns("pod-a", "ip link add eth0 type veth peer name eth0peer"), 0);
  std::string before;
  in_ns("node", "ip -o link show", &before);
  auto r = cni("ADD", "ctr-a", pod, conf("10.236.0.0/24"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.code(), 101) << r.out;
  EXPECT_NE(r.json()["msg"].get<std::string>().find("eth0"), std::string::npos);
  EXPECT_FALSE(reserved("10.236.0.2"));
  std::string after;
  in_ns("node", "ip -o link show", &after);
  EXPECT_EQ(before, after) << "a failed ADD left links behind";
}

TEST_F(CniAddDel, OlderSpecVersionsGetTheirResultShape) {
  std::string a = add_netns("pod-a");
  std::string b = add_netns("pod-b");
  auto r040 = cni("ADD", "ctr-a", a, conf("10.237.0.0/24", "", "", "0.4.0"));
  ASSERT_EQ(r040.exit_code, 0) << r040.out;
  EXPECT_EQ(r040.json()["cniVersion"], "0.4.0");
  EXPECT_EQ(r040.json()["ips"][0]["version"], "4");
  auto r100 = cni("ADD", "ctr-b", b, conf("10.237.0.0/24", "", "", "1.0.0"));
  ASSERT_EQ(r100.exit_code, 0) << r100.out;
  EXPECT_EQ(r100.json()["cniVersion"], "1.0.0");
  EXPECT_FALSE(r100.json()["ips"][0].contains("version"));
}

TEST_F(CniAddDel, ErrorCodesForBadEnvironmentJsonAndSubnet) {
  std::string pod = add_netns("pod-a");
  auto no_command = finish(start({{"CNI_CONTAINERID", "c"}, {"CNI_NETNS", pod}, {"CNI_IFNAME", "eth0"}},
                                 conf("10.238.0.0/24")));
  EXPECT_NE(no_command.exit_code, 0);
  EXPECT_EQ(no_command.code(), 4) << no_command.out;
  auto no_id = cni("ADD", "", pod, conf("10.238.0.0/24"));
  EXPECT_EQ(no_id.code(), 4) << no_id.out;
  auto bad_json = cni("ADD", "ctr-a", pod, R"({"cniVersion": "1.1.0", "name": )");
  EXPECT_EQ(bad_json.code(), 6) << bad_json.out;
  auto bad_subnet = cni("ADD", "ctr-a", pod, conf("10.238.0.0/40"));
  EXPECT_EQ(bad_subnet.code(), 7) << bad_subnet.out;
  std::string links;
  in_ns("pod-a", "ip -o link show", &links);
  EXPECT_EQ(links.find("eth0"), std::string::npos) << "a rejected ADD touched the pod";
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class CniBridgeMac : public CniAddDel {
 protected:
  std::string bridge(const char* attr) {
    std::string out;
    in_ns("node", std::string("cat /sys/class/net/kcbr0/") + attr, &out);
    return trimmed(out);
  }
  static constexpr const char* kNetAddrSet = "3";  // addr_assign_type: set by someone, not the kernel
};

TEST_F(CniBridgeMac, TheBridgeKeepsItsMacWhilePodsComeAndGo) {
  const std::string c = conf("10.239.0.0/24");
  std::vector<std::pair<std::string, std::string>> by_mac;  // host end's MAC, pod
  for (std::string p : {"pod-a", "pod-b", "pod-c"}) {
    auto r = cni("ADD", "ctr-" + p, add_netns(p), c);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    by_mac.emplace_back(r.json()["interfaces"][1]["mac"], p);
  }
  const std::string mac = bridge("address");
  ASSERT_EQ(mac.size(), 17u);
  EXPECT_EQ(bridge("addr_assign_type"), kNetAddrSet);
  // A bridge left to the kernel has its lowest port's MAC, and the next lowest once that
  // pod goes: remove them lowest first.
  std::sort(by_mac.begin(), by_mac.end());
  for (const auto& [port_mac, p] : by_mac) {
    auto r = cni("DEL", "ctr-" + p, ns_name(p), c);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(bridge("address"), mac) << "after " << p << " (host end " << port_mac << ") went";
  }
  auto again = cni("ADD", "ctr-d", add_netns("pod-d"), c);
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(bridge("address"), mac);
}

TEST_F(CniBridgeMac, ABridgeMadeBeforeIsPinnedToTheMacItHas) {
  ASSERT_EQ(in_ns("node", "ip link add kcbr0 type bridge"), 0);
  const std::string mac = bridge("address");
  ASSERT_NE(bridge("addr_assign_type"), kNetAddrSet) << "the kernel should pick a new bridge's MAC";
  auto r = cni("ADD", "ctr-a", add_netns("pod-a"), conf("10.239.0.0/24"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(bridge("addr_assign_type"), kNetAddrSet);
  EXPECT_EQ(bridge("address"), mac);
}

// host-local hands a freed address out again once its range wraps: the node and the other
// pods still hold the old pod's MAC for it (for up to half a minute, REACHABLE). The new
// pod's gratuitous ARP replaces it at once.
TEST_F(CniAddDel, AReusedAddressIsAnnouncedToTheNodeAndTheOtherPods) {
  const std::string c = conf("10.240.0.0/24", "", R"("rangeStart":"10.240.0.2","rangeEnd":"10.240.0.3")");
  auto rc = cni("ADD", "ctr-c", add_netns("pod-c"), c);
  ASSERT_EQ(rc.exit_code, 0) << rc.out;
  auto ra = cni("ADD", "ctr-a", add_netns("pod-a"), c);
  ASSERT_EQ(ra.exit_code, 0) << ra.out;
  const std::string ip = pod_ip(ra);
  const std::string mac_a = ra.json()["interfaces"][2]["mac"];
  ASSERT_TRUE(ping("node", ip));
  ASSERT_TRUE(ping("pod-c", ip));
  auto lladdr = [&](const std::string& where) {
    std::string out;
    in_ns(where, "ip neigh show " + ip, &out);
    return out;
  };
  ASSERT_NE(lladdr("node").find(mac_a), std::string::npos) << lladdr("node");

  ASSERT_EQ(cni("DEL", "ctr-a", ns_name("pod-a"), c).exit_code, 0);
  auto rb = cni("ADD", "ctr-b", add_netns("pod-b"), c);
  ASSERT_EQ(rb.exit_code, 0) << rb.out;
  ASSERT_EQ(pod_ip(rb), ip) << "the range should have wrapped to the freed address";
  const std::string mac_b = rb.json()["interfaces"][2]["mac"];
  ASSERT_NE(mac_a, mac_b);
  // The announcement crosses the veth and the bridge asynchronously: look for up to 2 s.
  for (const char* where : {"node", "pod-c"}) {
    bool updated = false;
    for (int i = 0; i < 20 && !updated; ++i) {
      updated = lladdr(where).find(mac_b) != std::string::npos;
      if (!updated) usleep(100 * 1000);
    }
    EXPECT_TRUE(updated) << where << " still has: " << lladdr(where);
  }
  EXPECT_TRUE(ping("pod-c", ip));
}

TEST_F(CniAddDel, VersionListsTheSupportedVersions) {
  auto r = cni("VERSION", "", "", R"({"cniVersion":"1.0.0"})", "");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = r.json();
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["supportedVersions"], nlohmann::json({"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
}

}  // namespace
}  // namespace knode::cni::testing
