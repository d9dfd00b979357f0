#include "pod/static_pod.h"

#include <cctype>

#include "knode/api/codec.h"
#include "knode/api/object.h"
#include "knode/ascii.h"

namespace knode::kubelet {
namespace {

__extension__ using uint128 = unsigned __int128;

// FNV-1a, 128 bits: upstream moved static pod UIDs from MD5 to it.
class Fnv128a {
 public:
  void write(std::string_view bytes) {
    for (unsigned char b : bytes) {
      h_ ^= b;
      h_ *= kPrime;
    }
  }
  std::string hex() const {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out(32, '0');
    uint128 v = h_;
    for (int i = 31; i >= 0; --i, v >>= 4) out[i] = kDigits[static_cast<unsigned>(v & 15)];
    return out;
  }

 private:
  static constexpr uint128 kPrime = (uint128(1) << 88) + 0x13b;
  uint128 h_ = (uint128(0x6c62272e07bb0142ULL) << 64) | 0x62b821756295c58dULL;
};

bool same_toleration_target(const api::Toleration& a, const api::Toleration& b) {
  return a.key == b.key && a.effect == b.effect && a.operator_ == b.operator_ && a.value == b.value;
}

// AddOrUpdateTolerationInPod: replace a toleration of the same key, operator, value and
// effect, or append.
void add_or_update_toleration(std::vector<api::Toleration>& list, const api::Toleration& t) {
  for (auto& existing : list) {
    if (same_toleration_target(existing, t)) {
      existing = t;
      return;
    }
  }
  list.push_back(t);
}

}  // namespace

std::string fnv128a_hex(std::string_view bytes) {
  Fnv128a h;
  h.write(bytes);
  return h.hex();
}

bool is_static_pod(const api::Pod& pod) {
  auto it = pod.metadata.annotations.find(kConfigSourceAnnotation);
  return it != pod.metadata.annotations.end() && it->second != kApiserverSource;
}

bool is_mirror_pod(const api::Pod& pod) {
  return pod.metadata.annotations.count(kConfigMirrorAnnotation) != 0;
}

std::string static_pod_uid(const api::Pod& decoded, const std::string& node_name,
                           const std::string& manifest_path) {
  // Upstream hashes its in-memory pod; knode hashes the decoded pod's canonical JSON
  // (sorted keys, defaults applied), which changes exactly when the pod does.
  Fnv128a h;
  h.write(api::encode_json(api::Object(decoded)));
  h.write("host:" + node_name);
  h.write("file:" + manifest_path);
  return h.hex();
}

api::Pod make_static_pod(api::Pod pod, const std::string& node_name,
                         const std::string& manifest_path, const api::Time& first_seen) {
  auto& m = pod.metadata;
  if (m.uid.empty()) m.uid = static_pod_uid(pod, node_name, manifest_path);
  m.name += "-" + ascii_lower(node_name);
  if (m.namespace_.empty()) m.namespace_ = "default";
  pod.spec.node_name = node_name;
  m.annotations[kConfigHashAnnotation] = m.uid;
  m.annotations[kConfigSourceAnnotation] = kFileSource;
  m.annotations[kConfigSeenAnnotation] = first_seen.str();
  // A static pod has nowhere to be evicted to, so node problems must not evict it.
  api::Toleration t;
  t.operator_ = "Exists";
  t.effect = "NoExecute";
  add_or_update_toleration(pod.spec.tolerations, t);
  pod.status.phase = "Pending";
  return pod;
}

api::Pod make_mirror_pod(const api::Pod& static_pod, const std::string& node_name,
                         const std::string& node_uid) {
  api::Pod mirror = static_pod;
  auto hash = static_pod.metadata.annotations.find(kConfigHashAnnotation);
  mirror.metadata.annotations[kConfigMirrorAnnotation] =
      hash == static_pod.metadata.annotations.end() ? "" : hash->second;
  // The node restriction admission lets a kubelet create only pods its node owns.
  api::OwnerReference owner;
  owner.api_version = "v1";
  owner.kind = "Node";
  owner.name = node_name;
  owner.uid = node_uid;
  owner.controller = true;
  mirror.metadata.owner_references = {owner};
  return mirror;
}

}  // namespace knode::kubelet
