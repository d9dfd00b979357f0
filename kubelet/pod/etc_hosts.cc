#include "pod/etc_hosts.h"

namespace knode::kubelet {

std::string pod_hostname(const api::Pod& pod) {
  std::string h = pod.spec.hostname.empty() ? pod.metadata.name : pod.spec.hostname;
  if (h.size() > 63) h.resize(63);
  while (!h.empty() && (h.back() == '-' || h.back() == '.')) h.pop_back();
  return h;
}

namespace {

void append_aliases(const api::Pod& pod, std::string& out) {
  if (pod.spec.host_aliases.empty()) return;
  out += "\n# Entries added by HostAliases.\n";
  for (const auto& a : pod.spec.host_aliases) {
    out += a.ip;
    out += '\t';
    for (size_t i = 0; i < a.hostnames.size(); ++i) {
      if (i) out += '\t';
      out += a.hostnames[i];
    }
    out += '\n';
  }
}

}  // namespace

std::string managed_etc_hosts(const api::Pod& pod, const std::vector<std::string>& pod_ips,
                              const std::string& cluster_domain, const std::string& host_etc_hosts) {
  std::string out;
  if (pod.spec.host_network) {
    out = "# Kubernetes-managed hosts file (host network).\n" + host_etc_hosts;
    if (!out.empty() && out.back() != '\n') out += '\n';
    append_aliases(pod, out);
    return out;
  }
  out =
      "# Kubernetes-managed hosts file.\n"
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\n"
      "fe00::0\tip6-mcastprefix\n"
      "fe00::1\tip6-allnodes\n"
      "fe00::2\tip6-allrouters\n";
  const std::string host = pod_hostname(pod);
  const std::string domain = pod.spec.subdomain.empty()
                                 ? ""
                                 : pod.spec.subdomain + "." + pod.metadata.namespace_ + ".svc." + cluster_domain;
  for (const auto& ip : pod_ips) {
    out += ip + "\t" + (domain.empty() ? host : host + "." + domain + "\t" + host) + "\n";
  }
  append_aliases(pod, out);
  return out;
}

bool mounts_own_etc_hosts(const api::Container& c) {
  for (const auto& m : c.volume_mounts) {
    if (m.mount_path == kEtcHostsPath || m.mount_path == "/etc/hosts/") return true;
  }
  return false;
}

}  // namespace knode::kubelet
