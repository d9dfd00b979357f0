// A PodEnvironment for tests of the pod worker and the kubelet against the fake runtime:
// no ConfigMaps, Secrets or Services to look up, images present unless a test says
// otherwise, hooks that always succeed.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "pod/image_policy.h"
#include "pod_worker.h"

namespace knode::kubelet {

class NoLookup final : public EnvLookup {
 public:
  const api::ConfigMap* config_map(const std::string&, const std::string&) const override { return nullptr; }
  const api::Secret* secret(const std::string&, const std::string&) const override { return nullptr; }
  std::vector<const api::Service*> services(const std::string&) const override { return {}; }
  api::ResourceList node_allocatable() const override { return {}; }
  std::vector<std::string> host_ips() const override { return {"192.168.1.10"}; }
};

// Images are present (those in `unpullable` cannot be pulled; those in `pulled_as` are
// what their pull returns), the mounts are `mounts_to_return`, hooks always succeed.
class FakeEnvironment final : public PodEnvironment {
 public:
  std::shared_ptr<const EnvLookup> lookup() override { return std::make_shared<NoLookup>(); }
  Image ensure_image(const api::Pod&, const api::Container& c, const EnvLookup&,
                     const runtime::PodSandboxConfig&) override {
    ensured.push_back(c.image + " " + c.image_pull_policy);
    if (unpullable.count(c.image)) return Image{"", StartFailure{kErrImagePull, "cannot pull " + c.image}};
    auto it = pulled_as.find(c.image);
    return Image{it == pulled_as.end() ? c.image : it->second, std::nullopt};
  }
  Status setup_volumes(const api::Pod&, const EnvLookup&) override { return Status::Ok(); }
  Result<std::vector<runtime::Mount>> mounts(const api::Pod&, const api::Container&,
                                             const std::vector<runtime::KeyValue>&) override {
    return mounts_to_return;
  }
  std::vector<runtime::Mount> mounts_to_return;
  std::map<std::string, std::string> pulled_as;
  std::set<std::string> unpullable;
  std::vector<std::string> ensured;  // "image policy" per ensure_image call
  Status teardown_volumes(const std::string& uid) override {
    torn_down.push_back(uid);
    return Status::Ok();
  }
  Status prepare_logs(const api::Pod&, const api::Container&) override { return Status::Ok(); }
  void container_started(const api::Pod&, const api::Container&, const std::string& id,
                         const std::string& log_path) override {
    started_logs.emplace_back(id, log_path);
  }
  std::vector<std::pair<std::string, std::string>> started_logs;  // (container id, log path)
  Status run_hook(const api::LifecycleHandler&, const api::Pod&, const api::Container&, const std::string&,
                  const std::string&, std::chrono::seconds) override {
    ++hooks;
    return Status::Ok();
  }
  std::vector<std::string> torn_down;
  int hooks = 0;
};

}  // namespace knode::kubelet
