// The Docker backend's CNI runner and the process runner under it, with a fake plugin (a
// shell script that records what it was given).
#include "docker/cni.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "knode/process.h"

namespace knode::docker {
namespace {

namespace rt = knode::runtime;
using nlohmann::json;
using namespace std::chrono_literals;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(RunProcess, FeedsStdinAndCapturesOutputAndExitCode) {
  auto r = run_process({"/bin/sh", "-c", "read x; echo \"got $x\"; echo oops >&2; exit 7"},
                       {"PATH=/bin:/usr/bin"}, "hello\n", 10s);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->out, "got hello\n");
  EXPECT_EQ(r->err, "oops\n");
  EXPECT_EQ(r->exit_code, 7);
}

TEST(RunProcess, KillsAtTheTimeout) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_process({"/bin/sleep", "30"}, {}, "", 200ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error_number(), ETIMEDOUT);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST(RunProcess, AProgramThatDoesNotReadItsInputIsFine) {
  // Larger than a pipe's buffer: the writer must not block nor die of SIGPIPE.
  auto r = run_process({"/bin/true"}, {}, std::string(1 << 20, 'x'), 10s);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->exit_code, 0);
  auto missing = run_process({"/nonexistent/plugin"}, {}, "", 1s);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().error_number(), ENOENT);
}

class Cni : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/knode-docker-cni-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/bin");
    std::filesystem::create_directories(dir_ + "/net.d");
    // Records its environment and stdin per command and plugin; ADD prints a result that
    // names the plugin, so chaining is visible in the next one's prevResult.
    plugin("first",
           R"({"cniVersion":"1.0.0","ips":[{"address":"10.88.0.7/24"},{"address":"fd00::7/64"}]})");
    plugin("second", "");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void plugin(const std::string& name, const std::string& result) {
    const std::string path = dir_ + "/bin/" + name;
    std::ofstream(path)
        << "#!/bin/sh\n"
        << "cat > " << dir_ << "/" << name << ".$CNI_COMMAND.stdin\n"
        << "env | grep ^CNI_ | sort > " << dir_ << "/" << name << ".$CNI_COMMAND.env\n"
        << "if [ -e " << dir_ << "/fail-" << name << " ]; then\n"
        << "  echo '{\"cniVersion\":\"1.0.0\",\"code\":106,\"msg\":\"no free "
           "address\",\"details\":\"range 10.88.0.0/24\"}'\n"
        << "  exit 1\nfi\n"
        << "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
        << (result.empty() ? "  python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)"
                             "[\"prevResult\"]))' < " +
                                 dir_ + "/" + name + ".ADD.stdin\n"
                           : "  echo '" + result + "'\n")
        << "fi\n";
    ::chmod(path.c_str(), 0755);
  }

  void conflist(const json& doc, const std::string& name = "10-test.conflist") {
    std::ofstream(dir_ + "/net.d/" + name) << doc.dump();
  }

  CniNetwork network() {
    return CniNetwork({dir_ + "/net.d", {dir_ + "/nope", dir_ + "/bin"}, "eth0", 10s});
  }

  CniPod pod() {
    return {"pause0123456789",
            "/proc/1/ns/net",
            "web",
            "default",
            "uid-1",
            {{rt::Protocol::kTCP, 8080, 30080, ""}, {rt::Protocol::kUDP, 53, 5353, "10.0.0.1"}}};
  }

  std::string dir_;
};

TEST_F(Cni, LoadsTheFirstConfigurationOfADirectory) {
  conflist({{"cniVersion", "1.0.0"}, {"name", "second"}, {"plugins", {{{"type", "first"}}}}},
           "20-b.conflist");
  conflist({{"cniVersion", "1.0.0"},
            {"cniVersions", {"0.4.0", "1.0.0", "1.1.0", "2.0.0"}},
            {"name", "knode"},
            {"plugins", {{{"type", "first"}}, {{"type", "second"}}}}},
           "10-a.conflist");
  std::ofstream(dir_ + "/net.d/README") << "not a config";
  auto net = load_network(dir_ + "/net.d");
  ASSERT_TRUE(net.ok()) << net.error();
  EXPECT_EQ(net->path, dir_ + "/net.d/10-a.conflist");
  EXPECT_EQ(net->name, "knode");
  EXPECT_EQ(net->cni_version, "1.1.0");  // the highest it passes on
  EXPECT_EQ(net->plugins.size(), 2u);
  // A single plugin's .conf, named directly.
  std::ofstream(dir_ + "/one.conf") << R"({"cniVersion":"0.4.0","name":"solo","type":"first"})";
  auto solo = load_network(dir_ + "/one.conf");
  ASSERT_TRUE(solo.ok()) << solo.error();
  EXPECT_EQ(solo->plugins.size(), 1u);
  EXPECT_EQ(solo->cni_version, "0.4.0");
}

TEST_F(Cni, RefusesMissingAndMalformedConfigurations) {
  auto none = load_network(dir_ + "/net.d");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().error_number(), ENOENT);
  EXPECT_FALSE(network().ready().ok());
  std::ofstream(dir_ + "/net.d/1.conflist") << "{";
  EXPECT_EQ(load_network(dir_ + "/net.d").status().error_number(), EINVAL);
  std::ofstream(dir_ + "/net.d/1.conflist")
      << R"({"cniVersion":"1.0.0","plugins":[{"type":"first"}]})";
  EXPECT_EQ(load_network(dir_ + "/net.d").status().error_number(), EINVAL);  // no name
  std::ofstream(dir_ + "/net.d/1.conflist")
      << R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"absent"}]})";
  Status s = network().ready();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("failed to find plugin \"absent\""), std::string::npos) << s.message();
}

TEST_F(Cni, PluginInputCarriesNameVersionCapabilitiesAndPrevResult) {
  NetworkList net{"x", "knode", "1.1.0", {}};
  json plugin = {{"type", "first"}, {"bridge", "cni0"}, {"capabilities", {{"portMappings", true}}}};
  json in = plugin_input(net, plugin, pod(), json{{"ips", json::array()}});
  EXPECT_EQ(in["name"], "knode");
  EXPECT_EQ(in["cniVersion"], "1.1.0");
  EXPECT_EQ(in["bridge"], "cni0");
  EXPECT_FALSE(in.contains("capabilities"));
  EXPECT_EQ(in["runtimeConfig"]["portMappings"],
            json({{{"hostPort", 30080}, {"containerPort", 8080}, {"protocol", "tcp"}},
                  {{"hostPort", 5353},
                   {"containerPort", 53},
                   {"protocol", "udp"},
                   {"hostIP", "10.0.0.1"}}}));
  EXPECT_EQ(in["prevResult"], json({{"ips", json::array()}}));
  json plain = plugin_input(net, {{"type", "first"}}, pod(), std::nullopt);
  EXPECT_FALSE(plain.contains("runtimeConfig"));  // no capability declared
  EXPECT_FALSE(plain.contains("prevResult"));
  EXPECT_EQ(cni_args(pod()),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID="
            "pause0123456789;"
            "K8S_POD_UID=uid-1");
  EXPECT_EQ(result_ips({{"ips", {{{"address", "10.88.0.7/24"}}, {{"address", "fd00::7/64"}}}}}),
            (std::vector<std::string>{"10.88.0.7", "fd00::7"}));
}

// The configuration file and the plugins' answers are outside input: fields of the wrong
// type read as absent instead of throwing.
TEST_F(Cni, FieldsOfTheWrongTypeReadAsAbsent) {
  std::ofstream(dir_ + "/net.d/1.conflist")
      << R"({"cniVersion":1.0,"name":"n","plugins":[{"type":"first"}]})";
  auto net = load_network(dir_ + "/net.d");
  ASSERT_TRUE(net.ok()) << net.error();
  EXPECT_EQ(net->cni_version, "");
  std::ofstream(dir_ + "/net.d/1.conflist") << R"({"name":["n"],"plugins":[{"type":"first"}]})";
  EXPECT_EQ(load_network(dir_ + "/net.d").status().error_number(), EINVAL);  // no name
  // A runtimeConfig that is not an object is replaced, as libcni sets the whole key.
  json plugin = {{"type", "first"}, {"runtimeConfig", "x"}, {"capabilities", {{"portMappings", true}}}};
  json in = plugin_input(NetworkList{"x", "knode", "1.1.0", {}}, plugin, pod(), std::nullopt);
  EXPECT_EQ(in["runtimeConfig"]["portMappings"].size(), 2u);
  EXPECT_EQ(result_ips({{"ips", {{{"address", 7}}, "10.0.0.1", {{"address", "10.88.0.7/24"}}}}}),
            (std::vector<std::string>{"10.88.0.7"}));
}

TEST_F(Cni, AddChainsThePluginsAndDelRunsThemInReverse) {
  conflist(
      {{"cniVersion", "1.0.0"},
       {"name", "knode"},
       {"plugins",
        {{{"type", "first"}, {"capabilities", {{"portMappings", true}}}}, {{"type", "second"}}}}});
  ASSERT_TRUE(network().ready().ok());
  auto ips = network().add(pod());
  ASSERT_TRUE(ips.ok()) << ips.error();
  // The second plugin echoes its prevResult: the first's result went through the chain.
  EXPECT_EQ(*ips, (std::vector<std::string>{"10.88.0.7", "fd00::7"}));
  const std::string env = slurp(dir_ + "/first.ADD.env");
  EXPECT_NE(env.find("CNI_COMMAND=ADD\n"), std::string::npos);
  EXPECT_NE(env.find("CNI_CONTAINERID=pause0123456789\n"), std::string::npos);
  EXPECT_NE(env.find("CNI_NETNS=/proc/1/ns/net\n"), std::string::npos);
  EXPECT_NE(env.find("CNI_IFNAME=eth0\n"), std::string::npos);
  EXPECT_NE(env.find("CNI_PATH=" + dir_ + "/nope:" + dir_ + "/bin\n"), std::string::npos);
  EXPECT_NE(env.find("K8S_POD_UID=uid-1"), std::string::npos);
  json first_in = json::parse(slurp(dir_ + "/first.ADD.stdin"));
  EXPECT_EQ(first_in["name"], "knode");
  EXPECT_TRUE(first_in.contains("runtimeConfig"));
  json second_in = json::parse(slurp(dir_ + "/second.ADD.stdin"));
  EXPECT_EQ(second_in["prevResult"]["ips"][0]["address"], "10.88.0.7/24");

  CniPod gone = pod();
  gone.netns.clear();  // DEL after the pause container went
  ASSERT_TRUE(network().del(gone).ok());
  EXPECT_NE(slurp(dir_ + "/second.DEL.env").find("CNI_NETNS=\n"), std::string::npos);
  struct stat first_del {
  }, second_del{};
  ASSERT_EQ(::stat((dir_ + "/first.DEL.env").c_str(), &first_del), 0);
  ASSERT_EQ(::stat((dir_ + "/second.DEL.env").c_str(), &second_del), 0);
  EXPECT_LE(std::tie(second_del.st_mtim.tv_sec, second_del.st_mtim.tv_nsec),
            std::tie(first_del.st_mtim.tv_sec, first_del.st_mtim.tv_nsec));
}

TEST_F(Cni, APluginsErrorIsReportedWithItsCode) {
  conflist({{"cniVersion", "1.0.0"}, {"name", "knode"}, {"plugins", {{{"type", "first"}}}}});
  std::ofstream(dir_ + "/fail-first") << "";
  auto r = network().add(pod());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.error().find(
          "CNI ADD first (network knode): exit 1: no free address: range 10.88.0.0/24 (code 106)"),
      std::string::npos)
      << r.error();
}

}  // namespace
}  // namespace knode::docker
