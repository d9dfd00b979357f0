// Conversion between runtime.h's plain values and CRI runtime.v1 messages, both ways: the
// client sends requests and reads answers; tests and fakes do the reverse. Pure functions.
#pragma once

#include <grpcpp/support/status.h>

#include <string_view>

#include "knode/runtime.h"
#include "knode/status.h"
#include "kubelet/cri/api.pb.h"

namespace knode::cri {

namespace pb = ::runtime::v1;

// ---- enums ----
pb::Protocol to_proto(runtime::Protocol p);
runtime::Protocol from_proto(pb::Protocol p);
pb::NamespaceMode to_proto(runtime::NamespaceMode m);
runtime::NamespaceMode from_proto(pb::NamespaceMode m);
pb::MountPropagation to_proto(runtime::MountPropagation p);
runtime::MountPropagation from_proto(pb::MountPropagation p);
pb::PodSandboxState to_proto(runtime::SandboxState s);
runtime::SandboxState from_proto(pb::PodSandboxState s);
pb::ContainerState to_proto(runtime::ContainerState s);
runtime::ContainerState from_proto(pb::ContainerState s);  // unknown values: kUnknown
pb::CgroupDriver to_proto(runtime::CgroupDriver d);
runtime::CgroupDriver from_proto(pb::CgroupDriver d);

// ---- what the kubelet sends ----
void to_proto(const runtime::NamespaceOptions& in, pb::NamespaceOption* out);
runtime::NamespaceOptions from_proto(const pb::NamespaceOption& in);
void to_proto(const runtime::SecurityProfile& in, pb::SecurityProfile* out);
runtime::SecurityProfile from_proto(const pb::SecurityProfile& in);
void to_proto(const runtime::LinuxResources& in, pb::LinuxContainerResources* out);
runtime::LinuxResources from_proto(const pb::LinuxContainerResources& in);
void to_proto(const runtime::ImageSpec& in, pb::ImageSpec* out);
runtime::ImageSpec from_proto(const pb::ImageSpec& in);
void to_proto(const runtime::AuthConfig& in, pb::AuthConfig* out);
runtime::AuthConfig from_proto(const pb::AuthConfig& in);
void to_proto(const runtime::PodSandboxMetadata& in, pb::PodSandboxMetadata* out);
runtime::PodSandboxMetadata from_proto(const pb::PodSandboxMetadata& in);
void to_proto(const runtime::PortMapping& in, pb::PortMapping* out);
runtime::PortMapping from_proto(const pb::PortMapping& in);
void to_proto(const runtime::DnsConfig& in, pb::DNSConfig* out);
runtime::DnsConfig from_proto(const pb::DNSConfig& in);
void to_proto(const runtime::PodSandboxConfig& in, pb::PodSandboxConfig* out);
runtime::PodSandboxConfig from_proto(const pb::PodSandboxConfig& in);
void to_proto(const runtime::SandboxFilter& in, pb::PodSandboxFilter* out);
runtime::SandboxFilter from_proto(const pb::PodSandboxFilter& in);
void to_proto(const runtime::Mount& in, pb::Mount* out);
runtime::Mount from_proto(const pb::Mount& in);
void to_proto(const runtime::ContainerMetadata& in, pb::ContainerMetadata* out);
runtime::ContainerMetadata from_proto(const pb::ContainerMetadata& in);
void to_proto(const runtime::ContainerSecurity& in, pb::LinuxContainerSecurityContext* out);
runtime::ContainerSecurity from_proto(const pb::LinuxContainerSecurityContext& in);
void to_proto(const runtime::ContainerConfig& in, pb::ContainerConfig* out);
runtime::ContainerConfig from_proto(const pb::ContainerConfig& in);
void to_proto(const runtime::ContainerFilter& in, pb::ContainerFilter* out);
runtime::ContainerFilter from_proto(const pb::ContainerFilter& in);
void to_proto(const runtime::ExecRequest& in, pb::ExecRequest* out);
runtime::ExecRequest from_proto(const pb::ExecRequest& in);
void to_proto(const runtime::AttachRequest& in, pb::AttachRequest* out);
runtime::AttachRequest from_proto(const pb::AttachRequest& in);

// ---- what the runtime answers ----
void to_proto(const runtime::VersionInfo& in, pb::VersionResponse* out);
runtime::VersionInfo from_proto(const pb::VersionResponse& in);
void to_proto(const runtime::RuntimeStatus& in, pb::RuntimeStatus* out);
runtime::RuntimeStatus from_proto(const pb::RuntimeStatus& in);
void to_proto(const runtime::PodSandbox& in, pb::PodSandbox* out);
runtime::PodSandbox from_proto(const pb::PodSandbox& in);
void to_proto(const runtime::PodSandboxStatus& in, pb::PodSandboxStatus* out);
runtime::PodSandboxStatus from_proto(const pb::PodSandboxStatus& in);
void to_proto(const runtime::Container& in, pb::Container* out);
runtime::Container from_proto(const pb::Container& in);
void to_proto(const runtime::ContainerStatus& in, pb::ContainerStatus* out);
runtime::ContainerStatus from_proto(const pb::ContainerStatus& in);
void to_proto(const runtime::ExecResult& in, pb::ExecSyncResponse* out);
runtime::ExecResult from_proto(const pb::ExecSyncResponse& in);
void to_proto(const runtime::ContainerStats& in, pb::ContainerStats* out);
runtime::ContainerStats from_proto(const pb::ContainerStats& in);
void to_proto(const runtime::Image& in, pb::Image* out);
runtime::Image from_proto(const pb::Image& in);
// CRI carries no capacity: it stays 0 ("unknown") on the way back.
void to_proto(const runtime::FilesystemUsage& in, pb::FilesystemUsage* out);
runtime::FilesystemUsage from_proto(const pb::FilesystemUsage& in);

// ---- errors ----
// The errno-style code runtime.h promises for a gRPC status code: NOT_FOUND -> ENOENT,
// DEADLINE_EXCEEDED -> ETIMEDOUT, UNAVAILABLE -> ECONNREFUSED, UNIMPLEMENTED -> ENOTSUP,
// anything else -> EIO.
int errno_for(grpc::StatusCode code);
// gRPC's name for a code, as Go prints it: "DeadlineExceeded", "NotFound".
const char* code_name(grpc::StatusCode code);
// "CRI <call> <object>: <Code>: <message>" with errno_for(code); Ok for an OK status.
Status from_grpc(const grpc::Status& s, std::string_view call, std::string_view object);

}  // namespace knode::cri
