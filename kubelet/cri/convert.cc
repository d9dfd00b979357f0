#include "cri/convert.h"

#include <cerrno>
#include <string>

namespace knode::cri {

namespace rt = knode::runtime;

namespace {

template <typename ProtoMap>
void put_map(const std::map<std::string, std::string>& in, ProtoMap* out) {
  for (const auto& [k, v] : in) (*out)[k] = v;
}

template <typename ProtoMap>
std::map<std::string, std::string> get_map(const ProtoMap& in) {
  return {in.begin(), in.end()};
}

template <typename Repeated>
void put_list(const std::vector<std::string>& in, Repeated* out) {
  for (const auto& s : in) *out->Add() = s;
}

template <typename Repeated>
std::vector<std::string> get_list(const Repeated& in) {
  return {in.begin(), in.end()};
}

void put_ids(const std::vector<int64_t>& in, google::protobuf::RepeatedField<int64_t>* out) {
  for (int64_t v : in) out->Add(v);
}

std::vector<int64_t> get_ids(const google::protobuf::RepeatedField<int64_t>& in) {
  return {in.begin(), in.end()};
}

}  // namespace

// ---- enums ----
// Explicit switches rather than casts: the values match CRI's today, and a peer may send
// a value this build does not know (proto3 enums are open).

pb::Protocol to_proto(rt::Protocol p) {
  switch (p) {
    case rt::Protocol::kTCP: return pb::TCP;
    case rt::Protocol::kUDP: return pb::UDP;
    case rt::Protocol::kSCTP: return pb::SCTP;
  }
  return pb::TCP;
}

rt::Protocol from_proto(pb::Protocol p) {
  switch (p) {
    case pb::UDP: return rt::Protocol::kUDP;
    case pb::SCTP: return rt::Protocol::kSCTP;
    default: return rt::Protocol::kTCP;
  }
}

pb::NamespaceMode to_proto(rt::NamespaceMode m) {
  switch (m) {
    case rt::NamespaceMode::kPod: return pb::POD;
    case rt::NamespaceMode::kContainer: return pb::CONTAINER;
    case rt::NamespaceMode::kNode: return pb::NODE;
    case rt::NamespaceMode::kTarget: return pb::TARGET;
  }
  return pb::POD;
}

rt::NamespaceMode from_proto(pb::NamespaceMode m) {
  switch (m) {
    case pb::CONTAINER: return rt::NamespaceMode::kContainer;
    case pb::NODE: return rt::NamespaceMode::kNode;
    case pb::TARGET: return rt::NamespaceMode::kTarget;
    default: return rt::NamespaceMode::kPod;
  }
}

pb::MountPropagation to_proto(rt::MountPropagation p) {
  switch (p) {
    case rt::MountPropagation::kPrivate: return pb::PROPAGATION_PRIVATE;
    case rt::MountPropagation::kHostToContainer: return pb::PROPAGATION_HOST_TO_CONTAINER;
    case rt::MountPropagation::kBidirectional: return pb::PROPAGATION_BIDIRECTIONAL;
  }
  return pb::PROPAGATION_PRIVATE;
}

rt::MountPropagation from_proto(pb::MountPropagation p) {
  switch (p) {
    case pb::PROPAGATION_HOST_TO_CONTAINER: return rt::MountPropagation::kHostToContainer;
    case pb::PROPAGATION_BIDIRECTIONAL: return rt::MountPropagation::kBidirectional;
    default: return rt::MountPropagation::kPrivate;
  }
}

pb::PodSandboxState to_proto(rt::SandboxState s) {
  return s == rt::SandboxState::kReady ? pb::SANDBOX_READY : pb::SANDBOX_NOTREADY;
}

rt::SandboxState from_proto(pb::PodSandboxState s) {
  return s == pb::SANDBOX_READY ? rt::SandboxState::kReady : rt::SandboxState::kNotReady;
}

pb::ContainerState to_proto(rt::ContainerState s) {
  switch (s) {
    case rt::ContainerState::kCreated: return pb::CONTAINER_CREATED;
    case rt::ContainerState::kRunning: return pb::CONTAINER_RUNNING;
    case rt::ContainerState::kExited: return pb::CONTAINER_EXITED;
    case rt::ContainerState::kUnknown: return pb::CONTAINER_UNKNOWN;
  }
  return pb::CONTAINER_UNKNOWN;
}

rt::ContainerState from_proto(pb::ContainerState s) {
  switch (s) {
    case pb::CONTAINER_CREATED: return rt::ContainerState::kCreated;
    case pb::CONTAINER_RUNNING: return rt::ContainerState::kRunning;
    case pb::CONTAINER_EXITED: return rt::ContainerState::kExited;
    default: return rt::ContainerState::kUnknown;
  }
}

pb::CgroupDriver to_proto(rt::CgroupDriver d) {
  return d == rt::CgroupDriver::kSystemd ? pb::SYSTEMD : pb::CGROUPFS;
}

rt::CgroupDriver from_proto(pb::CgroupDriver d) {
  return d == pb::CGROUPFS ? rt::CgroupDriver::kCgroupfs : rt::CgroupDriver::kSystemd;
}

// ---- what the kubelet sends ----

void to_proto(const rt::NamespaceOptions& in, pb::NamespaceOption* out) {
  out->set_network(to_proto(in.network));
  out->set_pid(to_proto(in.pid));
  out->set_ipc(to_proto(in.ipc));
  out->set_target_id(in.target_id);
}

rt::NamespaceOptions from_proto(const pb::NamespaceOption& in) {
  rt::NamespaceOptions out;
  out.network = from_proto(in.network());
  out.pid = from_proto(in.pid());
  out.ipc = from_proto(in.ipc());
  out.target_id = in.target_id();
  return out;
}

void to_proto(const rt::SecurityProfile& in, pb::SecurityProfile* out) {
  switch (in.type) {
    case rt::SecurityProfile::Type::kRuntimeDefault:
      out->set_profile_type(pb::SecurityProfile::RuntimeDefault);
      break;
    case rt::SecurityProfile::Type::kUnconfined:
      out->set_profile_type(pb::SecurityProfile::Unconfined);
      break;
    case rt::SecurityProfile::Type::kLocalhost:
      out->set_profile_type(pb::SecurityProfile::Localhost);
      break;
  }
  out->set_localhost_ref(in.localhost_ref);
}

rt::SecurityProfile from_proto(const pb::SecurityProfile& in) {
  rt::SecurityProfile out;
  switch (in.profile_type()) {
    case pb::SecurityProfile::Unconfined: out.type = rt::SecurityProfile::Type::kUnconfined; break;
    case pb::SecurityProfile::Localhost: out.type = rt::SecurityProfile::Type::kLocalhost; break;
    default: out.type = rt::SecurityProfile::Type::kRuntimeDefault; break;
  }
  out.localhost_ref = in.localhost_ref();
  return out;
}

void to_proto(const rt::LinuxResources& in, pb::LinuxContainerResources* out) {
  out->set_cpu_period(in.cpu_period);
  out->set_cpu_quota(in.cpu_quota);
  out->set_cpu_shares(in.cpu_shares);
  out->set_memory_limit_in_bytes(in.memory_limit_in_bytes);
  out->set_memory_swap_limit_in_bytes(in.memory_swap_limit_in_bytes);
  out->set_oom_score_adj(in.oom_score_adj);
  out->set_cpuset_cpus(in.cpuset_cpus);
  out->set_cpuset_mems(in.cpuset_mems);
  put_map(in.unified, out->mutable_unified());
}

rt::LinuxResources from_proto(const pb::LinuxContainerResources& in) {
  rt::LinuxResources out;
  out.cpu_period = in.cpu_period();
  out.cpu_quota = in.cpu_quota();
  out.cpu_shares = in.cpu_shares();
  out.memory_limit_in_bytes = in.memory_limit_in_bytes();
  out.memory_swap_limit_in_bytes = in.memory_swap_limit_in_bytes();
  out.oom_score_adj = in.oom_score_adj();
  out.cpuset_cpus = in.cpuset_cpus();
  out.cpuset_mems = in.cpuset_mems();
  out.unified = get_map(in.unified());
  return out;
}

void to_proto(const rt::ImageSpec& in, pb::ImageSpec* out) {
  out->set_image(in.image);
  put_map(in.annotations, out->mutable_annotations());
}

rt::ImageSpec from_proto(const pb::ImageSpec& in) {
  return {in.image(), get_map(in.annotations())};
}

void to_proto(const rt::AuthConfig& in, pb::AuthConfig* out) {
  out->set_username(in.username);
  out->set_password(in.password);
  out->set_auth(in.auth);
  out->set_server_address(in.server_address);
  out->set_identity_token(in.identity_token);
  out->set_registry_token(in.registry_token);
}

rt::AuthConfig from_proto(const pb::AuthConfig& in) {
  rt::AuthConfig out;
  out.username = in.username();
  out.password = in.password();
  out.auth = in.auth();
  out.server_address = in.server_address();
  out.identity_token = in.identity_token();
  out.registry_token = in.registry_token();
  return out;
}

void to_proto(const rt::PodSandboxMetadata& in, pb::PodSandboxMetadata* out) {
  out->set_name(in.name);
  out->set_uid(in.uid);
  out->set_namespace_(in.ns);
  out->set_attempt(in.attempt);
}

rt::PodSandboxMetadata from_proto(const pb::PodSandboxMetadata& in) {
  return {in.name(), in.uid(), in.namespace_(), in.attempt()};
}

void to_proto(const rt::PortMapping& in, pb::PortMapping* out) {
  out->set_protocol(to_proto(in.protocol));
  out->set_container_port(in.container_port);
  out->set_host_port(in.host_port);
  out->set_host_ip(in.host_ip);
}

rt::PortMapping from_proto(const pb::PortMapping& in) {
  return {from_proto(in.protocol()), in.container_port(), in.host_port(), in.host_ip()};
}

void to_proto(const rt::DnsConfig& in, pb::DNSConfig* out) {
  put_list(in.servers, out->mutable_servers());
  put_list(in.searches, out->mutable_searches());
  put_list(in.options, out->mutable_options());
}

rt::DnsConfig from_proto(const pb::DNSConfig& in) {
  return {get_list(in.servers()), get_list(in.searches()), get_list(in.options())};
}

void to_proto(const rt::PodSandboxConfig& in, pb::PodSandboxConfig* out) {
  to_proto(in.metadata, out->mutable_metadata());
  out->set_hostname(in.hostname);
  out->set_log_directory(in.log_directory);
  to_proto(in.dns, out->mutable_dns_config());
  for (const auto& pm : in.port_mappings) to_proto(pm, out->add_port_mappings());
  put_map(in.labels, out->mutable_labels());
  put_map(in.annotations, out->mutable_annotations());

  pb::LinuxPodSandboxConfig* linux = out->mutable_linux();
  linux->set_cgroup_parent(in.cgroup_parent);
  put_map(in.sysctls, linux->mutable_sysctls());
  pb::LinuxSandboxSecurityContext* sc = linux->mutable_security_context();
  to_proto(in.namespaces, sc->mutable_namespace_options());
  sc->set_privileged(in.privileged);
  if (in.run_as_user) sc->mutable_run_as_user()->set_value(*in.run_as_user);
  if (in.run_as_group) sc->mutable_run_as_group()->set_value(*in.run_as_group);
  put_ids(in.supplemental_groups, sc->mutable_supplemental_groups());
  if (in.seccomp) to_proto(*in.seccomp, sc->mutable_seccomp());
}

rt::PodSandboxConfig from_proto(const pb::PodSandboxConfig& in) {
  rt::PodSandboxConfig out;
  out.metadata = from_proto(in.metadata());
  out.hostname = in.hostname();
  out.log_directory = in.log_directory();
  out.dns = from_proto(in.dns_config());
  for (const auto& pm : in.port_mappings()) out.port_mappings.push_back(from_proto(pm));
  out.labels = get_map(in.labels());
  out.annotations = get_map(in.annotations());

  const pb::LinuxPodSandboxConfig& linux = in.linux();
  out.cgroup_parent = linux.cgroup_parent();
  out.sysctls = get_map(linux.sysctls());
  const pb::LinuxSandboxSecurityContext& sc = linux.security_context();
  out.namespaces = from_proto(sc.namespace_options());
  out.privileged = sc.privileged();
  if (sc.has_run_as_user()) out.run_as_user = sc.run_as_user().value();
  if (sc.has_run_as_group()) out.run_as_group = sc.run_as_group().value();
  out.supplemental_groups = get_ids(sc.supplemental_groups());
  if (sc.has_seccomp()) out.seccomp = from_proto(sc.seccomp());
  return out;
}

void to_proto(const rt::SandboxFilter& in, pb::PodSandboxFilter* out) {
  out->set_id(in.id);
  if (in.state) out->mutable_state()->set_state(to_proto(*in.state));
  put_map(in.label_selector, out->mutable_label_selector());
}

rt::SandboxFilter from_proto(const pb::PodSandboxFilter& in) {
  rt::SandboxFilter out;
  out.id = in.id();
  if (in.has_state()) out.state = from_proto(in.state().state());
  out.label_selector = get_map(in.label_selector());
  return out;
}

void to_proto(const rt::Mount& in, pb::Mount* out) {
  out->set_container_path(in.container_path);
  out->set_host_path(in.host_path);
  out->set_readonly(in.readonly);
  out->set_selinux_relabel(in.selinux_relabel);
  out->set_propagation(to_proto(in.propagation));
  if (!in.image.image.empty()) to_proto(in.image, out->mutable_image());
  out->set_image_sub_path(in.image_sub_path);
}

rt::Mount from_proto(const pb::Mount& in) {
  rt::Mount out;
  out.container_path = in.container_path();
  out.host_path = in.host_path();
  out.readonly = in.readonly();
  out.selinux_relabel = in.selinux_relabel();
  out.propagation = from_proto(in.propagation());
  if (in.has_image()) out.image = from_proto(in.image());
  out.image_sub_path = in.image_sub_path();
  return out;
}

void to_proto(const rt::ContainerMetadata& in, pb::ContainerMetadata* out) {
  out->set_name(in.name);
  out->set_attempt(in.attempt);
}

rt::ContainerMetadata from_proto(const pb::ContainerMetadata& in) {
  return {in.name(), in.attempt()};
}

void to_proto(const rt::ContainerSecurity& in, pb::LinuxContainerSecurityContext* out) {
  put_list(in.add_capabilities, out->mutable_capabilities()->mutable_add_capabilities());
  put_list(in.drop_capabilities, out->mutable_capabilities()->mutable_drop_capabilities());
  out->set_privileged(in.privileged);
  to_proto(in.namespaces, out->mutable_namespace_options());
  if (in.run_as_user) out->mutable_run_as_user()->set_value(*in.run_as_user);
  if (in.run_as_group) out->mutable_run_as_group()->set_value(*in.run_as_group);
  out->set_run_as_username(in.run_as_username);
  out->set_readonly_rootfs(in.readonly_rootfs);
  put_ids(in.supplemental_groups, out->mutable_supplemental_groups());
  out->set_no_new_privs(in.no_new_privs);
  put_list(in.masked_paths, out->mutable_masked_paths());
  put_list(in.readonly_paths, out->mutable_readonly_paths());
  if (in.seccomp) to_proto(*in.seccomp, out->mutable_seccomp());
}

rt::ContainerSecurity from_proto(const pb::LinuxContainerSecurityContext& in) {
  rt::ContainerSecurity out;
  out.add_capabilities = get_list(in.capabilities().add_capabilities());
  out.drop_capabilities = get_list(in.capabilities().drop_capabilities());
  out.privileged = in.privileged();
  out.namespaces = from_proto(in.namespace_options());
  if (in.has_run_as_user()) out.run_as_user = in.run_as_user().value();
  if (in.has_run_as_group()) out.run_as_group = in.run_as_group().value();
  out.run_as_username = in.run_as_username();
  out.readonly_rootfs = in.readonly_rootfs();
  out.supplemental_groups = get_ids(in.supplemental_groups());
  out.no_new_privs = in.no_new_privs();
  out.masked_paths = get_list(in.masked_paths());
  out.readonly_paths = get_list(in.readonly_paths());
  if (in.has_seccomp()) out.seccomp = from_proto(in.seccomp());
  return out;
}

void to_proto(const rt::ContainerConfig& in, pb::ContainerConfig* out) {
  to_proto(in.metadata, out->mutable_metadata());
  to_proto(in.image, out->mutable_image());
  put_list(in.command, out->mutable_command());
  put_list(in.args, out->mutable_args());
  out->set_working_dir(in.working_dir);
  for (const auto& kv : in.envs) {
    pb::KeyValue* e = out->add_envs();
    e->set_key(kv.key);
    e->set_value(kv.value);
  }
  for (const auto& m : in.mounts) to_proto(m, out->add_mounts());
  put_map(in.labels, out->mutable_labels());
  put_map(in.annotations, out->mutable_annotations());
  out->set_log_path(in.log_path);
  out->set_stdin(in.stdin_);
  out->set_stdin_once(in.stdin_once);
  out->set_tty(in.tty);
  to_proto(in.resources, out->mutable_linux()->mutable_resources());
  to_proto(in.security, out->mutable_linux()->mutable_security_context());
}

rt::ContainerConfig from_proto(const pb::ContainerConfig& in) {
  rt::ContainerConfig out;
  out.metadata = from_proto(in.metadata());
  out.image = from_proto(in.image());
  out.command = get_list(in.command());
  out.args = get_list(in.args());
  out.working_dir = in.working_dir();
  for (const auto& e : in.envs()) out.envs.push_back({e.key(), e.value()});
  for (const auto& m : in.mounts()) out.mounts.push_back(from_proto(m));
  out.labels = get_map(in.labels());
  out.annotations = get_map(in.annotations());
  out.log_path = in.log_path();
  out.stdin_ = in.stdin();
  out.stdin_once = in.stdin_once();
  out.tty = in.tty();
  out.resources = from_proto(in.linux().resources());
  out.security = from_proto(in.linux().security_context());
  return out;
}

void to_proto(const rt::ContainerFilter& in, pb::ContainerFilter* out) {
  out->set_id(in.id);
  out->set_pod_sandbox_id(in.pod_sandbox_id);
  if (in.state) out->mutable_state()->set_state(to_proto(*in.state));
  put_map(in.label_selector, out->mutable_label_selector());
}

rt::ContainerFilter from_proto(const pb::ContainerFilter& in) {
  rt::ContainerFilter out;
  out.id = in.id();
  out.pod_sandbox_id = in.pod_sandbox_id();
  if (in.has_state()) out.state = from_proto(in.state().state());
  out.label_selector = get_map(in.label_selector());
  return out;
}

// ---- what the runtime answers ----

void to_proto(const rt::VersionInfo& in, pb::VersionResponse* out) {
  out->set_version(in.version);
  out->set_runtime_name(in.runtime_name);
  out->set_runtime_version(in.runtime_version);
  out->set_runtime_api_version(in.runtime_api_version);
}

rt::VersionInfo from_proto(const pb::VersionResponse& in) {
  return {in.version(), in.runtime_name(), in.runtime_version(), in.runtime_api_version()};
}

void to_proto(const rt::RuntimeStatus& in, pb::RuntimeStatus* out) {
  for (const auto& c : in.conditions) {
    pb::RuntimeCondition* pc = out->add_conditions();
    pc->set_type(c.type);
    pc->set_status(c.status);
    pc->set_reason(c.reason);
    pc->set_message(c.message);
  }
}

rt::RuntimeStatus from_proto(const pb::RuntimeStatus& in) {
  rt::RuntimeStatus out;
  for (const auto& c : in.conditions()) {
    out.conditions.push_back({c.type(), c.status(), c.reason(), c.message()});
  }
  return out;
}

void to_proto(const rt::PodSandbox& in, pb::PodSandbox* out) {
  out->set_id(in.id);
  to_proto(in.metadata, out->mutable_metadata());
  out->set_state(to_proto(in.state));
  out->set_created_at(in.created_at);
  put_map(in.labels, out->mutable_labels());
  put_map(in.annotations, out->mutable_annotations());
  out->set_runtime_handler(in.runtime_handler);
}

rt::PodSandbox from_proto(const pb::PodSandbox& in) {
  rt::PodSandbox out;
  out.id = in.id();
  out.metadata = from_proto(in.metadata());
  out.state = from_proto(in.state());
  out.created_at = in.created_at();
  out.labels = get_map(in.labels());
  out.annotations = get_map(in.annotations());
  out.runtime_handler = in.runtime_handler();
  return out;
}

void to_proto(const rt::PodSandboxStatus& in, pb::PodSandboxStatus* out) {
  out->set_id(in.id);
  to_proto(in.metadata, out->mutable_metadata());
  out->set_state(to_proto(in.state));
  out->set_created_at(in.created_at);
  out->mutable_network()->set_ip(in.ip);
  for (const auto& ip : in.additional_ips) out->mutable_network()->add_additional_ips()->set_ip(ip);
  to_proto(in.namespaces, out->mutable_linux()->mutable_namespaces()->mutable_options());
  put_map(in.labels, out->mutable_labels());
  put_map(in.annotations, out->mutable_annotations());
  out->set_runtime_handler(in.runtime_handler);
}

rt::PodSandboxStatus from_proto(const pb::PodSandboxStatus& in) {
  rt::PodSandboxStatus out;
  out.id = in.id();
  out.metadata = from_proto(in.metadata());
  out.state = from_proto(in.state());
  out.created_at = in.created_at();
  out.ip = in.network().ip();
  for (const auto& ip : in.network().additional_ips()) out.additional_ips.push_back(ip.ip());
  out.namespaces = from_proto(in.linux().namespaces().options());
  out.labels = get_map(in.labels());
  out.annotations = get_map(in.annotations());
  out.runtime_handler = in.runtime_handler();
  return out;
}

void to_proto(const rt::Container& in, pb::Container* out) {
  out->set_id(in.id);
  out->set_pod_sandbox_id(in.pod_sandbox_id);
  to_proto(in.metadata, out->mutable_metadata());
  to_proto(in.image, out->mutable_image());
  out->set_image_ref(in.image_ref);
  out->set_state(to_proto(in.state));
  out->set_created_at(in.created_at);
  put_map(in.labels, out->mutable_labels());
  put_map(in.annotations, out->mutable_annotations());
}

rt::Container from_proto(const pb::Container& in) {
  rt::Container out;
  out.id = in.id();
  out.pod_sandbox_id = in.pod_sandbox_id();
  out.metadata = from_proto(in.metadata());
  out.image = from_proto(in.image());
  // Runtimes of CRI >= 1.31 may fill image_id alone; older ones only image_ref.
  out.image_ref = in.image_ref().empty() ? in.image_id() : in.image_ref();
  out.state = from_proto(in.state());
  out.created_at = in.created_at();
  out.labels = get_map(in.labels());
  out.annotations = get_map(in.annotations());
  return out;
}

void to_proto(const rt::ContainerStatus& in, pb::ContainerStatus* out) {
  out->set_id(in.id);
  to_proto(in.metadata, out->mutable_metadata());
  out->set_state(to_proto(in.state));
  out->set_created_at(in.created_at);
  out->set_started_at(in.started_at);
  out->set_finished_at(in.finished_at);
  out->set_exit_code(in.exit_code);
  to_proto(in.image, out->mutable_image());
  out->set_image_ref(in.image_ref);
  out->set_reason(in.reason);
  out->set_message(in.message);
  put_map(in.labels, out->mutable_labels());
  put_map(in.annotations, out->mutable_annotations());
  for (const auto& m : in.mounts) to_proto(m, out->add_mounts());
  out->set_log_path(in.log_path);
}

rt::ContainerStatus from_proto(const pb::ContainerStatus& in) {
  rt::ContainerStatus out;
  out.id = in.id();
  out.metadata = from_proto(in.metadata());
  out.state = from_proto(in.state());
  out.created_at = in.created_at();
  out.started_at = in.started_at();
  out.finished_at = in.finished_at();
  out.exit_code = in.exit_code();
  out.image = from_proto(in.image());
  out.image_ref = in.image_ref().empty() ? in.image_id() : in.image_ref();
  out.reason = in.reason();
  out.message = in.message();
  out.labels = get_map(in.labels());
  out.annotations = get_map(in.annotations());
  for (const auto& m : in.mounts()) out.mounts.push_back(from_proto(m));
  out.log_path = in.log_path();
  return out;
}

void to_proto(const rt::ExecRequest& in, pb::ExecRequest* out) {
  out->set_container_id(in.container_id);
  put_list(in.cmd, out->mutable_cmd());
  out->set_tty(in.tty);
  out->set_stdin(in.stdin_);
  out->set_stdout(in.stdout_);
  out->set_stderr(in.stderr_);
}

rt::ExecRequest from_proto(const pb::ExecRequest& in) {
  rt::ExecRequest out;
  out.container_id = in.container_id();
  out.cmd.assign(in.cmd().begin(), in.cmd().end());
  out.tty = in.tty();
  out.stdin_ = in.stdin();
  out.stdout_ = in.stdout();
  out.stderr_ = in.stderr();
  return out;
}

void to_proto(const rt::AttachRequest& in, pb::AttachRequest* out) {
  out->set_container_id(in.container_id);
  out->set_tty(in.tty);
  out->set_stdin(in.stdin_);
  out->set_stdout(in.stdout_);
  out->set_stderr(in.stderr_);
}

rt::AttachRequest from_proto(const pb::AttachRequest& in) {
  rt::AttachRequest out;
  out.container_id = in.container_id();
  out.tty = in.tty();
  out.stdin_ = in.stdin();
  out.stdout_ = in.stdout();
  out.stderr_ = in.stderr();
  return out;
}

void to_proto(const rt::ExecResult& in, pb::ExecSyncResponse* out) {
  out->set_stdout(in.stdout_);
  out->set_stderr(in.stderr_);
  out->set_exit_code(in.exit_code);
}

rt::ExecResult from_proto(const pb::ExecSyncResponse& in) {
  return {in.stdout(), in.stderr(), in.exit_code()};
}

void to_proto(const rt::ContainerStats& in, pb::ContainerStats* out) {
  out->mutable_attributes()->set_id(in.id);
  out->mutable_cpu()->set_timestamp(in.timestamp);
  out->mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(in.cpu_usage_core_nanoseconds);
  out->mutable_memory()->set_timestamp(in.timestamp);
  out->mutable_memory()->mutable_working_set_bytes()->set_value(in.memory_working_set_bytes);
  out->mutable_writable_layer()->set_timestamp(in.timestamp);
  out->mutable_writable_layer()->mutable_used_bytes()->set_value(in.writable_layer_used_bytes);
}

rt::ContainerStats from_proto(const pb::ContainerStats& in) {
  rt::ContainerStats out;
  out.id = in.attributes().id();
  // One time for the sample: the CPU reading's, else whichever part carries one.
  out.timestamp = in.cpu().timestamp();
  if (out.timestamp == 0) out.timestamp = in.memory().timestamp();
  if (out.timestamp == 0) out.timestamp = in.writable_layer().timestamp();
  out.cpu_usage_core_nanoseconds = in.cpu().usage_core_nano_seconds().value();
  out.memory_working_set_bytes = in.memory().working_set_bytes().value();
  out.writable_layer_used_bytes = in.writable_layer().used_bytes().value();
  return out;
}

void to_proto(const rt::Image& in, pb::Image* out) {
  out->set_id(in.id);
  put_list(in.repo_tags, out->mutable_repo_tags());
  put_list(in.repo_digests, out->mutable_repo_digests());
  out->set_size(in.size);
  out->set_pinned(in.pinned);
}

rt::Image from_proto(const pb::Image& in) {
  rt::Image out;
  out.id = in.id();
  out.repo_tags = get_list(in.repo_tags());
  out.repo_digests = get_list(in.repo_digests());
  out.size = in.size();
  out.pinned = in.pinned();
  return out;
}

void to_proto(const rt::FilesystemUsage& in, pb::FilesystemUsage* out) {
  out->mutable_fs_id()->set_mountpoint(in.mountpoint);
  out->mutable_used_bytes()->set_value(in.used_bytes);
}

rt::FilesystemUsage from_proto(const pb::FilesystemUsage& in) {
  rt::FilesystemUsage out;
  out.mountpoint = in.fs_id().mountpoint();
  out.used_bytes = in.used_bytes().value();
  return out;
}

// ---- errors ----

int errno_for(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return 0;
    case grpc::StatusCode::NOT_FOUND: return ENOENT;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return ETIMEDOUT;
    case grpc::StatusCode::UNAVAILABLE: return ECONNREFUSED;
    case grpc::StatusCode::UNIMPLEMENTED: return ENOTSUP;
    default: return EIO;
  }
}

const char* code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "Canceled";
    case grpc::StatusCode::UNKNOWN: return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT: return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND: return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS: return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED: return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FailedPrecondition";
    case grpc::StatusCode::ABORTED: return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE: return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED: return "Unimplemented";
    case grpc::StatusCode::INTERNAL: return "Internal";
    case grpc::StatusCode::UNAVAILABLE: return "Unavailable";
    case grpc::StatusCode::DATA_LOSS: return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED: return "Unauthenticated";
    default: return "Unknown";
  }
}

Status from_grpc(const grpc::Status& s, std::string_view call, std::string_view object) {
  if (s.ok()) return Status::Ok();
  std::string msg = "CRI ";
  msg += call;
  if (!object.empty()) {
    msg += ' ';
    msg += object;
  }
  msg += ": ";
  msg += code_name(s.error_code());
  msg += ": ";
  msg += s.error_message();
  return Status::Error(std::move(msg), errno_for(s.error_code()));
}

}  // namespace knode::cri
