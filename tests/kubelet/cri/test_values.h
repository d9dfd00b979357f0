// Runtime values with every field set to a distinct, non-zero value, shared by the CRI
// tests: a conversion that drops or swaps a field cannot pass with them.
#pragma once

#include "knode/runtime.h"

namespace knode::cri::testing {

namespace rt = knode::runtime;

inline rt::PodSandboxConfig full_sandbox_config() {
  rt::PodSandboxConfig c;
  c.metadata = {"web-0", "0b5c-uid", "shop", 3};
  c.hostname = "web-0";
  c.log_directory = "/var/log/pods/shop_web-0_0b5c-uid";
  c.dns = {{"10.96.0.10"}, {"shop.svc.cluster.local", "svc.cluster.local"}, {"ndots:5"}};
  c.port_mappings = {{rt::Protocol::kUDP, 53, 5353, "127.0.0.1"},
                     {rt::Protocol::kSCTP, 9000, 19000, "10.0.0.1"}};
  c.labels = {{"app", "web"}, {"io.kubernetes.pod.name", "web-0"}};
  c.annotations = {{"kubernetes.io/config.source", "file"}};
  c.cgroup_parent = "/kubepods/besteffort/pod0b5c-uid";
  c.sysctls = {{"net.ipv4.ip_unprivileged_port_start", "0"}};
  c.namespaces = {rt::NamespaceMode::kNode, rt::NamespaceMode::kContainer,
                  rt::NamespaceMode::kTarget, "target-ctr"};
  c.privileged = true;
  c.run_as_user = 1000;
  c.run_as_group = 2000;
  c.supplemental_groups = {3000, 3001};
  c.seccomp = rt::SecurityProfile{rt::SecurityProfile::Type::kLocalhost, "profiles/web.json"};
  return c;
}

inline rt::ContainerConfig full_container_config() {
  rt::ContainerConfig c;
  c.metadata = {"nginx", 2};
  c.image = {"127.0.0.1:5000/nginx:1.27", {{"io.kubernetes.cri.image-hint", "x"}}};
  c.command = {"/bin/sh", "-c"};
  c.args = {"exec nginx", "-g"};
  c.working_dir = "/srv";
  c.envs = {{"PORT", "8080"}, {"BIN", std::string("\xff\x00\x01", 3)}};
  // Every field set for the conversion test (a real image volume mount has no host path).
  c.mounts = {{"/etc/hosts", "/var/lib/knode/pods/uid/etc-hosts", true, true,
               rt::MountPropagation::kBidirectional, {"sha256:vol", {{"a", "b"}}}, "html"},
              {"/data", "/mnt/data", true, true, rt::MountPropagation::kHostToContainer,
               {"127.0.0.1:5000/kitten:1.8", {{"c", "d"}}}, "etc"}};
  c.labels = {{"io.kubernetes.container.name", "nginx"}};
  c.annotations = {{"io.kubernetes.container.restartCount", "2"}};
  c.log_path = "nginx/2.log";
  c.stdin_ = true;
  c.stdin_once = true;
  c.tty = true;
  c.resources.cpu_period = 100000;
  c.resources.cpu_quota = 50000;
  c.resources.cpu_shares = 512;
  c.resources.memory_limit_in_bytes = 128 << 20;
  c.resources.memory_swap_limit_in_bytes = 256 << 20;
  c.resources.oom_score_adj = 999;
  c.resources.cpuset_cpus = "0-1";
  c.resources.cpuset_mems = "0";
  c.resources.unified = {{"memory.swap.max", "0"}};
  c.security.privileged = true;
  c.security.add_capabilities = {"NET_ADMIN"};
  c.security.drop_capabilities = {"ALL"};
  c.security.run_as_user = 101;
  c.security.run_as_group = 102;
  c.security.run_as_username = "nginx";
  c.security.supplemental_groups = {103};
  c.security.readonly_rootfs = true;
  c.security.no_new_privs = true;
  c.security.namespaces = {rt::NamespaceMode::kNode, rt::NamespaceMode::kTarget,
                           rt::NamespaceMode::kContainer, "pause-id"};
  c.security.seccomp = rt::SecurityProfile{rt::SecurityProfile::Type::kUnconfined, "ignored"};
  c.security.masked_paths = {"/proc/kcore", "/proc/keys"};
  c.security.readonly_paths = {"/proc/sys"};
  return c;
}

}  // namespace knode::cri::testing
