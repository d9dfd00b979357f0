// Images as the kubelet handles them before asking the runtime: the default pull policy,
// whether to pull, the waiting reasons and messages a container shows, and which
// credentials of the pod's imagePullSecrets go with an image (upstream's
// credentialprovider keyring).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "knode/api/cluster.h"
#include "knode/runtime.h"
#include "knode/status.h"

namespace knode::kubelet {

// Waiting reasons of a container whose image is not there.
inline constexpr char kErrImagePull[] = "ErrImagePull";
inline constexpr char kImagePullBackOff[] = "ImagePullBackOff";
inline constexpr char kErrImageNeverPull[] = "ErrImageNeverPull";
inline constexpr char kInvalidImageName[] = "InvalidImageName";
inline constexpr char kRegistryUnavailable[] = "RegistryUnavailable";
inline constexpr char kSignatureValidationFailed[] = "SignatureValidationFailed";

inline constexpr char kPullAlways[] = "Always";
inline constexpr char kPullIfNotPresent[] = "IfNotPresent";
inline constexpr char kPullNever[] = "Never";

// A reference normalized as Docker does: "busybox" is docker.io/library/busybox, and
// index.docker.io is docker.io.
struct ImageReference {
  std::string domain;  // "docker.io", "registry.local:5000"
  std::string path;    // "library/busybox"
  std::string tag;     // empty when none was written
  std::string digest;  // "sha256:<64 hex>", empty when none
  std::string name() const { return domain + "/" + path; }
};
Result<ImageReference> parse_image_reference(std::string_view image);

// The policy the API server gives a container without one: Always for ":latest" or an
// untagged, undigested image, IfNotPresent otherwise.
std::string default_pull_policy(std::string_view image);

// The reference handed to the runtime: ":latest" appended when neither tag nor digest is
// written; the name is not otherwise rewritten.
Result<std::string> with_default_tag(std::string_view image);

enum class PullAction {
  kUsePresent,  // run the image the node has
  kPull,        // ask the runtime to pull
  kWait,        // do not start the container: `reason` and `message` say why
};
struct PullDecision {
  PullAction action = PullAction::kPull;
  std::string reason, message;
};
// What EnsureImageExists does before pulling. `in_backoff` is the image back-off's answer
// for this pod and image.
PullDecision decide_pull(const std::string& image, const std::string& policy, bool present,
                         bool in_backoff);

// The waiting reason and message after the runtime failed a pull with `error`.
PullDecision pull_failed(const std::string& image, const std::string& error);

// The credentials to try, in order, for pulling `image` with the pod's pull secrets
// (kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg). Empty when none matches.
// A secret whose config is not JSON is an error, as upstream fails the pull then.
Result<std::vector<runtime::AuthConfig>> credentials_for(
    std::string_view image, const std::vector<const api::Secret*>& pull_secrets);

}  // namespace knode::kubelet
