// The /etc/hosts the kubelet gives a pod's containers, as upstream's managedHostsFileContent
// writes it: localhost and the IPv6 names, the pod's IPs with its hostname (and FQDN when it
// has a subdomain), then spec.hostAliases. A host-network pod gets the node's own file with
// its host aliases appended. Containers that mount something at /etc/hosts themselves keep
// it.
#pragma once

#include <string>
#include <vector>

#include "knode/api/pod.h"

namespace knode::kubelet {

inline constexpr char kEtcHostsPath[] = "/etc/hosts";

// The pod's hostname as upstream's GeneratePodHostNameAndDomain makes it: spec.hostname
// or the pod's name, cut to 63 characters without a trailing '-' or '.'.
std::string pod_hostname(const api::Pod& pod);

// `pod_ips` in the order the status reports them; `host_etc_hosts` is the node's
// /etc/hosts content (used for host-network pods only).
std::string managed_etc_hosts(const api::Pod& pod, const std::vector<std::string>& pod_ips,
                              const std::string& cluster_domain, const std::string& host_etc_hosts);

// Whether container `c` mounts a volume at /etc/hosts (then the kubelet leaves it alone).
bool mounts_own_etc_hosts(const api::Container& c);

}  // namespace knode::kubelet
