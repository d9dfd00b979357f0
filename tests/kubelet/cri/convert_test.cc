// Conversion between runtime.h values and CRI messages. Each request struct is filled with
// distinct, non-default values; the message must carry each at the field CRI defines
// (checked by name here; the names' numbers are upstream's, in api.proto), every field
// of the message must be set (nothing dropped), and the way back must give the struct
// again. Answers are built as a runtime would send them and read back the same way.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cerrno>

#include "cri/convert.h"
#include "proto_fields.h"
#include "test_values.h"

namespace rt = knode::runtime;
namespace pb = ::runtime::v1;
using knode::cri::from_proto;
using knode::cri::to_proto;
using knode::cri::testing::full_container_config;
using knode::cri::testing::full_sandbox_config;
using knode::cri::testing::unset_fields;
using Strings = std::vector<std::string>;

namespace {

bool same(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

}  // namespace

// ---- enums: every value both ways, at CRI's numbers ----

TEST(CriConvert, EnumsMapToCriValues) {
  EXPECT_EQ(to_proto(rt::Protocol::kTCP), pb::TCP);
  EXPECT_EQ(to_proto(rt::Protocol::kUDP), pb::UDP);
  EXPECT_EQ(to_proto(rt::Protocol::kSCTP), pb::SCTP);
  EXPECT_EQ(pb::SCTP, 2);
  for (auto p : {rt::Protocol::kTCP, rt::Protocol::kUDP, rt::Protocol::kSCTP}) {
    EXPECT_EQ(from_proto(to_proto(p)), p);
  }
  for (auto m : {rt::NamespaceMode::kPod, rt::NamespaceMode::kContainer, rt::NamespaceMode::kNode,
                 rt::NamespaceMode::kTarget}) {
    EXPECT_EQ(static_cast<int>(to_proto(m)), static_cast<int>(m));
    EXPECT_EQ(from_proto(to_proto(m)), m);
  }
  for (auto p : {rt::MountPropagation::kPrivate, rt::MountPropagation::kHostToContainer,
                 rt::MountPropagation::kBidirectional}) {
    EXPECT_EQ(static_cast<int>(to_proto(p)), static_cast<int>(p));
    EXPECT_EQ(from_proto(to_proto(p)), p);
  }
  EXPECT_EQ(to_proto(rt::SandboxState::kReady), pb::SANDBOX_READY);
  EXPECT_EQ(to_proto(rt::SandboxState::kNotReady), pb::SANDBOX_NOTREADY);
  EXPECT_EQ(from_proto(pb::SANDBOX_NOTREADY), rt::SandboxState::kNotReady);
  EXPECT_EQ(from_proto(pb::SANDBOX_READY), rt::SandboxState::kReady);
  for (auto s : {rt::ContainerState::kCreated, rt::ContainerState::kRunning,
                 rt::ContainerState::kExited, rt::ContainerState::kUnknown}) {
    EXPECT_EQ(static_cast<int>(to_proto(s)), static_cast<int>(s));
    EXPECT_EQ(from_proto(to_proto(s)), s);
  }
  // CRI's cgroup driver enum starts with SYSTEMD.
  EXPECT_EQ(to_proto(rt::CgroupDriver::kSystemd), pb::SYSTEMD);
  EXPECT_EQ(to_proto(rt::CgroupDriver::kCgroupfs), pb::CGROUPFS);
  EXPECT_EQ(pb::CGROUPFS, 1);
  EXPECT_EQ(from_proto(pb::CGROUPFS), rt::CgroupDriver::kCgroupfs);
  EXPECT_EQ(from_proto(pb::SYSTEMD), rt::CgroupDriver::kSystemd);
}

TEST(CriConvert, UnknownContainerStateFromNewerRuntimeIsUnknown) {
  EXPECT_EQ(from_proto(static_cast<pb::ContainerState>(17)), rt::ContainerState::kUnknown);
}

// ---- requests ----

TEST(CriConvert, PodSandboxConfigFieldsAndBack) {
  const rt::PodSandboxConfig c = full_sandbox_config();
  pb::PodSandboxConfig m;
  to_proto(c, &m);

  EXPECT_EQ(m.metadata().name(), "web-0");
  EXPECT_EQ(m.metadata().uid(), "0b5c-uid");
  EXPECT_EQ(m.metadata().namespace_(), "shop");
  EXPECT_EQ(m.metadata().attempt(), 3u);
  EXPECT_EQ(m.hostname(), "web-0");
  EXPECT_EQ(m.log_directory(), "/var/log/pods/shop_web-0_0b5c-uid");
  EXPECT_EQ(Strings(m.dns_config().servers().begin(), m.dns_config().servers().end()),
            Strings{"10.96.0.10"});
  EXPECT_EQ(m.dns_config().searches(1), "svc.cluster.local");
  EXPECT_EQ(m.dns_config().options(0), "ndots:5");
  ASSERT_EQ(m.port_mappings_size(), 2);
  EXPECT_EQ(m.port_mappings(0).protocol(), pb::UDP);
  EXPECT_EQ(m.port_mappings(0).container_port(), 53);
  EXPECT_EQ(m.port_mappings(0).host_port(), 5353);
  EXPECT_EQ(m.port_mappings(0).host_ip(), "127.0.0.1");
  EXPECT_EQ(m.port_mappings(1).protocol(), pb::SCTP);
  EXPECT_EQ(m.labels().at("app"), "web");
  EXPECT_EQ(m.annotations().at("kubernetes.io/config.source"), "file");
  EXPECT_EQ(m.linux().cgroup_parent(), "/kubepods/besteffort/pod0b5c-uid");
  EXPECT_EQ(m.linux().sysctls().at("net.ipv4.ip_unprivileged_port_start"), "0");
  const auto& sc = m.linux().security_context();
  EXPECT_EQ(sc.namespace_options().network(), pb::NODE);
  EXPECT_EQ(sc.namespace_options().pid(), pb::CONTAINER);
  EXPECT_EQ(sc.namespace_options().ipc(), pb::TARGET);
  EXPECT_EQ(sc.namespace_options().target_id(), "target-ctr");
  EXPECT_TRUE(sc.privileged());
  EXPECT_EQ(sc.run_as_user().value(), 1000);
  EXPECT_EQ(sc.run_as_group().value(), 2000);
  EXPECT_EQ(sc.supplemental_groups_size(), 2);
  EXPECT_EQ(sc.supplemental_groups(1), 3001);
  EXPECT_EQ(sc.seccomp().profile_type(), pb::SecurityProfile::Localhost);
  EXPECT_EQ(sc.seccomp().localhost_ref(), "profiles/web.json");

  EXPECT_EQ(unset_fields(m), Strings{});
  EXPECT_EQ(from_proto(m), c);
}

TEST(CriConvert, UnsetOptionalsStayUnsetOnTheWire) {
  rt::PodSandboxConfig c;  // no run_as_user/group, no seccomp
  pb::PodSandboxConfig m;
  to_proto(c, &m);
  const auto& sc = m.linux().security_context();
  EXPECT_FALSE(sc.has_run_as_user());
  EXPECT_FALSE(sc.has_run_as_group());
  // Unset means "no profile"; a set message with the zero value would be RuntimeDefault.
  EXPECT_FALSE(sc.has_seccomp());
  // The pid namespace default is the container's own, as the kubelet's default.
  EXPECT_EQ(sc.namespace_options().pid(), pb::CONTAINER);
  EXPECT_EQ(from_proto(m), c);

  rt::ContainerConfig cc;
  pb::ContainerConfig cm;
  to_proto(cc, &cm);
  EXPECT_FALSE(cm.linux().security_context().has_run_as_user());
  EXPECT_FALSE(cm.linux().security_context().has_seccomp());
  EXPECT_EQ(from_proto(cm), cc);

  // Run as root is a value, not "unset".
  c.run_as_user = 0;
  pb::PodSandboxConfig root;
  to_proto(c, &root);
  EXPECT_TRUE(root.linux().security_context().has_run_as_user());
  EXPECT_EQ(from_proto(root).run_as_user, std::optional<int64_t>(0));
}

TEST(CriConvert, ContainerConfigFieldsAndBack) {
  const rt::ContainerConfig c = full_container_config();
  pb::ContainerConfig m;
  to_proto(c, &m);

  EXPECT_EQ(m.metadata().name(), "nginx");
  EXPECT_EQ(m.metadata().attempt(), 2u);
  EXPECT_EQ(m.image().image(), "127.0.0.1:5000/nginx:1.27");
  EXPECT_EQ(m.image().annotations().at("io.kubernetes.cri.image-hint"), "x");
  EXPECT_EQ(Strings(m.command().begin(), m.command().end()), c.command);
  EXPECT_EQ(Strings(m.args().begin(), m.args().end()), c.args);
  EXPECT_EQ(m.working_dir(), "/srv");
  ASSERT_EQ(m.envs_size(), 2);
  EXPECT_EQ(m.envs(0).key(), "PORT");
  EXPECT_EQ(m.envs(0).value(), "8080");
  EXPECT_EQ(m.envs(1).value(), std::string("\xff\x00\x01", 3));
  ASSERT_EQ(m.mounts_size(), 2);
  EXPECT_EQ(m.mounts(0).container_path(), "/etc/hosts");
  EXPECT_EQ(m.mounts(0).host_path(), "/var/lib/knode/pods/uid/etc-hosts");
  EXPECT_TRUE(m.mounts(0).readonly());
  EXPECT_TRUE(m.mounts(0).selinux_relabel());
  EXPECT_EQ(m.mounts(0).propagation(), pb::PROPAGATION_BIDIRECTIONAL);
  EXPECT_EQ(m.mounts(1).propagation(), pb::PROPAGATION_HOST_TO_CONTAINER);
  EXPECT_EQ(m.mounts(1).image().image(), "127.0.0.1:5000/kitten:1.8");
  EXPECT_EQ(m.mounts(1).image_sub_path(), "etc");
  EXPECT_EQ(m.labels().at("io.kubernetes.container.name"), "nginx");
  EXPECT_EQ(m.annotations().at("io.kubernetes.container.restartCount"), "2");
  EXPECT_EQ(m.log_path(), "nginx/2.log");
  EXPECT_TRUE(m.stdin());
  EXPECT_TRUE(m.stdin_once());
  EXPECT_TRUE(m.tty());

  const auto& r = m.linux().resources();
  EXPECT_EQ(r.cpu_period(), 100000);
  EXPECT_EQ(r.cpu_quota(), 50000);
  EXPECT_EQ(r.cpu_shares(), 512);
  EXPECT_EQ(r.memory_limit_in_bytes(), 128 << 20);
  EXPECT_EQ(r.memory_swap_limit_in_bytes(), 256 << 20);
  EXPECT_EQ(r.oom_score_adj(), 999);
  EXPECT_EQ(r.cpuset_cpus(), "0-1");
  EXPECT_EQ(r.cpuset_mems(), "0");
  EXPECT_EQ(r.unified().at("memory.swap.max"), "0");

  const auto& s = m.linux().security_context();
  EXPECT_TRUE(s.privileged());
  EXPECT_EQ(s.capabilities().add_capabilities(0), "NET_ADMIN");
  EXPECT_EQ(s.capabilities().drop_capabilities(0), "ALL");
  EXPECT_EQ(s.run_as_user().value(), 101);
  EXPECT_EQ(s.run_as_group().value(), 102);
  EXPECT_EQ(s.run_as_username(), "nginx");
  EXPECT_EQ(s.supplemental_groups(0), 103);
  EXPECT_TRUE(s.readonly_rootfs());
  EXPECT_TRUE(s.no_new_privs());
  EXPECT_EQ(s.namespace_options().network(), pb::NODE);
  EXPECT_EQ(s.namespace_options().pid(), pb::TARGET);
  EXPECT_EQ(s.namespace_options().ipc(), pb::CONTAINER);
  EXPECT_EQ(s.namespace_options().target_id(), "pause-id");
  EXPECT_EQ(s.seccomp().profile_type(), pb::SecurityProfile::Unconfined);
  EXPECT_EQ(Strings(s.masked_paths().begin(), s.masked_paths().end()), c.security.masked_paths);
  EXPECT_EQ(Strings(s.readonly_paths().begin(), s.readonly_paths().end()),
            c.security.readonly_paths);

  EXPECT_EQ(unset_fields(m), Strings{});
  EXPECT_EQ(from_proto(m), c);
}

TEST(CriConvert, FiltersFieldsAndBack) {
  rt::SandboxFilter sf{"sb-1", rt::SandboxState::kNotReady, {{"app", "web"}}};
  pb::PodSandboxFilter sm;
  to_proto(sf, &sm);
  EXPECT_EQ(sm.id(), "sb-1");
  ASSERT_TRUE(sm.has_state());
  EXPECT_EQ(sm.state().state(), pb::SANDBOX_NOTREADY);
  EXPECT_EQ(sm.label_selector().at("app"), "web");
  EXPECT_EQ(unset_fields(sm), Strings{});
  EXPECT_EQ(from_proto(sm), sf);

  // READY is CRI's zero value: the wrapper message is what says "filter on state".
  sf.state = rt::SandboxState::kReady;
  pb::PodSandboxFilter ready;
  to_proto(sf, &ready);
  EXPECT_TRUE(ready.has_state());
  EXPECT_EQ(from_proto(ready).state, std::optional(rt::SandboxState::kReady));
  pb::PodSandboxFilter any;
  to_proto(rt::SandboxFilter{}, &any);
  EXPECT_FALSE(any.has_state());
  EXPECT_EQ(from_proto(any).state, std::nullopt);

  rt::ContainerFilter cf{"c-1", "sb-1", rt::ContainerState::kExited, {{"tier", "db"}}};
  pb::ContainerFilter cm;
  to_proto(cf, &cm);
  EXPECT_EQ(cm.id(), "c-1");
  EXPECT_EQ(cm.pod_sandbox_id(), "sb-1");
  EXPECT_EQ(cm.state().state(), pb::CONTAINER_EXITED);
  EXPECT_EQ(cm.label_selector().at("tier"), "db");
  EXPECT_EQ(unset_fields(cm), Strings{});
  EXPECT_EQ(from_proto(cm), cf);
  cf.state = rt::ContainerState::kCreated;  // the zero value
  pb::ContainerFilter created;
  to_proto(cf, &created);
  EXPECT_TRUE(created.has_state());
  EXPECT_EQ(from_proto(created), cf);
}

TEST(CriConvert, AuthConfigFieldsAndBack) {
  rt::AuthConfig a{"user", "pass", "dXNlcjpwYXNz", "127.0.0.1:5000", "idtok", "regtok"};
  pb::AuthConfig m;
  to_proto(a, &m);
  EXPECT_EQ(m.username(), "user");
  EXPECT_EQ(m.password(), "pass");
  EXPECT_EQ(m.auth(), "dXNlcjpwYXNz");
  EXPECT_EQ(m.server_address(), "127.0.0.1:5000");
  EXPECT_EQ(m.identity_token(), "idtok");
  EXPECT_EQ(m.registry_token(), "regtok");
  EXPECT_EQ(unset_fields(m), Strings{});
  EXPECT_EQ(from_proto(m), a);
}

// ---- answers ----

TEST(CriConvert, VersionAndStatusFromRuntime) {
  pb::VersionResponse v;
  v.set_version("0.1.0");
  v.set_runtime_name("containerd");
  v.set_runtime_version("v1.6.20");
  v.set_runtime_api_version("v1");
  const rt::VersionInfo info = from_proto(v);
  EXPECT_EQ(info.version, "0.1.0");
  EXPECT_EQ(info.runtime_name, "containerd");
  EXPECT_EQ(info.runtime_version, "v1.6.20");
  EXPECT_EQ(info.runtime_api_version, "v1");
  pb::VersionResponse back;
  to_proto(info, &back);
  EXPECT_TRUE(same(back, v));

  pb::RuntimeStatus s;
  auto* c = s.add_conditions();
  c->set_type("RuntimeReady");
  c->set_status(true);
  c = s.add_conditions();
  c->set_type("NetworkReady");
  c->set_status(false);
  c->set_reason("NetworkPluginNotReady");
  c->set_message("cni config uninitialized");
  const rt::RuntimeStatus st = from_proto(s);
  ASSERT_EQ(st.conditions.size(), 2u);
  EXPECT_EQ(st.conditions[1].type, "NetworkReady");
  EXPECT_FALSE(st.conditions[1].status);
  EXPECT_EQ(st.conditions[1].reason, "NetworkPluginNotReady");
  EXPECT_EQ(st.conditions[1].message, "cni config uninitialized");
  EXPECT_TRUE(st.condition("RuntimeReady"));
  EXPECT_FALSE(st.condition("NetworkReady"));
  pb::RuntimeStatus sback;
  to_proto(st, &sback);
  EXPECT_TRUE(same(sback, s));
}

TEST(CriConvert, PodSandboxAndStatusFromRuntime) {
  pb::PodSandbox p;
  p.set_id("sb-1");
  p.mutable_metadata()->set_name("web-0");
  p.mutable_metadata()->set_uid("uid");
  p.mutable_metadata()->set_namespace_("shop");
  p.mutable_metadata()->set_attempt(1);
  p.set_state(pb::SANDBOX_NOTREADY);
  p.set_created_at(1700000000123456789);
  (*p.mutable_labels())["app"] = "web";
  (*p.mutable_annotations())["a"] = "b";
  p.set_runtime_handler("runc");
  const rt::PodSandbox sb = from_proto(p);
  EXPECT_EQ(sb.id, "sb-1");
  EXPECT_EQ(sb.metadata, (rt::PodSandboxMetadata{"web-0", "uid", "shop", 1}));
  EXPECT_EQ(sb.state, rt::SandboxState::kNotReady);
  EXPECT_EQ(sb.created_at, 1700000000123456789);
  EXPECT_EQ(sb.labels.at("app"), "web");
  EXPECT_EQ(sb.annotations.at("a"), "b");
  EXPECT_EQ(sb.runtime_handler, "runc");
  pb::PodSandbox pback;
  to_proto(sb, &pback);
  EXPECT_TRUE(same(pback, p));
  EXPECT_EQ(unset_fields(p), Strings{});

  pb::PodSandboxStatus s;
  s.set_id("sb-1");
  *s.mutable_metadata() = p.metadata();
  s.set_state(pb::SANDBOX_NOTREADY);
  s.set_created_at(42);
  s.mutable_network()->set_ip("10.244.1.7");
  s.mutable_network()->add_additional_ips()->set_ip("fd00::7");
  auto* ns = s.mutable_linux()->mutable_namespaces()->mutable_options();
  ns->set_network(pb::NODE);
  ns->set_pid(pb::CONTAINER);
  ns->set_ipc(pb::TARGET);
  ns->set_target_id("t");
  (*s.mutable_labels())["app"] = "web";
  (*s.mutable_annotations())["a"] = "b";
  s.set_runtime_handler("runc");
  const rt::PodSandboxStatus st = from_proto(s);
  EXPECT_EQ(st.id, "sb-1");
  EXPECT_EQ(st.state, rt::SandboxState::kNotReady);
  EXPECT_EQ(st.created_at, 42);
  EXPECT_EQ(st.ip, "10.244.1.7");
  EXPECT_EQ(st.additional_ips, Strings{"fd00::7"});
  EXPECT_EQ(st.namespaces, (rt::NamespaceOptions{rt::NamespaceMode::kNode,
                                                 rt::NamespaceMode::kContainer,
                                                 rt::NamespaceMode::kTarget, "t"}));
  EXPECT_EQ(st.labels.at("app"), "web");
  EXPECT_EQ(st.runtime_handler, "runc");
  pb::PodSandboxStatus sback;
  to_proto(st, &sback);
  EXPECT_TRUE(same(sback, s));
  EXPECT_EQ(unset_fields(s), Strings{});
}

TEST(CriConvert, ContainerAndStatusFromRuntime) {
  pb::Container c;
  c.set_id("c-1");
  c.set_pod_sandbox_id("sb-1");
  c.mutable_metadata()->set_name("nginx");
  c.mutable_metadata()->set_attempt(4);
  c.mutable_image()->set_image("nginx:1.27");
  (*c.mutable_image()->mutable_annotations())["k"] = "v";
  c.set_image_ref("sha256:abc");
  c.set_state(pb::CONTAINER_RUNNING);
  c.set_created_at(7);
  (*c.mutable_labels())["l"] = "1";
  (*c.mutable_annotations())["a"] = "2";
  const rt::Container ct = from_proto(c);
  EXPECT_EQ(ct.id, "c-1");
  EXPECT_EQ(ct.pod_sandbox_id, "sb-1");
  EXPECT_EQ(ct.metadata, (rt::ContainerMetadata{"nginx", 4}));
  EXPECT_EQ(ct.image, (rt::ImageSpec{"nginx:1.27", {{"k", "v"}}}));
  EXPECT_EQ(ct.image_ref, "sha256:abc");
  EXPECT_EQ(ct.state, rt::ContainerState::kRunning);
  EXPECT_EQ(ct.created_at, 7);
  EXPECT_EQ(ct.labels.at("l"), "1");
  EXPECT_EQ(ct.annotations.at("a"), "2");
  pb::Container cback;
  to_proto(ct, &cback);
  EXPECT_TRUE(same(cback, c));
  // image_id is CRI's newer name for what knode reads from image_ref.
  EXPECT_EQ(unset_fields(cback), Strings{"image_id"});
  pb::Container only_id = c;
  only_id.clear_image_ref();
  only_id.set_image_id("sha256:def");
  EXPECT_EQ(from_proto(only_id).image_ref, "sha256:def");

  pb::ContainerStatus s;
  s.set_id("c-1");
  *s.mutable_metadata() = c.metadata();
  s.set_state(pb::CONTAINER_EXITED);
  s.set_created_at(1);
  s.set_started_at(2);
  s.set_finished_at(3);
  s.set_exit_code(137);
  *s.mutable_image() = c.image();
  s.set_image_ref("docker.io/library/nginx@sha256:abc");
  s.set_reason("OOMKilled");
  s.set_message("memory limit");
  (*s.mutable_labels())["l"] = "1";
  (*s.mutable_annotations())["a"] = "2";
  auto* m = s.add_mounts();
  m->set_container_path("/data");
  m->set_host_path("/mnt");
  m->set_readonly(true);
  m->set_selinux_relabel(true);
  m->set_propagation(pb::PROPAGATION_HOST_TO_CONTAINER);
  m->mutable_image()->set_image("sha256:vol");
  (*m->mutable_image()->mutable_annotations())["x"] = "y";
  m->set_image_sub_path("html");
  s.set_log_path("/var/log/pods/x/nginx/4.log");
  const rt::ContainerStatus st = from_proto(s);
  EXPECT_EQ(st.id, "c-1");
  EXPECT_EQ(st.state, rt::ContainerState::kExited);
  EXPECT_EQ(st.created_at, 1);
  EXPECT_EQ(st.started_at, 2);
  EXPECT_EQ(st.finished_at, 3);
  EXPECT_EQ(st.exit_code, 137);
  EXPECT_EQ(st.image.image, "nginx:1.27");
  EXPECT_EQ(st.image_ref, "docker.io/library/nginx@sha256:abc");
  EXPECT_EQ(st.reason, "OOMKilled");
  EXPECT_EQ(st.message, "memory limit");
  ASSERT_EQ(st.mounts.size(), 1u);
  EXPECT_EQ(st.mounts[0], (rt::Mount{"/data", "/mnt", true, true, rt::MountPropagation::kHostToContainer,
                                     {"sha256:vol", {{"x", "y"}}}, "html"}));
  EXPECT_EQ(st.log_path, "/var/log/pods/x/nginx/4.log");
  pb::ContainerStatus sback;
  to_proto(st, &sback);
  EXPECT_TRUE(same(sback, s));
  EXPECT_EQ(unset_fields(sback), Strings{"image_id"});
}

TEST(CriConvert, StreamingRequestsCarryEveryField) {
  const rt::ExecRequest er{"c-1", {"sh", "-c", "ls"}, true, true, true, true};
  pb::ExecRequest e;
  to_proto(er, &e);
  EXPECT_EQ(unset_fields(e), Strings{});
  EXPECT_EQ(from_proto(e), er);
  const rt::AttachRequest ar{"c-2", true, true, true, true};
  pb::AttachRequest a;
  to_proto(ar, &a);
  EXPECT_EQ(unset_fields(a), Strings{});
  EXPECT_EQ(from_proto(a), ar);
}

TEST(CriConvert, ExecStatsImagesAndFilesystemsFromRuntime) {
  pb::ExecSyncResponse e;
  e.set_stdout(std::string("ok\0\xff", 4));
  e.set_stderr("warn");
  e.set_exit_code(3);
  const rt::ExecResult er = from_proto(e);
  EXPECT_EQ(er.stdout_, std::string("ok\0\xff", 4));
  EXPECT_EQ(er.stderr_, "warn");
  EXPECT_EQ(er.exit_code, 3);
  pb::ExecSyncResponse eback;
  to_proto(er, &eback);
  EXPECT_TRUE(same(eback, e));

  pb::ContainerStats cs;
  cs.mutable_attributes()->set_id("c-1");
  cs.mutable_cpu()->set_timestamp(99);
  cs.mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(123456);
  cs.mutable_memory()->set_timestamp(99);
  cs.mutable_memory()->mutable_working_set_bytes()->set_value(4096);
  cs.mutable_writable_layer()->set_timestamp(99);
  cs.mutable_writable_layer()->mutable_used_bytes()->set_value(8192);
  const rt::ContainerStats st = from_proto(cs);
  EXPECT_EQ(st, (rt::ContainerStats{"c-1", 99, 123456, 4096, 8192}));
  pb::ContainerStats csback;
  to_proto(st, &csback);
  EXPECT_TRUE(same(csback, cs));
  EXPECT_EQ(unset_fields(csback),
            (Strings{"attributes.metadata", "attributes.labels", "attributes.annotations",
                     "writable_layer.fs_id", "writable_layer.inodes_used"}));
  // A runtime that reports memory only still dates the sample.
  pb::ContainerStats mem_only;
  mem_only.mutable_memory()->set_timestamp(5);
  EXPECT_EQ(from_proto(mem_only).timestamp, 5);

  pb::Image i;
  i.set_id("sha256:abc");
  i.add_repo_tags("127.0.0.1:5000/pause:3.10");
  i.add_repo_digests("127.0.0.1:5000/pause@sha256:abc");
  i.set_size(311296);
  i.set_pinned(true);
  const rt::Image im = from_proto(i);
  EXPECT_EQ(im.id, "sha256:abc");
  EXPECT_EQ(im.repo_tags, Strings{"127.0.0.1:5000/pause:3.10"});
  EXPECT_EQ(im.repo_digests, Strings{"127.0.0.1:5000/pause@sha256:abc"});
  EXPECT_EQ(im.size, 311296u);
  EXPECT_TRUE(im.pinned);
  pb::Image iback;
  to_proto(im, &iback);
  EXPECT_TRUE(same(iback, i));
  EXPECT_EQ(unset_fields(iback), Strings{});

  pb::FilesystemUsage f;
  f.mutable_fs_id()->set_mountpoint("/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs");
  f.mutable_used_bytes()->set_value(1 << 30);
  const rt::FilesystemUsage fu = from_proto(f);
  EXPECT_EQ(fu.mountpoint, "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs");
  EXPECT_EQ(fu.used_bytes, 1u << 30);
  EXPECT_EQ(fu.capacity_bytes, 0u);  // CRI does not say; the kubelet asks statfs
  pb::FilesystemUsage fback;
  to_proto(fu, &fback);
  EXPECT_TRUE(same(fback, f));
}

// ---- errors ----

TEST(CriConvert, GrpcCodesBecomeErrnoWithCallAndObject) {
  EXPECT_EQ(knode::cri::errno_for(grpc::StatusCode::NOT_FOUND), ENOENT);
  EXPECT_EQ(knode::cri::errno_for(grpc::StatusCode::DEADLINE_EXCEEDED), ETIMEDOUT);
  EXPECT_EQ(knode::cri::errno_for(grpc::StatusCode::UNAVAILABLE), ECONNREFUSED);
  EXPECT_EQ(knode::cri::errno_for(grpc::StatusCode::UNIMPLEMENTED), ENOTSUP);
  EXPECT_EQ(knode::cri::errno_for(grpc::StatusCode::INVALID_ARGUMENT), EIO);
  EXPECT_EQ(knode::cri::errno_for(grpc::StatusCode::UNKNOWN), EIO);
  EXPECT_EQ(knode::cri::errno_for(grpc::StatusCode::FAILED_PRECONDITION), EIO);

  auto s = knode::cri::from_grpc(
      grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "context deadline exceeded"),
      "StartContainer", "3f2a");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error_number(), ETIMEDOUT);
  EXPECT_EQ(s.message(), "CRI StartContainer 3f2a: DeadlineExceeded: context deadline exceeded");
  s = knode::cri::from_grpc(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"),
                            "Version", "");
  EXPECT_EQ(s.message(), "CRI Version: Unavailable: connection refused");
  EXPECT_TRUE(knode::cri::from_grpc(grpc::Status::OK, "Version", "").ok());
}

// ---- the seam's shared helpers (kubelet/runtime.cc) ----

TEST(RuntimeSeam, ContainerStateNamesAreCris) {
  for (auto s : {rt::ContainerState::kCreated, rt::ContainerState::kRunning,
                 rt::ContainerState::kExited, rt::ContainerState::kUnknown}) {
    EXPECT_EQ(rt::to_string(s), pb::ContainerState_Name(to_proto(s)));
  }
  EXPECT_STREQ(rt::to_string(rt::ContainerState::kRunning), "CONTAINER_RUNNING");
  EXPECT_STREQ(rt::to_string(rt::CgroupDriver::kCgroupfs), "cgroupfs");
  EXPECT_STREQ(rt::to_string(rt::CgroupDriver::kSystemd), "systemd");
}

TEST(RuntimeSeam, ConditionIsTrueOnlyWhenPresentAndAllTrue) {
  rt::RuntimeStatus s;
  EXPECT_FALSE(s.condition("RuntimeReady"));
  s.conditions = {{"RuntimeReady", true, "", ""}, {"NetworkReady", false, "NoCNI", "no config"}};
  EXPECT_TRUE(s.condition("RuntimeReady"));
  EXPECT_FALSE(s.condition("NetworkReady"));
  EXPECT_FALSE(s.condition("Other"));
  s.conditions.push_back({"RuntimeReady", false, "", ""});
  EXPECT_FALSE(s.condition("RuntimeReady"));
}
