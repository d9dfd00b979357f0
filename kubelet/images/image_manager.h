// The kubelet's image manager (upstream pkg/kubelet/images: EnsureImageExists with its
// pullers): whether a container's image is there or must be pulled, the pull itself with
// the pod's credentials, and the per pod and image back-off, with the waiting reasons and
// events a pod status shows. The decisions are image_policy.h's; this class sequences the
// runtime calls around them.
//
// It pulls container images only. The image a pod sandbox needs (the pause image) is not
// the kubelet's to pull: with CRI the runtime pulls it itself when RunPodSandbox needs it
// (containerd's sandbox_image / pinned_images.sandbox), and it is pinned there, so image
// garbage collection leaves it alone too.
//
// Thread-safe: pod workers call ensure_image from their own threads. Pulls are serialized
// by default, as upstream's serializeImagePulls: true, in the order they were asked for; a
// caller whose image is present, whose pull policy is Never or whose pull is backing off
// answers at once, without waiting behind someone else's pull.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "events.h"
#include "knode/api/pod.h"
#include "knode/clock.h"
#include "knode/runtime.h"
#include "pod/backoff.h"

namespace knode::kubelet {

// The waiting reason when asking the runtime whether the image is present fails.
inline constexpr char kImageInspectError[] = "ImageInspectError";

// Event reasons (upstream pkg/kubelet/events).
inline constexpr char kEventPullingImage[] = "Pulling";
inline constexpr char kEventPulledImage[] = "Pulled";
inline constexpr char kEventFailedToPullImage[] = "Failed";
inline constexpr char kEventFailedToInspectImage[] = "InspectFailed";
inline constexpr char kEventErrImageNeverPull[] = "ErrImageNeverPull";
inline constexpr char kEventBackOffPullImage[] = "BackOff";

// KubeletConfiguration's image pull fields, with upstream's defaults.
struct ImageManagerOptions {
  bool serialize_image_pulls = true;  // serializeImagePulls
  // maxParallelImagePulls when pulls are not serialized; 0: no limit (upstream's nil).
  int max_parallel_image_pulls = 0;
  // registryPullQPS and registryBurst: a token bucket over pull attempts; a pull beyond it
  // fails at once with "pull QPS exceeded" (and backs off). qps 0: no limit.
  double registry_pull_qps = 5;
  int registry_burst = 10;
};

struct EnsureResult {
  // The image to create the container from: the image ID the runtime reports, or what
  // the pull returned. Empty when the container must wait.
  std::string image_ref;
  // The container's waiting reason and message when it must wait (kErrImagePull,
  // kImagePullBackOff, kErrImageNeverPull, kInvalidImageName, kImageInspectError, ...).
  std::string reason, message;
  // For the container's events, in order ("Pulling", then "Pulled" or "Failed", ...).
  std::vector<KubeletEvent> events;
  bool ok() const { return reason.empty(); }
};

class ImageManager {
 public:
  ImageManager(runtime::ContainerRuntime& runtime, const Clock& clock,
               ImageManagerOptions options = {});

  // Makes sure the image of `container` is on the node, pulling it as its pull policy
  // says (an empty policy gets the API server's default). `pull_credentials` are the
  // pod's, already resolved from its imagePullSecrets (credentials_for in
  // image_policy.h): each is tried in order until one pulls; with none the pull is
  // anonymous. `sandbox` goes to the runtime with the pull (containerd picks the
  // snapshotter and platform from it); it may be null. Blocks while the pull runs or
  // waits its turn.
  EnsureResult ensure_image(const api::Pod& pod, const api::Container& container,
                            const std::vector<runtime::AuthConfig>& pull_credentials,
                            const runtime::PodSandboxConfig* sandbox = nullptr);

  // How many callers are waiting for their turn to pull (not counting running pulls).
  size_t waiting_pulls() const;

 private:
  struct Pulled {
    Result<std::string> ref = std::string();
    std::chrono::steady_clock::duration took{};  // the pull alone, not the wait for a turn
  };
  Pulled pull(const runtime::ImageSpec& spec, const std::vector<runtime::AuthConfig>& creds,
              const runtime::PodSandboxConfig* sandbox);
  // A FIFO semaphore of `limit_` slots (1 when serialized, none when limit_ is 0).
  void acquire_slot();
  void release_slot();
  bool take_token();

  runtime::ContainerRuntime& runtime_;
  const Clock& clock_;
  ImageManagerOptions options_;

  std::mutex mu_;  // back-off and token bucket
  Backoff backoff_;
  double tokens_;
  Clock::SteadyTime tokens_at_;

  mutable std::mutex slots_mu_;
  std::condition_variable slots_cv_;
  size_t limit_ = 0;
  uint64_t next_ticket_ = 0;  // tickets handed out
  uint64_t released_ = 0;     // pulls finished
  size_t waiting_ = 0;
};

// Go's time.Duration.String() of a duration truncated to milliseconds ("0s", "850ms",
// "1.5s", "2m3.004s"), as upstream's "Successfully pulled" message prints them.
std::string go_duration_ms(std::chrono::milliseconds d);

// k8s.io/apimachinery's aggregate error text: one unique message as it is, several as
// "[a, b]".
std::string aggregate_errors(const std::vector<std::string>& messages);

}  // namespace knode::kubelet
