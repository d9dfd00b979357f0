// The kubelet-managed /etc/hosts, against upstream's managedHostsFileContent.
#include "pod/etc_hosts.h"

#include <gtest/gtest.h>

namespace knode::kubelet {
namespace {

api::Pod pod(const std::string& name) {
  api::Pod p;
  p.metadata.name = name;
  p.metadata.namespace_ = "web";
  return p;
}

constexpr char kHeader[] =
    "# Kubernetes-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n";

TEST(EtcHosts, ThePodIpsWithTheHostname) {
  EXPECT_EQ(managed_etc_hosts(pod("web-0"), {"10.244.0.5", "fd00::5"}, "cluster.local", ""),
            std::string(kHeader) + "10.244.0.5\tweb-0\nfd00::5\tweb-0\n");
}

TEST(EtcHosts, ASubdomainAddsTheFqdnAndAliasesComeLast) {
  auto p = pod("web-0");
  p.spec.hostname = "db";
  p.spec.subdomain = "peers";
  p.spec.host_aliases = {{"1.2.3.4", {"foo.local", "bar.local"}}, {"::1", {"v6"}}};
  EXPECT_EQ(managed_etc_hosts(p, {"10.244.0.5"}, "example.org", ""),
            std::string(kHeader) +
                "10.244.0.5\tdb.peers.web.svc.example.org\tdb\n"
                "\n# Entries added by HostAliases.\n"
                "1.2.3.4\tfoo.local\tbar.local\n"
                "::1\tv6\n");
}

TEST(EtcHosts, ALongNameIsCutTo63AsTheHostname) {
  std::string name = std::string(62, 'a') + "-b";
  EXPECT_NE(managed_etc_hosts(pod(name), {"10.0.0.1"}, "cluster.local", "").find("10.0.0.1\t" + std::string(62, 'a') + "\n"),
            std::string::npos);
}

TEST(EtcHosts, AHostNetworkPodGetsTheNodesFileAndItsAliases) {
  auto p = pod("agent");
  p.spec.host_network = true;
  p.spec.host_aliases = {{"1.2.3.4", {"foo"}}};
  EXPECT_EQ(managed_etc_hosts(p, {}, "cluster.local", "127.0.0.1 localhost\n192.168.1.5 node1"),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.168.1.5 node1\n"
            "\n# Entries added by HostAliases.\n1.2.3.4\tfoo\n");
}

TEST(EtcHosts, AContainerMountingEtcHostsKeepsIt) {
  api::Container c;
  EXPECT_FALSE(mounts_own_etc_hosts(c));
  api::VolumeMount m;
  m.name = "host-etc-hosts";
  m.mount_path = "/etc/hosts";
  c.volume_mounts.push_back(m);
  EXPECT_TRUE(mounts_own_etc_hosts(c));
}

}  // namespace
}  // namespace knode::kubelet
