#include "host.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include "knode/dataplane/link.h"
#include "knode/dataplane/sysctl.h"
#include "knode/log.h"

namespace knode::proxy {
namespace {

class SystemHost final : public Host {
 public:
  std::vector<net::IPAddress> local_ipv4_addresses(const std::string& skip_iface) override {
    std::vector<net::IPAddress> out;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return out;
    for (ifaddrs* a = list; a; a = a->ifa_next) {
      if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
      if ((a->ifa_flags & IFF_LOOPBACK) || skip_iface == a->ifa_name) continue;
      auto* sin = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
      out.push_back(net::IPAddress::V4(ntohl(sin->sin_addr.s_addr)));
    }
    freeifaddrs(list);
    return out;
  }

  std::set<net::IPAddress> default_route_ipv4_addresses() override {
    auto sock = link::Socket::Open();
    if (!sock.ok()) return {};
    auto ips = link::default_route_addresses(*sock, AF_INET);
    return {ips.begin(), ips.end()};
  }

  bool has_sysctl(const std::string& name) override {
    return ::access(sysctl::path_of(name).c_str(), F_OK) == 0;
  }

  Status ensure_sysctl(const std::string& name, const std::string& value) override {
    return sysctl::ensure(name, value);
  }
};

}  // namespace

Host& system_host() {
  static SystemHost host;
  return host;
}

Status ensure_sysctls(Host& host, const std::vector<SysctlNeed>& needs, const std::string& mode) {
  for (const auto& n : needs) {
    Status s = host.ensure_sysctl(n.name, n.value);
    if (s.ok()) continue;
    if (n.required) return s.Wrap(mode + " mode");
    KLOG(WARNING, "could not set a sysctl the proxy mode wants")
        .kv("mode", mode).kv("name", n.name).kv("value", n.value).kv("consequence", n.consequence)
        .kv("err", s.message());
  }
  return Status::Ok();
}

void ensure_bridge_netfilter(Host& host) {
  const char* kName = "net.bridge.bridge-nf-call-iptables";
  if (!host.has_sysctl(kName)) {
    KLOG(WARNING, "br_netfilter is not loaded: traffic between pods on one bridge bypasses iptables, so a pod "
                  "reaching a service backed by a pod on the same bridge (itself included) is not masqueraded "
                  "and may fail; run `modprobe br_netfilter`");
    return;
  }
  if (Status s = host.ensure_sysctl(kName, "1"); !s.ok()) {
    KLOG(WARNING, "could not set net.bridge.bridge-nf-call-iptables=1").kv("err", s.message());
  }
}

void note_iptables_variant() {
  char target[256] = {0};
  ssize_t n = ::readlink("/etc/alternatives/iptables", target, sizeof(target) - 1);
  if (n > 0 && std::string(target, static_cast<size_t>(n)).find("nft") != std::string::npos) {
    KLOG(INFO, "this host's `iptables` is the nft variant; knode programs the legacy tables: see them with "
               "`iptables-legacy-save`");
  }
}

}  // namespace knode::proxy
