#include "node_environment.h"

#include <cerrno>

#include "knode/log.h"
#include "pod/image_policy.h"

namespace knode::kubelet {

NodeEnvironment::NodeEnvironment(runtime::ContainerRuntime& rt, ObjectCache& cache, const Clock& clock)
    : rt_(rt), cache_(cache), clock_(clock), pulls_(Backoff::image_pulls(clock)) {}

PodEnvironment::Image NodeEnvironment::ensure_image(const api::Pod& pod, const api::Container& c,
                                                    const EnvLookup& lookup) {
  Image out;
  auto ref = with_default_tag(c.image);
  if (!ref.ok()) {
    out.waiting = StartFailure{kInvalidImageName, "Failed to apply default image tag \"" + c.image + "\": " + ref.error()};
    return out;
  }
  const std::string policy = c.image_pull_policy.empty() ? default_pull_policy(c.image) : c.image_pull_policy;
  auto present = rt_.image_status({*ref, {}});
  if (!present.ok()) {
    out.waiting = StartFailure{kErrImagePull, present.error()};
    return out;
  }
  const std::string key = image_backoff_key(pod, *ref);
  bool in_backoff;
  {
    std::lock_guard lock(mu_);
    in_backoff = pulls_.is_in_backoff_since_update(key, clock_.steady_now());
  }
  PullDecision d = decide_pull(*ref, policy, present->has_value(), in_backoff);
  if (d.action == PullAction::kUsePresent) {
    out.ref = *ref;
    return out;
  }
  if (d.action == PullAction::kWait) {
    out.waiting = StartFailure{d.reason, d.message};
    return out;
  }
  std::vector<const api::Secret*> secrets;
  for (const auto& s : pod.spec.image_pull_secrets) {
    if (const auto* secret = lookup.secret(pod.metadata.namespace_, s.name)) secrets.push_back(secret);
  }
  auto creds = credentials_for(*ref, secrets);
  if (!creds.ok()) {
    out.waiting = StartFailure{kErrImagePull, creds.error()};
    return out;
  }
  Status last;
  std::vector<std::optional<runtime::AuthConfig>> tries(creds->begin(), creds->end());
  tries.push_back(std::nullopt);  // then anonymous, as upstream
  for (const auto& auth : tries) {
    auto pulled = rt_.pull_image({*ref, {}}, auth, nullptr);
    if (pulled.ok()) {
      std::lock_guard lock(mu_);
      pulls_.reset(key);
      KLOG(INFO, "image pulled").kv("image", *ref);
      out.ref = *ref;
      return out;
    }
    last = pulled.status();
  }
  {
    std::lock_guard lock(mu_);
    pulls_.next(key, clock_.steady_now());
  }
  PullDecision failed = pull_failed(*ref, last.message());
  out.waiting = StartFailure{failed.reason, failed.message};
  return out;
}

Status NodeEnvironment::setup_volumes(const api::Pod& pod, const EnvLookup&) {
  if (pod.spec.volumes.empty()) return Status::Ok();
  return Status::Error("pod " + pod.metadata.namespace_ + "/" + pod.metadata.name + ": spec.volumes: not supported yet",
                       ENOTSUP);
}

Result<std::vector<runtime::Mount>> NodeEnvironment::mounts(const api::Pod& pod, const api::Container& c,
                                                            const std::vector<runtime::KeyValue>&) {
  if (c.volume_mounts.empty()) return std::vector<runtime::Mount>{};
  return Status::Error("pod " + pod.metadata.namespace_ + "/" + pod.metadata.name + ": container " + c.name +
                           ": volumeMounts: not supported yet",
                       ENOTSUP);
}

Status NodeEnvironment::teardown_volumes(const std::string&) { return Status::Ok(); }

Status NodeEnvironment::run_hook(const api::LifecycleHandler& h, const api::Pod&, const api::Container&,
                                 const std::string& container_id, const std::string&, std::chrono::seconds budget) {
  if (h.exec) {
    auto r = rt_.exec_sync(container_id, h.exec->command, budget.count());
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) {
      return Status::Error("command exited with " + std::to_string(r->exit_code) + ": " + r->stdout_ + r->stderr_, EIO);
    }
    return Status::Ok();
  }
  return Status::Error("only exec hooks are supported yet", ENOTSUP);
}

}  // namespace knode::kubelet
