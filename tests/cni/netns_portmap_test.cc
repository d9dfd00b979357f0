// hostPort mappings and masquerade: real packets from a client netns through the node.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "netns_harness.h"

namespace knode::cni::testing {
namespace {

class CniPortmap : public CniNetnsTest {
 protected:
  void SetUp() override {
    CniNetnsTest::SetUp();
    if (IsSkipped()) return;
    // client (192.168.231.2) --veth-- node (192.168.231.1), the node's "uplink".
    add_netns("client");
    ASSERT_EQ(in_ns("node", "ip link add kc-up type veth peer name kc-cl netns " + ns_name("client")), 0);
    ASSERT_EQ(in_ns("node", "ip addr add 192.168.231.1/24 dev kc-up"), 0);
    ASSERT_EQ(in_ns("node", "ip link set kc-up up"), 0);
    ASSERT_EQ(in_ns("client", "ip addr add 192.168.231.2/24 dev kc-cl"), 0);
    ASSERT_EQ(in_ns("client", "ip link set kc-cl up"), 0);
    ASSERT_EQ(in_ns("client", "ip link set lo up"), 0);
    www_ = data_dir_ + "/www";
    std::filesystem::create_directories(www_);
    std::ofstream(www_ + "/index.html") << "hello from the pod\n";
  }
  void TearDown() override {
    if (server_ > 0) {
      kill(server_, SIGTERM);
      waitpid(server_, nullptr, 0);
    }
    CniNetnsTest::TearDown();
  }
  void serve_in(const std::string& pod_suffix) {
    server_ = fork();
    if (server_ == 0) {
      std::string ns = ns_name(pod_suffix);
      execlp("ip", "ip", "netns", "exec", ns.c_str(), "busybox", "httpd", "-f", "-p", "80", "-h", www_.c_str(),
             static_cast<char*>(nullptr));
      _exit(127);
    }
    // Wait until it listens.
    for (int i = 0; i < 50; ++i) {
      std::string out;
      in_ns(pod_suffix, "sh -c \"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 1 127.0.0.1 80\" 2>/dev/null", &out);
      if (out.find("200 OK") != std::string::npos) return;
      usleep(100 * 1000);
    }
    ADD_FAILURE() << "busybox httpd did not start in the pod";
  }
  // busybox's wget crashes on this machine; its nc speaks enough HTTP. Returns 0 and
  // the body when the pod answered.
  int fetch_from_client(const std::string& ip, int port, std::string* body) {
    std::string out;
    in_ns("client", "sh -c \"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 " + ip + " " +
                        std::to_string(port) + "\" 2>/dev/null",
          &out);
    auto end = out.find("\r\n\r\n");
    *body = end == std::string::npos ? "" : out.substr(end + 4);
    return out.find("200 OK") != std::string::npos ? 0 : 1;
  }
  std::string nat_rules() {
    std::string out;
    in_ns("node", "iptables-legacy-save -t nat", &out);
    return out;
  }

  std::string www_;
  pid_t server_ = -1;
};

TEST_F(CniPortmap, HostPortIsReachableFromOutsideAndGoneAfterDel) {
  std::string pod = add_netns("pod-a");
  std::string c = conf("10.243.0.0/24",
                       R"("ipMasq":true,"hairpinMode":true,"runtimeConfig":{"portMappings":[)"
                       R"({"hostPort":8080,"containerPort":80,"protocol":"tcp"},)"
                       R"({"hostPort":8081,"containerPort":80,"protocol":"tcp","hostIP":"192.168.231.1"}]})");
  auto added = cni("ADD", "web", pod, c);
  ASSERT_EQ(added.exit_code, 0) << added.out;
  serve_in("pod-a");
  std::string body;
  ASSERT_EQ(fetch_from_client("192.168.231.1", 8080, &body), 0) << nat_rules();
  EXPECT_EQ(body, "hello from the pod\n");
  ASSERT_EQ(fetch_from_client("192.168.231.1", 8081, &body), 0);
  EXPECT_EQ(body, "hello from the pod\n");
  std::string rules = nat_rules();
  EXPECT_NE(rules.find("KNODE-CNI-DN-"), std::string::npos) << rules;
  EXPECT_NE(rules.find("--to-destination 10.243.0.2:80"), std::string::npos) << rules;
  EXPECT_NE(rules.find("-s 10.243.0.0/24 -m comment --comment \"knode-cni knode-test masquerade\""),
            std::string::npos)
      << rules;

  auto with_prev = nlohmann::json::parse(c);
  with_prev["prevResult"] = added.json();
  auto check = cni("CHECK", "web", pod, with_prev.dump());
  EXPECT_EQ(check.exit_code, 0) << check.out;

  // Hairpin: the pod reaches itself through the node's host port (needs the bridge
  // port's hairpin mode and the masquerade of marked traffic).
  std::string self;
  in_ns("pod-a", "sh -c \"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 192.168.231.1 8080\" 2>/dev/null",
        &self);
  EXPECT_NE(self.find("hello from the pod"), std::string::npos) << self << nat_rules();

  // A second pod's mapping does not disturb the first one's.
  std::string pod_b = add_netns("pod-b");
  std::string cb = conf("10.243.0.0/24", R"("ipMasq":true,"runtimeConfig":{"portMappings":[)"
                                          R"({"hostPort":9090,"containerPort":80,"protocol":"tcp"}]})");
  ASSERT_EQ(cni("ADD", "other", pod_b, cb).exit_code, 0);
  ASSERT_EQ(cni("DEL", "other", pod_b, cb).exit_code, 0);
  ASSERT_EQ(fetch_from_client("192.168.231.1", 8080, &body), 0) << nat_rules();

  auto del = cni("DEL", "web", pod, c);
  ASSERT_EQ(del.exit_code, 0) << del.out;
  rules = nat_rules();
  EXPECT_EQ(rules.find("KNODE-CNI-DN-"), std::string::npos) << rules;
  EXPECT_EQ(rules.find("10.243.0.2:80"), std::string::npos) << rules;
  EXPECT_NE(fetch_from_client("192.168.231.1", 8080, &body), 0);
}

TEST_F(CniPortmap, CheckReportsMissingPortMappingRules) {
  std::string pod = add_netns("pod-a");
  std::string c = conf("10.244.0.0/24", R"("runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80}]})");
  auto added = cni("ADD", "web", pod, c);
  ASSERT_EQ(added.exit_code, 0) << added.out;
  std::string rules = nat_rules();
  auto pos = rules.find(":KNODE-CNI-DN-");
  ASSERT_NE(pos, std::string::npos) << rules;
  std::string chain = rules.substr(pos + 1, rules.find(' ', pos) - pos - 1);
  ASSERT_EQ(in_ns("node", "iptables-legacy -t nat -F " + chain), 0);
  auto with_prev = nlohmann::json::parse(c);
  with_prev["prevResult"] = added.json();
  auto check = cni("CHECK", "web", pod, with_prev.dump());
  EXPECT_EQ(check.code(), 107) << check.out;
}

TEST_F(CniPortmap, GcRemovesPortMappingsOfInvalidAttachments) {
  std::string c = conf("10.245.0.0/24", R"("runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80}]})");
  ASSERT_EQ(cni("ADD", "gone", add_netns("pod-a"), c).exit_code, 0);
  ASSERT_NE(nat_rules().find("KNODE-CNI-DN-"), std::string::npos);
  auto gc = nlohmann::json::parse(conf("10.245.0.0/24"));
  gc["cni.dev/valid-attachments"] = nlohmann::json::array();
  auto r = cni("GC", "", "", gc.dump(), "");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(nat_rules().find("KNODE-CNI-DN-"), std::string::npos) << nat_rules();
}

}  // namespace
}  // namespace knode::cni::testing
