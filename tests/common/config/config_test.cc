#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "knode/config.h"

using namespace knode::config;

namespace {
ParseOutcome parse(Component c, std::vector<std::string> args, AgentConfig* out) {
  return parse_flags(c, args, out);
}
std::string temp_file(const std::string& text) {
  static int n = 0;
  auto p = std::filesystem::temp_directory_path() /
           ("knode-config-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".yaml");
  std::ofstream(p) << text;
  return p.string();
}
}  // namespace

TEST(Flags, UpstreamNamesAndForms) {
  AgentConfig c;
  auto r = parse(Component::kProxy,
                 {"--manifest-dir=/m", "--proxy-mode", "ipvs", "--ipvs-scheduler=wrr",
                  "--cluster-cidr=10.244.0.0/16", "-v=4", "--hostname-override", "n1",
                  "--iptables-min-sync-period=2s", "--masquerade-all", "--nodeport-addresses=10.0.0.0/8,192.168.0.0/16"},
                 &c);
  ASSERT_EQ(r.kind, ParseOutcome::kRun) << r.message;
  EXPECT_EQ(c.manifest_dir, "/m");
  EXPECT_EQ(c.proxy.mode, "ipvs");
  EXPECT_EQ(c.proxy.ipvs.scheduler, "wrr");
  EXPECT_EQ(c.verbosity, 4);
  EXPECT_EQ(c.hostname_override, "n1");
  EXPECT_EQ(c.proxy.iptables.min_sync_period.millis(), 2000);
  EXPECT_TRUE(c.proxy.iptables.masquerade_all);
  EXPECT_EQ(c.proxy.node_port_addresses.size(), 2u);
}

TEST(Flags, PodManifestPathIsManifestDir) {
  AgentConfig c;
  ASSERT_EQ(parse(Component::kKubelet, {"--pod-manifest-path=/etc/kubernetes/manifests"}, &c).kind,
            ParseOutcome::kRun);
  EXPECT_EQ(c.manifest_dir, "/etc/kubernetes/manifests");
}

TEST(Flags, ErrorsAreOneLine) {
  AgentConfig c;
  auto unknown = parse(Component::kProxy, {"--manifest-dir=/m", "--bogus=1"}, &c);
  EXPECT_EQ(unknown.kind, ParseOutcome::kError);
  EXPECT_EQ(unknown.message, "unknown flag: --bogus");
  AgentConfig c2;
  auto mode = parse(Component::kProxy, {"--manifest-dir=/m", "--proxy-mode=userspace"}, &c2);
  EXPECT_EQ(mode.kind, ParseOutcome::kError);
  EXPECT_EQ(mode.message, "invalid value for --proxy-mode: \"userspace\" (want iptables, ipvs or nftables)");
  AgentConfig nft;
  EXPECT_EQ(parse(Component::kProxy, {"--manifest-dir=/m", "--proxy-mode=nftables"}, &nft).kind, ParseOutcome::kRun);
  EXPECT_EQ(nft.proxy.mode, "nftables");
  AgentConfig c3;
  EXPECT_EQ(parse(Component::kProxy, {"--manifest-dir=/m", "--cluster-cidr=10.0.0.0/40"}, &c3).kind,
            ParseOutcome::kError);
  AgentConfig c4;
  auto dur = parse(Component::kProxy, {"--manifest-dir=/m", "--iptables-sync-period=soon"}, &c4);
  EXPECT_EQ(dur.kind, ParseOutcome::kError);
  EXPECT_NE(dur.message.find("--iptables-sync-period"), std::string::npos);
  AgentConfig c5;
  EXPECT_EQ(parse(Component::kKubelet, {"--manifest-dir=/m", "--proxy-mode=ipvs"}, &c5).kind,
            ParseOutcome::kError);  // not a kubelet flag
  AgentConfig c6;
  EXPECT_EQ(parse(Component::kProxy, {"--manifest-dir"}, &c6).message, "flag needs an argument: --manifest-dir");
  AgentConfig c7;
  EXPECT_EQ(parse(Component::kAgent, {}, &c7).kind, ParseOutcome::kError);  // no source at all
}

TEST(Flags, ContainerRuntimeDockerAndItsSettings) {
  AgentConfig c;
  ASSERT_EQ(parse(Component::kKubelet, {"--manifest-dir=/m"}, &c).kind, ParseOutcome::kRun);
  EXPECT_EQ(c.kubelet.container_runtime, "remote");
  EXPECT_EQ(c.kubelet.docker_endpoint, "unix:///var/run/docker.sock");
  AgentConfig d;
  auto r = parse(Component::kKubelet,
                 {"--manifest-dir=/m", "--container-runtime=docker", "--docker-endpoint=unix:///run/d.sock",
                  "--pod-infra-container-image=127.0.0.1:5000/pause:3.10", "--cni-bin-dir=/opt/cni/bin,/usr/lib/cni"},
                 &d);
  ASSERT_EQ(r.kind, ParseOutcome::kRun) << r.message;
  EXPECT_EQ(d.kubelet.container_runtime, "docker");
  EXPECT_EQ(d.kubelet.docker_endpoint, "unix:///run/d.sock");
  EXPECT_EQ(d.kubelet.pod_infra_container_image, "127.0.0.1:5000/pause:3.10");
  EXPECT_EQ(d.kubelet.cni_bin_dir, "/opt/cni/bin,/usr/lib/cni");
  AgentConfig bad;
  auto rkt = parse(Component::kKubelet, {"--manifest-dir=/m", "--container-runtime=rkt"}, &bad);
  EXPECT_EQ(rkt.kind, ParseOutcome::kError);
  EXPECT_NE(rkt.message.find("--container-runtime"), std::string::npos) << rkt.message;
}

TEST(Flags, KubeletApiServingAndAuthentication) {
  AgentConfig c;
  ASSERT_EQ(parse(Component::kAgent, {"--manifest-dir=/m"}, &c).kind, ParseOutcome::kRun);
  EXPECT_EQ(c.kubelet.port, 10250);
  EXPECT_EQ(c.kubelet.address, "0.0.0.0");
  EXPECT_EQ(c.kubelet.tls_cert_file, "");
  EXPECT_EQ(c.kubelet.authentication.x509.client_ca_file, "");
  EXPECT_FALSE(c.kubelet.server_tls_bootstrap);
  AgentConfig e;
  ASSERT_EQ(parse(Component::kAgent, {"--manifest-dir=/m", "--rotate-server-certificates", "--cni-data-dir=/var/lib/n1/cni"},
                  &e).kind,
            ParseOutcome::kRun);
  EXPECT_TRUE(e.kubelet.server_tls_bootstrap);
  EXPECT_EQ(e.kubelet.cni_data_dir, "/var/lib/n1/cni");
  EXPECT_EQ(c.kubelet.cni_data_dir, "");
  AgentConfig d;
  auto r = parse(Component::kKubelet,
                 {"--manifest-dir=/m", "--port=11250", "--address=192.168.77.11", "--tls-cert-file=/pki/k.crt",
                  "--tls-private-key-file=/pki/k.key", "--client-ca-file=/pki/ca.crt"},
                 &d);
  ASSERT_EQ(r.kind, ParseOutcome::kRun) << r.message;
  EXPECT_EQ(d.kubelet.port, 11250);
  EXPECT_EQ(d.kubelet.address, "192.168.77.11");
  EXPECT_EQ(d.kubelet.tls_cert_file, "/pki/k.crt");
  EXPECT_EQ(d.kubelet.tls_private_key_file, "/pki/k.key");
  EXPECT_EQ(d.kubelet.authentication.x509.client_ca_file, "/pki/ca.crt");
  AgentConfig bad;
  auto half = parse(Component::kKubelet, {"--manifest-dir=/m", "--tls-cert-file=/pki/k.crt"}, &bad);
  EXPECT_EQ(half.kind, ParseOutcome::kError);
  EXPECT_NE(half.message.find("--tls-private-key-file"), std::string::npos) << half.message;
  EXPECT_EQ(parse(Component::kKubelet, {"--manifest-dir=/m", "--port=70000"}, &bad).kind, ParseOutcome::kError);
}

TEST(Flags, HelpListsEveryFlag) {
  AgentConfig c;
  auto r = parse(Component::kAgent, {"--help"}, &c);
  EXPECT_EQ(r.kind, ParseOutcome::kHelp);
  for (const char* f : {"--proxy-mode", "--ipvs-scheduler", "--cluster-cidr", "--hostname-override",
                        "--kubeconfig", "--config", "--v", "--healthz-bind-address",
                        "--metrics-bind-address", "--healthz-port", "--pod-manifest-path"}) {
    EXPECT_NE(r.message.find(f), std::string::npos) << f;
  }
}

TEST(ConfigFile, UpstreamShapesAndFlagsOverride) {
  auto path = temp_file(R"(apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
clusterCIDR: 10.244.0.0/16
metricsBindAddress: 127.0.0.1:19249
ipvs:
  scheduler: sh
  syncPeriod: 1m
  strictARP: true
iptables:
  masqueradeBit: 15
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/knode/manifests
healthzPort: 10300
port: 10350
tlsCertFile: /pki/k.crt
tlsPrivateKeyFile: /pki/k.key
serverTLSBootstrap: true
authentication:
  x509: {clientCAFile: /pki/ca.crt}
)");
  AgentConfig c;
  auto r = parse(Component::kAgent, {"--config", path, "--ipvs-scheduler=rr"}, &c);
  ASSERT_EQ(r.kind, ParseOutcome::kRun) << r.message;
  EXPECT_EQ(c.proxy.mode, "ipvs");
  EXPECT_EQ(c.proxy.ipvs.scheduler, "rr");  // the flag wins
  EXPECT_EQ(c.proxy.ipvs.sync_period.millis(), 60000);
  EXPECT_TRUE(c.proxy.ipvs.strict_arp);
  EXPECT_EQ(c.proxy.iptables.masquerade_bit, 15);
  EXPECT_EQ(c.proxy.metrics_bind_address, "127.0.0.1:19249");
  EXPECT_EQ(c.manifest_dir, "/etc/knode/manifests");
  EXPECT_EQ(c.kubelet.healthz_port, 10300);
  EXPECT_EQ(c.kubelet.port, 10350);
  EXPECT_EQ(c.kubelet.tls_cert_file, "/pki/k.crt");
  EXPECT_EQ(c.kubelet.tls_private_key_file, "/pki/k.key");
  EXPECT_EQ(c.kubelet.authentication.x509.client_ca_file, "/pki/ca.crt");
  EXPECT_TRUE(c.kubelet.server_tls_bootstrap);
  std::filesystem::remove(path);
}

// kubeadm's KubeletConfiguration spells the kubelet API's access this way.
TEST(ConfigFile, KubeletApiAccessAsKubeadmWritesItAndTheFlagsThatOverrideIt) {
  AgentConfig defaults;
  EXPECT_FALSE(defaults.kubelet.authentication.anonymous.enabled);
  EXPECT_TRUE(defaults.kubelet.authentication.webhook.enabled);
  EXPECT_EQ(defaults.kubelet.authorization.mode, "Webhook");
  auto path = temp_file(R"(apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false, cacheTTL: 0s}
  x509: {clientCAFile: /etc/kubernetes/pki/ca.crt}
authorization:
  mode: AlwaysAllow
  webhook: {cacheAuthorizedTTL: 1m, cacheUnauthorizedTTL: 5s}
)");
  AgentConfig c;
  auto r = parse(Component::kKubelet, {"--config", path, "--manifest-dir=/m"}, &c);
  ASSERT_EQ(r.kind, ParseOutcome::kRun) << r.message;
  EXPECT_TRUE(c.kubelet.authentication.anonymous.enabled);
  EXPECT_FALSE(c.kubelet.authentication.webhook.enabled);
  EXPECT_EQ(c.kubelet.authentication.webhook.cache_ttl.nanos(), 0);
  EXPECT_EQ(c.kubelet.authorization.mode, "AlwaysAllow");
  EXPECT_EQ(c.kubelet.authorization.webhook.cache_authorized_ttl.millis(), 60000);
  EXPECT_EQ(c.kubelet.authorization.webhook.cache_unauthorized_ttl.millis(), 5000);

  AgentConfig f;
  r = parse(Component::kKubelet,
            {"--config", path, "--manifest-dir=/m", "--anonymous-auth=false", "--authorization-mode=Webhook",
             "--authentication-token-webhook=true", "--authentication-token-webhook-cache-ttl=30s",
             "--authorization-webhook-cache-authorized-ttl=2m", "--authorization-webhook-cache-unauthorized-ttl=1s"},
            &f);
  ASSERT_EQ(r.kind, ParseOutcome::kRun) << r.message;
  EXPECT_FALSE(f.kubelet.authentication.anonymous.enabled);
  EXPECT_TRUE(f.kubelet.authentication.webhook.enabled);
  EXPECT_EQ(f.kubelet.authentication.webhook.cache_ttl.millis(), 30000);
  EXPECT_EQ(f.kubelet.authorization.mode, "Webhook");
  EXPECT_EQ(f.kubelet.authorization.webhook.cache_authorized_ttl.millis(), 120000);
  EXPECT_EQ(f.kubelet.authorization.webhook.cache_unauthorized_ttl.millis(), 1000);

  // Bare, as upstream's boolean flags: true, and the next argument stays a flag.
  AgentConfig bare;
  r = parse(Component::kKubelet, {"--anonymous-auth", "--manifest-dir=/m", "--authentication-token-webhook"}, &bare);
  ASSERT_EQ(r.kind, ParseOutcome::kRun) << r.message;
  EXPECT_TRUE(bare.kubelet.authentication.anonymous.enabled);
  EXPECT_EQ(bare.manifest_dir, "/m");

  AgentConfig bad;
  r = parse(Component::kKubelet, {"--manifest-dir=/m", "--authorization-mode=RBAC"}, &bad);
  EXPECT_EQ(r.kind, ParseOutcome::kError);
  EXPECT_EQ(r.message, "invalid value for --authorization-mode: \"RBAC\" (want Webhook or AlwaysAllow)");
  EXPECT_EQ(parse(Component::kKubelet, {"--manifest-dir=/m", "--anonymous-auth=maybe"}, &bad).kind,
            ParseOutcome::kError);
  std::filesystem::remove(path);
}

TEST(ConfigFile, BadFieldNamed) {
  auto path = temp_file("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nipvs: {syncPeriod: 30}\n");
  AgentConfig c;
  auto r = parse(Component::kProxy, {"--config=" + path, "--manifest-dir=/m"}, &c);
  EXPECT_EQ(r.kind, ParseOutcome::kError);
  EXPECT_EQ(r.message, path + ": KubeProxyConfiguration: ipvs.syncPeriod: expected duration like \"30s\", got integer");
  auto wrong = temp_file("apiVersion: v1\nkind: Pod\n");
  EXPECT_EQ(parse(Component::kProxy, {"--config=" + wrong, "--manifest-dir=/m"}, &c).kind, ParseOutcome::kError);
  std::filesystem::remove(path);
  std::filesystem::remove(wrong);
}

TEST(HostPort, Splits) {
  std::string h;
  int p;
  EXPECT_TRUE(split_host_port("0.0.0.0:10256", 1, &h, &p));
  EXPECT_EQ(h, "0.0.0.0");
  EXPECT_EQ(p, 10256);
  EXPECT_TRUE(split_host_port("127.0.0.1", 10249, &h, &p));
  EXPECT_EQ(p, 10249);
  EXPECT_TRUE(split_host_port("[::1]:80", 1, &h, &p));
  EXPECT_EQ(h, "::1");
  EXPECT_FALSE(split_host_port("localhost:80", 1, &h, &p));
}
