#include "images/image_manager.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "knode/log.h"
#include "pod/image_policy.h"

namespace knode::kubelet {

using namespace std::chrono_literals;

namespace {

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

runtime::ImageSpec image_spec(const std::string& image, const api::Pod& pod) {
  runtime::ImageSpec spec;
  spec.image = image;
  // Upstream hands the pod's annotations to the runtime with the image (CRI
  // ImageSpec.annotations), for runtimes that pick a variant by them.
  for (const auto& [k, v] : pod.metadata.annotations) spec.annotations[k] = v;
  return spec;
}

}  // namespace

std::string go_duration_ms(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string sign = ms < 0 ? "-" : "";
  ms = std::abs(ms);
  if (ms < 1000) return sign + std::to_string(ms) + "ms";
  int64_t h = ms / 3'600'000, m = ms / 60'000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
  std::string out = sign;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  out += std::to_string(s);
  if (frac > 0) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), ".%03lld", static_cast<long long>(frac));
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + "s";
}

std::string aggregate_errors(const std::vector<std::string>& messages) {
  std::vector<std::string> unique;
  std::set<std::string> seen;
  for (const auto& m : messages) {
    if (seen.insert(m).second) unique.push_back(m);
  }
  if (unique.size() == 1) return unique.front();
  std::string out;
  for (const auto& m : unique) out += (out.empty() ? "" : ", ") + m;
  return "[" + out + "]";
}

ImageManager::ImageManager(runtime::ContainerRuntime& runtime, const Clock& clock,
                           ImageManagerOptions options)
    : runtime_(runtime),
      clock_(clock),
      options_(options),
      backoff_(Backoff::image_pulls(clock)),
      tokens_(options.registry_burst),
      tokens_at_(clock.steady_now()) {
  if (options_.serialize_image_pulls) {
    limit_ = 1;
  } else if (options_.max_parallel_image_pulls > 0) {
    limit_ = static_cast<size_t>(options_.max_parallel_image_pulls);
  }
}

EnsureResult ImageManager::ensure_image(const api::Pod& pod, const api::Container& container,
                                        const std::vector<runtime::AuthConfig>& pull_credentials,
                                        const runtime::PodSandboxConfig* sandbox) {
  EnsureResult out;
  const std::string& requested = container.image;
  auto wait = [&](const PullDecision& d, const char* event_type, const char* event_reason) {
    out.reason = d.reason;
    out.message = d.message;
    out.events.push_back({event_type, event_reason, d.message});
    return out;
  };

  auto tagged = with_default_tag(requested);
  if (!tagged.ok()) {
    return wait(decide_pull(requested, kPullAlways, false, false), kEventWarning,
                kEventFailedToInspectImage);
  }
  runtime::ImageSpec spec = image_spec(*tagged, pod);

  auto status = runtime_.image_status(spec);
  if (!status.ok()) {
    PullDecision d{PullAction::kWait, kImageInspectError,
                   "Failed to inspect image " + quoted(requested) + ": " + status.error()};
    return wait(d, kEventWarning, kEventFailedToInspectImage);
  }
  const bool present = status->has_value();
  const std::string policy = container.image_pull_policy.empty() ? default_pull_policy(requested)
                                                                 : container.image_pull_policy;
  const std::string key = image_backoff_key(pod, requested);
  bool in_backoff;
  {
    std::lock_guard lock(mu_);
    in_backoff = backoff_.is_in_backoff_since_update(key, clock_.steady_now());
  }

  PullDecision d = decide_pull(requested, policy, present, in_backoff);
  if (d.action == PullAction::kUsePresent) {
    out.image_ref = (*status)->id;
    out.events.push_back({kEventNormal, kEventPulledImage,
                          "Container image " + quoted(requested) + " already present on machine"});
    return out;
  }
  if (d.action == PullAction::kWait) {
    bool never = d.reason == kErrImageNeverPull;
    return wait(d, never ? kEventWarning : kEventNormal,
                never ? kEventErrImageNeverPull : kEventBackOffPullImage);
  }

  out.events.push_back({kEventNormal, kEventPullingImage, "Pulling image " + quoted(requested)});
  const auto asked = clock_.steady_now();
  Pulled pulled = pull(spec, pull_credentials, sandbox);
  if (!pulled.ref.ok()) {
    out.events.push_back({kEventWarning, kEventFailedToPullImage,
                          "Failed to pull image " + quoted(requested) + ": " + pulled.ref.error()});
    {
      std::lock_guard lock(mu_);
      backoff_.next(key, clock_.steady_now());
    }
    PullDecision failed = pull_failed(requested, pulled.ref.error());
    out.reason = failed.reason;
    out.message = failed.message;
    return out;
  }

  // The size is best effort, as upstream's: a failed status leaves it 0.
  uint64_t size = 0;
  if (auto after = runtime_.image_status(spec); after.ok() && after->has_value()) {
    size = (*after)->size;
  }
  auto ms = [](std::chrono::steady_clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d);
  };
  out.events.push_back(
      {kEventNormal, kEventPulledImage,
       "Successfully pulled image " + quoted(requested) + " in " + go_duration_ms(ms(pulled.took)) +
           " (" + go_duration_ms(ms(clock_.steady_now() - asked)) +
           " including waiting). Image size: " + std::to_string(size) + " bytes."});
  {
    std::lock_guard lock(mu_);
    backoff_.gc();
  }
  out.image_ref = *pulled.ref;
  return out;
}

ImageManager::Pulled ImageManager::pull(const runtime::ImageSpec& spec,
                                        const std::vector<runtime::AuthConfig>& creds,
                                        const runtime::PodSandboxConfig* sandbox) {
  acquire_slot();
  struct Release {
    ImageManager* m;
    ~Release() { m->release_slot(); }
  } release{this};

  Pulled out;
  const auto start = clock_.steady_now();
  if (!take_token()) {
    out.ref = Status::Error("pull QPS exceeded");
    return out;
  }
  if (creds.empty()) {
    KLOGV(3, "Pulling image without credentials").kv("image", spec.image);
    out.ref = runtime_.pull_image(spec, std::nullopt, sandbox);
  } else {
    // Each credential in turn; upstream does not fall back to an anonymous pull once
    // the pod has credentials for the registry.
    std::vector<std::string> errors;
    for (const auto& auth : creds) {
      out.ref = runtime_.pull_image(spec, auth, sandbox);
      if (out.ref.ok()) break;
      errors.push_back(out.ref.error());
    }
    if (!out.ref.ok())
      out.ref = Status::Error(aggregate_errors(errors), out.ref.status().error_number());
  }
  out.took = clock_.steady_now() - start;
  return out;
}

bool ImageManager::take_token() {
  if (options_.registry_pull_qps <= 0) return true;
  std::lock_guard lock(mu_);
  const auto now = clock_.steady_now();
  const double elapsed = std::chrono::duration<double>(now - tokens_at_).count();
  tokens_ =
      std::min<double>(options_.registry_burst, tokens_ + elapsed * options_.registry_pull_qps);
  tokens_at_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void ImageManager::acquire_slot() {
  if (limit_ == 0) return;
  std::unique_lock lock(slots_mu_);
  const uint64_t ticket = next_ticket_++;
  ++waiting_;
  slots_cv_.wait(lock, [&] { return ticket < released_ + limit_; });
  --waiting_;
}

void ImageManager::release_slot() {
  if (limit_ == 0) return;
  {
    std::lock_guard lock(slots_mu_);
    ++released_;
  }
  slots_cv_.notify_all();
}

size_t ImageManager::waiting_pulls() const {
  std::lock_guard lock(slots_mu_);
  return waiting_;
}

}  // namespace knode::kubelet
