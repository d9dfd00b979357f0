#include "knode/kube/kubeconfig.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "knode/api/base64.h"
#include "knode/kube/client.h"
#include "support/temp_dir.h"

namespace knode::kube {
namespace {

constexpr const char* kTwoContexts = R"(apiVersion: v1
kind: Config
current-context: node
clusters:
- name: local
  cluster:
    server: https://192.168.77.2:6443
    certificate-authority: pki/ca.crt
- name: other
  cluster:
    server: https://[fd00::1]
    certificate-authority-data: Q0EtREFUQQ==
    tls-server-name: kubernetes
contexts:
- name: node
  context: {cluster: local, user: node}
- name: admin
  context: {cluster: other, user: admin, namespace: kube-system}
users:
- name: node
  user:
    client-certificate: /abs/node.crt
    client-key-data: S0VZ
- name: admin
  user:
    token: abc
    tokenFile: tok
)";

TEST(KubeConfigTest, CurrentContextWithFilesResolvedAgainstTheKubeconfig) {
  knode::testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/pki");
  std::ofstream(dir.path() + "/pki/ca.crt") << "CA-FILE";
  auto c = parse_kubeconfig(kTwoContexts, dir.path() + "/kubeconfig");
  // /abs/node.crt does not exist: the error names the user and the field.
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("user \"node\": client-certificate"), std::string::npos) << c.status().message();
}

TEST(KubeConfigTest, DataFieldsTokenAndIPv6Server) {
  auto c = parse_kubeconfig(kTwoContexts, "/etc/knode/kubeconfig", "admin");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->server, "https://[fd00::1]");
  EXPECT_EQ(c->host(), "fd00::1");
  EXPECT_EQ(c->port(), "443");
  EXPECT_EQ(c->ca_pem, "CA-DATA");
  EXPECT_EQ(c->tls_server_name, "kubernetes");
  EXPECT_EQ(c->token, "abc");
  EXPECT_EQ(c->token_file, "/etc/knode/tok");
  EXPECT_EQ(c->namespace_, "kube-system");
}

TEST(KubeConfigTest, HostAndPort) {
  KubeConfig c;
  c.server = "https://10.0.0.1:6443/";
  EXPECT_EQ(c.host(), "10.0.0.1");
  EXPECT_EQ(c.port(), "6443");
  c.server = "http://api.example";
  EXPECT_EQ(c.host(), "api.example");
  EXPECT_EQ(c.port(), "80");
}

TEST(KubeConfigTest, ErrorsNameWhatIsWrong) {
  auto no_ctx = parse_kubeconfig("clusters: []\n", "k");
  ASSERT_FALSE(no_ctx.ok());
  EXPECT_NE(no_ctx.status().message().find("current-context is not set"), std::string::npos);
  auto missing = parse_kubeconfig(kTwoContexts, "k", "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("context \"nope\" not found"), std::string::npos);
  auto exec = parse_kubeconfig(R"(current-context: c
clusters: [{name: x, cluster: {server: "https://a"}}]
contexts: [{name: c, context: {cluster: x, user: u}}]
users: [{name: u, user: {exec: {command: foo}}}]
)", "k");
  ASSERT_FALSE(exec.ok());
  EXPECT_NE(exec.status().message().find("exec"), std::string::npos);
  auto not_url = parse_kubeconfig(R"(current-context: c
clusters: [{name: x, cluster: {server: "192.168.0.1"}}]
contexts: [{name: c, context: {cluster: x}}]
)", "k");
  ASSERT_FALSE(not_url.ok());
  EXPECT_NE(not_url.status().message().find("not an http(s) URL"), std::string::npos);
}

TEST(KubeConfigTest, InClusterConfig) {
  knode::testing::TempDir dir;
  std::ofstream(dir.path() + "/ca.crt") << "CA";
  std::ofstream(dir.path() + "/token") << "tok\n";
  std::ofstream(dir.path() + "/namespace") << "kube-system";
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = in_cluster_config(dir.path());
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_EQ(c->token_file, dir.path() + "/token");
  EXPECT_EQ(c->namespace_, "kube-system");
  EXPECT_FALSE(in_cluster_config(dir.path()).ok());  // without the env
}

TEST(RestClientTest, ABadCertificateOrAMismatchedKeyIsAClearError) {
  KubeConfig c;
  c.server = "https://127.0.0.1:1";
  c.source = "test";
  c.client_cert_pem = "not a certificate";
  c.client_key_pem = "not a key";
  auto r = RestClient::create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("client certificate"), std::string::npos) << r.status().message();
}

TEST(RestClientTest, NothingListeningIsConnectionRefused) {
  KubeConfig c;
  c.server = "http://127.0.0.1:1";
  c.source = "test";
  auto r = RestClient::create(c);
  ASSERT_TRUE(r.ok());
  auto resp = (*r)->get("/version");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().error_number(), ECONNREFUSED) << resp.status().message();
}

}  // namespace
}  // namespace knode::kube
