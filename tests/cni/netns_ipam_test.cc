// host-local IPAM through the real plugin: concurrency, exhaustion, GC, STATUS.
#include <dirent.h>
#include <sys/stat.h>

#include <fstream>
#include <set>

#include "netns_harness.h"

namespace knode::cni::testing {
namespace {

class CniIpam : public CniNetnsTest {
 protected:
  std::set<std::string> reservations() {
    std::set<std::string> out;
    DIR* d = opendir((data_dir_ + "/" + network_).c_str());
    if (d == nullptr) return out;
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != ".." && n != "lock" && n.rfind("last_reserved_ip", 0) != 0) out.insert(n);
    }
    closedir(d);
    return out;
  }
};

TEST_F(CniIpam, FiftyConcurrentAddsGetFiftyDistinctAddresses) {
  constexpr int kPods = 50;
  std::vector<std::string> paths;
  for (int i = 0; i < kPods; ++i) paths.push_back(add_netns("p" + std::to_string(i)));
  // ipMasq too: fifty processes editing the nat table at once must all get through.
  std::string c = conf("10.240.0.0/24", R"("ipMasq":true)");
  std::vector<PendingRun> pending;
  for (int i = 0; i < kPods; ++i) {
    pending.push_back(start({{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "ctr-" + std::to_string(i)},
                             {"CNI_NETNS", paths[i]}, {"CNI_IFNAME", "eth0"}, {"CNI_PATH", "/opt/cni/bin"}},
                            c));
  }
  std::set<std::string> addresses;
  for (auto& p : pending) {
    auto r = finish(p);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    addresses.insert(r.json()["ips"][0]["address"].get<std::string>());
  }
  EXPECT_EQ(addresses.size(), static_cast<size_t>(kPods));
  EXPECT_EQ(addresses.count("10.240.0.1/24"), 0u) << "the gateway was handed out";
  EXPECT_EQ(reservations().size(), static_cast<size_t>(kPods));
  std::string out;
  in_ns("node", "ip -o link show master kcbr0", &out);
  EXPECT_EQ(static_cast<int>(std::count(out.begin(), out.end(), '\n')), kPods);
}

TEST_F(CniIpam, AFullRangeAnswersWithAnErrorNamingTheRange) {
  std::string c = conf("10.241.0.0/24", "", R"("rangeStart":"10.241.0.10","rangeEnd":"10.241.0.11")");
  ASSERT_EQ(cni("ADD", "ctr-a", add_netns("a"), c).exit_code, 0);
  ASSERT_EQ(cni("ADD", "ctr-b", add_netns("b"), c).exit_code, 0);
  std::string before;
  in_ns("node", "ip -o link show", &before);
  auto full = cni("ADD", "ctr-c", add_netns("c"), c);
  EXPECT_NE(full.exit_code, 0);
  EXPECT_EQ(full.code(), 106) << full.out;
  std::string msg = full.json()["msg"];
  EXPECT_NE(msg.find("10.241.0.0/24"), std::string::npos) << msg;
  EXPECT_NE(msg.find("10.241.0.10-10.241.0.11"), std::string::npos) << msg;
  std::string after;
  in_ns("node", "ip -o link show", &after);
  EXPECT_EQ(before, after);
  auto status = cni("STATUS", "", "", c, "");
  EXPECT_EQ(status.code(), 50) << status.out;
}

TEST_F(CniIpam, GcReleasesEveryAllocationNotInValidAttachments) {
  std::string c = conf("10.242.0.0/24");
  ASSERT_EQ(cni("ADD", "keep", add_netns("a"), c).exit_code, 0);
  ASSERT_EQ(cni("ADD", "gone", add_netns("b"), c).exit_code, 0);
  {
    std::ofstream leaked(data_dir_ + "/" + network_ + "/10.242.0.77");  // a crashed runtime's leftover
    leaked << "leaked-ctr\r\neth0";
  }
  ASSERT_EQ(reservations().size(), 3u);
  auto gc = nlohmann::json::parse(c);
  gc["cni.dev/valid-attachments"] = {{{"containerID", "keep"}, {"ifname", "eth0"}}};
  auto r = cni("GC", "", "", gc.dump(), "");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(reservations(), (std::set<std::string>{"10.242.0.2"}));
  auto status = cni("STATUS", "", "", c, "");
  EXPECT_EQ(status.exit_code, 0) << status.out;
}

}  // namespace
}  // namespace knode::cni::testing
