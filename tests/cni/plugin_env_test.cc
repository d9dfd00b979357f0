#include <gtest/gtest.h>

#include <map>

#include <nlohmann/json.hpp>

#include "knode/cni/plugin.h"
#include "pod_network.h"
#include "request.h"

namespace knode::cni {
namespace {

Getenv env_of(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const char* kConf = R"({"cniVersion":"1.0.0","name":"n","type":"knode-cni","ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]]}})";

int code_of(const Response& r) { return nlohmann::json::parse(r.out)["code"].get<int>(); }

TEST(CniRequest, MissingOrUnknownCommandIsCode4) {
  auto r = run_plugin(env_of({}), kConf);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(code_of(r), kInvalidEnvironment);
  auto unknown = run_plugin(env_of({{"CNI_COMMAND", "FROB"}}), kConf);
  EXPECT_EQ(code_of(unknown), kInvalidEnvironment);
}

TEST(CniRequest, AttachmentCommandsNeedContainerIfnameAndNetns) {
  std::map<std::string, std::string> full = {
      {"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c1"}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", "eth0"}};
  for (const char* drop : {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"}) {
    auto vars = full;
    vars.erase(drop);
    auto r = parse_request(env_of(vars));
    ASSERT_FALSE(r.ok()) << drop;
    EXPECT_EQ(r.status().error_number(), kInvalidEnvironment);
    EXPECT_NE(r.error().find(drop), std::string::npos);
  }
  auto bad_if = full;
  bad_if["CNI_IFNAME"] = "this-name-is-way-too-long";
  EXPECT_FALSE(parse_request(env_of(bad_if)).ok());
  auto bad_id = full;
  bad_id["CNI_CONTAINERID"] = "-leading-dash";
  EXPECT_FALSE(parse_request(env_of(bad_id)).ok());
  auto del = full;
  del["CNI_COMMAND"] = "DEL";
  del.erase("CNI_NETNS");
  EXPECT_TRUE(parse_request(env_of(del)).ok());  // DEL works after the netns is gone
}

TEST(CniPlugin, VersionListsSupportedVersions) {
  auto r = run_plugin(env_of({{"CNI_COMMAND", "VERSION"}}), R"({"cniVersion":"0.4.0"})");
  EXPECT_EQ(r.exit_code, 0);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["cniVersion"], "0.4.0");
  EXPECT_EQ(j["supportedVersions"].size(), 5u);
}

TEST(CniPlugin, MalformedJsonIsCode6AndBadSubnetCode7) {
  std::map<std::string, std::string> vars = {
      {"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c1"}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", "eth0"}};
  auto r = run_plugin(env_of(vars), "{not json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(code_of(r), kDecodeFailure);
  auto bad = run_plugin(env_of(vars), R"({"cniVersion":"1.0.0","name":"n","type":"knode-cni","ipam":{"ranges":[[{"subnet":"10.0.0.300/24"}]]}})");
  EXPECT_EQ(code_of(bad), kInvalidConfig);
  EXPECT_EQ(nlohmann::json::parse(bad.out)["cniVersion"], "1.0.0");
}

TEST(CniPlugin, CheckNeedsPrevResult) {
  std::map<std::string, std::string> vars = {
      {"CNI_COMMAND", "CHECK"}, {"CNI_CONTAINERID", "c1"}, {"CNI_NETNS", "/x"}, {"CNI_IFNAME", "eth0"}};
  auto r = run_plugin(env_of(vars), kConf);
  EXPECT_EQ(code_of(r), kInvalidConfig);
}

TEST(CniPlugin, GcWithoutValidAttachmentsFreesNothing) {
  auto r = run_plugin(env_of({{"CNI_COMMAND", "GC"}}), kConf);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(code_of(r), kInvalidConfig);
}

TEST(CniPodNetwork, HostVethNameIsStableShortAndDistinct) {
  auto a = host_veth_name("net", Attachment{"c1", "eth0"});
  EXPECT_EQ(a, host_veth_name("net", Attachment{"c1", "eth0"}));
  EXPECT_LE(a.size(), 15u);
  EXPECT_EQ(a.rfind("veth", 0), 0u);
  EXPECT_NE(a, host_veth_name("net", Attachment{"c1", "eth1"}));
  EXPECT_NE(a, host_veth_name("net2", Attachment{"c1", "eth0"}));
}

}  // namespace
}  // namespace knode::cni
