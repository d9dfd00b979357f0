// Fuzzes what the CRI client reads from a container runtime (kubelet/cri): a reply's
// protobuf bytes parsed into its runtime.v1 message (ParseFromArray, as gRPC's
// deserializer does), then the conversion CriRuntime applies to it (cri::from_proto of
// VersionResponse, RuntimeStatus, the Linux cgroup driver, PodSandboxStatus, PodSandbox,
// Container, ContainerStatus, ExecSyncResponse, ContainerStats, Image,
// FilesystemUsage), and the conversion back (cri::to_proto, serialized), which fakes and
// tests rely on.
//
// Input: one byte picks the reply type (VersionResponse, StatusResponse,
// RuntimeConfigResponse, PodSandboxStatusResponse, ListPodSandboxResponse,
// ListContainersResponse, ContainerStatusResponse, ExecSyncResponse,
// ContainerStatsResponse, ImageStatusResponse, ListImagesResponse, ImageFsInfoResponse),
// the rest is the message. The conversions return values; nothing is caught here.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cri/convert.h"  // kubelet/ (private to knode_cri); kubelet/cri/api.pb.h from the build tree
#include "fuzz_util.h"

namespace {

namespace cri = knode::cri;
namespace pb = ::runtime::v1;

template <typename Msg>
bool parse(Msg* m, const uint8_t* data, size_t size) {
  return m->ParseFromArray(data, static_cast<int>(size));
}

// from_proto, then to_proto of the value into a fresh message, serialized.
template <typename Proto>
void both_ways(const Proto& in) {
  auto value = cri::from_proto(in);
  Proto out;
  cri::to_proto(value, &out);
  (void)out.SerializeAsString();
  (void)cri::from_proto(out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size - 1 > static_cast<size_t>(INT32_MAX)) return 0;
  const uint8_t which = data[0] % 12;
  const uint8_t* msg = data + 1;
  const size_t len = size - 1;
  switch (which) {
    case 0: {
      pb::VersionResponse r;
      if (parse(&r, msg, len)) both_ways(r);
      break;
    }
    case 1: {
      pb::StatusResponse r;
      if (parse(&r, msg, len)) both_ways(r.status());
      break;
    }
    case 2: {
      pb::RuntimeConfigResponse r;
      if (parse(&r, msg, len) && r.has_linux()) (void)cri::from_proto(r.linux().cgroup_driver());
      break;
    }
    case 3: {
      pb::PodSandboxStatusResponse r;
      if (parse(&r, msg, len)) both_ways(r.status());
      break;
    }
    case 4: {
      pb::ListPodSandboxResponse r;
      if (parse(&r, msg, len)) {
        for (const auto& item : r.items()) both_ways(item);
      }
      break;
    }
    case 5: {
      pb::ListContainersResponse r;
      if (parse(&r, msg, len)) {
        for (const auto& c : r.containers()) both_ways(c);
      }
      break;
    }
    case 6: {
      pb::ContainerStatusResponse r;
      if (parse(&r, msg, len) && r.has_status()) both_ways(r.status());
      break;
    }
    case 7: {
      pb::ExecSyncResponse r;
      if (parse(&r, msg, len)) both_ways(r);
      break;
    }
    case 8: {
      pb::ContainerStatsResponse r;
      if (parse(&r, msg, len) && r.has_stats()) both_ways(r.stats());
      break;
    }
    case 9: {
      pb::ImageStatusResponse r;
      if (parse(&r, msg, len) && r.has_image() && !r.image().id().empty()) both_ways(r.image());
      break;
    }
    case 10: {
      pb::ListImagesResponse r;
      if (parse(&r, msg, len)) {
        for (const auto& i : r.images()) both_ways(i);
      }
      break;
    }
    case 11: {
      pb::ImageFsInfoResponse r;
      if (parse(&r, msg, len)) {
        for (const auto& fs : r.image_filesystems()) both_ways(fs);
      }
      break;
    }
  }
  return 0;
}
