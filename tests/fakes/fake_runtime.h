// An in-memory container runtime for the kubelet's unit tests. Sandboxes and containers
// get IDs and move through CRI's states as a runtime would move them; what a real runtime
// does on its own (a container exiting) the test does with exit_container(). Errors look
// like CriRuntime's ("CRI StartContainer ctr-1: NotFound: ...") and carry the same
// errno-style codes, so code under test cannot tell the two apart.
//
//   FakeRuntime rt(clock);
//   rt.add_image("127.0.0.1:5000/pause:3.10", /*present=*/true);
//   rt.add_image("nginx:1.27");                    // pullable
//   rt.fail_next("StartContainer", Status::Error("boom", EIO));
//   rt.script_exec("", {"cat", "/tmp/healthy"}, ExecResult{"", "", 1});
//   ... run the code under test ...
//   rt.exit_container(id, 1, "Error");
//   EXPECT_EQ(rt.methods(), (std::vector<std::string>{"RunPodSandbox", ...}));
//
// For code that runs on several threads: hold_pulls() keeps pulls of an image in
// flight until release_pulls(), and wait_for_calls() waits until the code under test has
// made a call, so a test sees "a pull is running" without sleeping.
//
// Thread-safe: the kubelet calls its runtime from worker threads.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "knode/clock.h"
#include "knode/runtime.h"

namespace knode::testing {

class FakeRuntime final : public runtime::ContainerRuntime {
 public:
  // A call the code under test made: the CRI method and its subject (an ID, an image,
  // "namespace/name" for a new sandbox, "<sandbox>/<name>" for a new container, a list
  // call's label selector "k=v,...").
  struct Call {
    std::string method, object;
    bool operator==(const Call&) const = default;
    friend std::ostream& operator<<(std::ostream& os, const Call& c) {
      return os << c.method << "(" << c.object << ")";
    }
  };

  explicit FakeRuntime(const Clock& clock = RealClock::instance()) : clock_(clock) {}

  // ---- what the test scripts ----

  // An image the "registry" has; present images are already on the node.
  void add_image(const std::string& ref, bool present = false, uint64_t size = 1024) {
    std::lock_guard lock(mu_);
    Img& img = images_[ref];
    if (img.id.empty()) img.id = "sha256:fake" + std::to_string(images_.size());
    img.size = size;
    img.present = present;
  }
  // Whether the runtime pins the image (CRI Image.pinned: never garbage collected), as
  // containerd pins its sandbox image.
  void set_image_pinned(const std::string& ref, bool pinned) {
    std::lock_guard lock(mu_);
    images_.at(ref).pinned = pinned;
  }
  // The image ID the runtime reports for `ref` ("sha256:fake<n>").
  std::string image_id(const std::string& ref) const {
    std::lock_guard lock(mu_);
    return images_.at(ref).id;
  }
  // Pulls of `ref` start (the call is logged) but do not finish until release_pulls(ref).
  void hold_pulls(const std::string& ref) {
    std::lock_guard lock(mu_);
    held_pulls_.insert(ref);
  }
  void release_pulls(const std::string& ref) {
    {
      std::lock_guard lock(mu_);
      held_pulls_.erase(ref);
    }
    cv_.notify_all();
  }
  // Waits until `method` has been called at least `n` times; false after `timeout` (a
  // test failing, not a test sleeping: the calls are expected).
  bool wait_for_calls(const std::string& method, int n,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return std::count_if(calls_.begin(), calls_.end(),
                           [&](const Call& c) { return c.method == method; }) >= n;
    });
  }
  // Called after a successful reopen_container_log with the container's ID and log path,
  // where a real runtime would create the log file anew. Runs without the fake's lock.
  void on_reopen_log(std::function<void(const std::string& id, const std::string& log_path)> fn) {
    std::lock_guard lock(mu_);
    on_reopen_ = std::move(fn);
  }
  // The runtime lost track of the container's process (CONTAINER_UNKNOWN), as after a
  // shim crash; stopping it makes it exited.
  void set_container_unknown(const std::string& id) {
    std::lock_guard lock(mu_);
    containers_.at(id).status.state = runtime::ContainerState::kUnknown;
  }
  // Every pull of `ref` fails with `error` (Status::Ok() clears it), e.g. EACCES for
  // missing credentials or ETIMEDOUT for a slow registry.
  void set_pull_error(const std::string& ref, Status error) {
    std::lock_guard lock(mu_);
    if (error.ok()) {
      pull_errors_.erase(ref);
    } else {
      pull_errors_[ref] = std::move(error);
    }
  }
  // The next call of `method` (a CRI method name, e.g. "StartContainer") fails with
  // `error` without doing anything. Several queue up, one per call.
  void fail_next(const std::string& method, Status error) {
    if (!known_method(method)) throw std::invalid_argument("FakeRuntime: no method " + method);
    std::lock_guard lock(mu_);
    fail_next_[method].push_back(std::move(error));
  }
  // What exec_sync of `cmd` answers in container `container_id` ("" for any container),
  // until scripted again. Unscripted commands fail, as a missing executable does.
  void script_exec(const std::string& container_id, const std::vector<std::string>& cmd,
                   Result<runtime::ExecResult> result) {
    std::lock_guard lock(mu_);
    exec_scripts_.insert_or_assign({container_id, cmd}, std::move(result));
  }
  // The container's process ends: a running container becomes exited.
  void exit_container(const std::string& id, int32_t exit_code, const std::string& reason = "",
                      const std::string& message = "") {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) throw std::invalid_argument("FakeRuntime: no container " + id);
    if (it->second.status.state != runtime::ContainerState::kRunning) {
      throw std::invalid_argument("FakeRuntime: container " + id + " is not running");
    }
    const std::string why = reason.empty() ? (exit_code == 0 ? "Completed" : "Error") : reason;
    finish(it->second, exit_code, why, message);
  }
  // The next container named `name` to start exits at once with `exit_code`, before
  // anyone can read it back running (a quick init container, a crash at start).
  void exit_on_start(const std::string& name, int32_t exit_code) {
    std::lock_guard lock(mu_);
    exit_on_start_[name] = exit_code;
  }
  // The streaming server's base URL: exec, attach and port_forward answer
  // "<base>/exec/<n>" (and /attach/, /portforward/) for running containers and ready
  // sandboxes. Unset, they answer ENOTSUP, as a runtime without a streaming server.
  void set_streaming_url(std::string base) {
    std::lock_guard lock(mu_);
    streaming_url_ = std::move(base);
  }
  // The requests exec and attach were given, in order.
  std::vector<runtime::ExecRequest> exec_requests() const {
    std::lock_guard lock(mu_);
    return exec_requests_;
  }
  std::vector<runtime::AttachRequest> attach_requests() const {
    std::lock_guard lock(mu_);
    return attach_requests_;
  }
  std::vector<std::pair<std::string, std::vector<int32_t>>> port_forward_requests() const {
    std::lock_guard lock(mu_);
    return port_forward_requests_;
  }
  void set_version(runtime::VersionInfo v) {
    std::lock_guard lock(mu_);
    version_ = std::move(v);
  }
  void set_status(runtime::RuntimeStatus s) {
    std::lock_guard lock(mu_);
    status_ = std::move(s);
  }
  void set_cgroup_driver(Result<runtime::CgroupDriver> d) {
    std::lock_guard lock(mu_);
    cgroup_driver_ = std::move(d);
  }
  void set_stats(const std::string& id, runtime::ContainerStats s) {
    std::lock_guard lock(mu_);
    stats_[id] = std::move(s);
  }
  void set_image_fs(std::vector<runtime::FilesystemUsage> fs) {
    std::lock_guard lock(mu_);
    image_fs_ = std::move(fs);
  }
  // The exit code a container stopped by stop_container or stop_pod_sandbox reports
  // (137 by default: killed).
  void set_stop_exit_code(int32_t code) {
    std::lock_guard lock(mu_);
    stop_exit_code_ = code;
  }

  // ---- what the test inspects ----

  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::vector<std::string> methods() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& c : calls_) out.push_back(c.method);
    return out;
  }
  int count(const std::string& method) const {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count_if(calls_.begin(), calls_.end(),
                                          [&](const Call& c) { return c.method == method; }));
  }
  void clear_calls() {
    std::lock_guard lock(mu_);
    calls_.clear();
  }
  std::optional<runtime::PodSandboxConfig> sandbox_config(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return std::nullopt;
    return it->second.config;
  }
  std::optional<runtime::ContainerConfig> container_config(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return std::nullopt;
    return it->second.config;
  }
  bool image_present(const std::string& ref) const {
    std::lock_guard lock(mu_);
    auto it = images_.find(ref);
    return it != images_.end() && it->second.present;
  }

  // ---- runtime::ContainerRuntime ----

  std::string id_scheme() const override {
    std::lock_guard lock(mu_);
    return version_.runtime_name;
  }

  Result<runtime::VersionInfo> version() override {
    std::lock_guard lock(mu_);
    if (auto e = begin("Version", "")) return *e;
    return version_;
  }
  Result<runtime::RuntimeStatus> status() override {
    std::lock_guard lock(mu_);
    if (auto e = begin("Status", "")) return *e;
    return status_;
  }
  Result<runtime::CgroupDriver> cgroup_driver() override {
    std::lock_guard lock(mu_);
    if (auto e = begin("RuntimeConfig", "")) return *e;
    return cgroup_driver_;
  }

  Result<std::string> run_pod_sandbox(const runtime::PodSandboxConfig& config) override {
    std::lock_guard lock(mu_);
    const std::string object = config.metadata.ns + "/" + config.metadata.name;
    if (auto e = begin("RunPodSandbox", object)) return *e;
    for (const auto& [id, sb] : sandboxes_) {
      if (sb.config.metadata == config.metadata) {
        return error("RunPodSandbox", object, "Unknown",
                     "name " + object + " attempt " + std::to_string(config.metadata.attempt) +
                         " is reserved for " + id,
                     EIO);
      }
    }
    const std::string id = "sb-" + std::to_string(++next_id_);
    Sandbox& sb = sandboxes_[id];
    sb.config = config;
    sb.status.id = id;
    sb.status.metadata = config.metadata;
    sb.status.state = runtime::SandboxState::kReady;
    sb.status.created_at = now();
    if (config.namespaces.network != runtime::NamespaceMode::kNode) {
      sb.status.ip = "10.88.0." + std::to_string(++next_ip_);
    }
    sb.status.namespaces = config.namespaces;
    sb.status.labels = config.labels;
    sb.status.annotations = config.annotations;
    return id;
  }

  Status stop_pod_sandbox(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("StopPodSandbox", id)) return *e;
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return not_found("StopPodSandbox", id, "sandbox");
    for (auto& [cid, c] : containers_) {
      if (c.sandbox_id == id && c.status.state == runtime::ContainerState::kRunning) {
        finish(c, stop_exit_code_, "Error", "");
      }
    }
    it->second.status.state = runtime::SandboxState::kNotReady;
    return Status::Ok();
  }

  Status remove_pod_sandbox(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("RemovePodSandbox", id)) return *e;
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return Status::Ok();  // CRI: already gone is fine
    if (it->second.status.state == runtime::SandboxState::kReady) {
      return error("RemovePodSandbox", id, "Unknown", "sandbox is still running; stop it first",
                   EIO);
    }
    std::erase_if(containers_, [&](const auto& kv) { return kv.second.sandbox_id == id; });
    sandboxes_.erase(it);
    return Status::Ok();
  }

  Result<runtime::PodSandboxStatus> pod_sandbox_status(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("PodSandboxStatus", id)) return *e;
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return not_found("PodSandboxStatus", id, "sandbox");
    return it->second.status;
  }

  Result<std::vector<runtime::PodSandbox>> list_pod_sandboxes(
      const runtime::SandboxFilter& filter = {}) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("ListPodSandbox", selector_text(filter.label_selector))) return *e;
    std::vector<runtime::PodSandbox> out;
    for (const auto& [id, sb] : sandboxes_) {
      const auto& s = sb.status;
      if (!filter.id.empty() && filter.id != id) continue;
      if (filter.state && *filter.state != s.state) continue;
      if (!matches(s.labels, filter.label_selector)) continue;
      out.push_back({id, s.metadata, s.state, s.created_at, s.labels, s.annotations, ""});
    }
    return out;
  }

  Result<std::string> create_container(const std::string& pod_sandbox_id,
                                       const runtime::ContainerConfig& config,
                                       const runtime::PodSandboxConfig& sandbox_config) override {
    std::lock_guard lock(mu_);
    const std::string object = pod_sandbox_id + "/" + config.metadata.name;
    if (auto e = begin("CreateContainer", object)) return *e;
    auto sb = sandboxes_.find(pod_sandbox_id);
    if (sb == sandboxes_.end()) return not_found("CreateContainer", object, "sandbox");
    if (sb->second.status.state != runtime::SandboxState::kReady) {
      return error("CreateContainer", object, "Unknown", "sandbox is not ready", EIO);
    }
    auto img = find_image(config.image.image);
    if (img == images_.end() || !img->second.present) {
      return error("CreateContainer", object, "NotFound",
                   "failed to get image \"" + config.image.image + "\": not found", ENOENT);
    }
    for (const auto& [id, c] : containers_) {
      if (c.sandbox_id == pod_sandbox_id && c.config.metadata == config.metadata) {
        return error("CreateContainer", object, "Unknown",
                     "name " + config.metadata.name + " attempt " +
                         std::to_string(config.metadata.attempt) + " is reserved for " + id,
                     EIO);
      }
    }
    const std::string id = "ctr-" + std::to_string(++next_id_);
    Ctr& c = containers_[id];
    c.sandbox_id = pod_sandbox_id;
    c.config = config;
    c.sandbox_config = sandbox_config;
    c.status.id = id;
    c.status.metadata = config.metadata;
    c.status.state = runtime::ContainerState::kCreated;
    c.status.created_at = now();
    c.status.image = config.image;
    c.status.image_ref = img->second.id;
    c.status.labels = config.labels;
    c.status.annotations = config.annotations;
    c.status.mounts = config.mounts;
    if (!sb->second.config.log_directory.empty() && !config.log_path.empty()) {
      c.status.log_path = sb->second.config.log_directory + "/" + config.log_path;
    }
    return id;
  }

  Status start_container(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("StartContainer", id)) return *e;
    auto it = containers_.find(id);
    if (it == containers_.end()) return not_found("StartContainer", id, "container");
    auto& s = it->second.status;
    if (s.state != runtime::ContainerState::kCreated) {
      return error("StartContainer", id, "Unknown",
                   std::string("container is in ") + runtime::to_string(s.state) + " state", EIO);
    }
    s.state = runtime::ContainerState::kRunning;
    s.started_at = now();
    if (auto quick = exit_on_start_.find(s.metadata.name); quick != exit_on_start_.end()) {
      finish(it->second, quick->second, quick->second == 0 ? "Completed" : "Error", "");
      exit_on_start_.erase(quick);
    }
    return Status::Ok();
  }

  // The container's config then shows the new resources (container_config(id)).
  Status update_container_resources(const std::string& id, const runtime::LinuxResources& resources) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("UpdateContainerResources", id)) return *e;
    auto it = containers_.find(id);
    if (it == containers_.end()) return not_found("UpdateContainerResources", id, "container");
    if (it->second.status.state != runtime::ContainerState::kRunning) {
      return error("UpdateContainerResources", id, "Unknown", "container is not running", EIO);
    }
    it->second.config.resources = resources;
    return Status::Ok();
  }

  Status stop_container(const std::string& id, int64_t timeout_seconds) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("StopContainer", id)) return *e;
    auto it = containers_.find(id);
    if (it == containers_.end()) return not_found("StopContainer", id, "container");
    it->second.stop_timeout = timeout_seconds;
    if (it->second.status.state == runtime::ContainerState::kRunning ||
        it->second.status.state == runtime::ContainerState::kUnknown) {
      finish(it->second, stop_exit_code_, "Error", "");
    }
    return Status::Ok();  // stopping a stopped container is fine
  }

  Status remove_container(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("RemoveContainer", id)) return *e;
    auto it = containers_.find(id);
    if (it == containers_.end()) return Status::Ok();  // CRI: already gone is fine
    if (it->second.status.state == runtime::ContainerState::kRunning) {
      return error("RemoveContainer", id, "Unknown", "container is running; stop it first", EIO);
    }
    containers_.erase(it);
    return Status::Ok();
  }

  Result<std::vector<runtime::Container>> list_containers(
      const runtime::ContainerFilter& filter = {}) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("ListContainers", selector_text(filter.label_selector))) return *e;
    std::vector<runtime::Container> out;
    for (const auto& [id, c] : containers_) {
      const auto& s = c.status;
      if (!filter.id.empty() && filter.id != id) continue;
      if (!filter.pod_sandbox_id.empty() && filter.pod_sandbox_id != c.sandbox_id) continue;
      if (filter.state && *filter.state != s.state) continue;
      if (!matches(s.labels, filter.label_selector)) continue;
      out.push_back({id, c.sandbox_id, s.metadata, s.image, s.image_ref, s.state, s.created_at,
                     s.labels, s.annotations});
    }
    return out;
  }

  Result<runtime::ContainerStatus> container_status(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("ContainerStatus", id)) return *e;
    auto it = containers_.find(id);
    if (it == containers_.end()) return not_found("ContainerStatus", id, "container");
    return it->second.status;
  }

  Result<runtime::ExecResult> exec_sync(const std::string& id, const std::vector<std::string>& cmd,
                                        int64_t /*timeout_seconds*/) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("ExecSync", id)) return *e;
    auto it = containers_.find(id);
    if (it == containers_.end()) return not_found("ExecSync", id, "container");
    if (it->second.status.state != runtime::ContainerState::kRunning) {
      return error("ExecSync", id, "Unknown", "container is not running", EIO);
    }
    for (const std::string& who : {id, std::string()}) {
      auto s = exec_scripts_.find({who, cmd});
      if (s != exec_scripts_.end()) return s->second;
    }
    std::string joined;
    for (const auto& a : cmd) joined += (joined.empty() ? "" : " ") + a;
    return error("ExecSync", id, "Unknown",
                 "exec: \"" + (cmd.empty() ? std::string() : cmd[0]) +
                     "\": executable file not found (no result scripted for \"" + joined + "\")",
                 EIO);
  }

  Result<std::string> exec(const runtime::ExecRequest& r) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("Exec", r.container_id)) return *e;
    exec_requests_.push_back(r);
    if (auto e = check_streaming("Exec", r.container_id)) return *e;
    return streaming_url_ + "/exec/" + std::to_string(++next_token_);
  }
  Result<std::string> attach(const runtime::AttachRequest& r) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("Attach", r.container_id)) return *e;
    attach_requests_.push_back(r);
    if (auto e = check_streaming("Attach", r.container_id)) return *e;
    return streaming_url_ + "/attach/" + std::to_string(++next_token_);
  }
  Result<std::string> port_forward(const std::string& sandbox_id, const std::vector<int32_t>& ports) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("PortForward", sandbox_id)) return *e;
    port_forward_requests_.emplace_back(sandbox_id, ports);
    auto it = sandboxes_.find(sandbox_id);
    if (it == sandboxes_.end()) return not_found("PortForward", sandbox_id, "sandbox");
    if (streaming_url_.empty()) return error("PortForward", sandbox_id, "Unimplemented", "no streaming server", ENOTSUP);
    return streaming_url_ + "/portforward/" + std::to_string(++next_token_);
  }

  Status reopen_container_log(const std::string& id) override {
    std::unique_lock lock(mu_);
    if (auto e = begin("ReopenContainerLog", id)) return *e;
    auto it = containers_.find(id);
    if (it == containers_.end()) return not_found("ReopenContainerLog", id, "container");
    if (it->second.status.state != runtime::ContainerState::kRunning) {
      return error("ReopenContainerLog", id, "Unknown", "container is not running", EIO);
    }
    auto hook = on_reopen_;
    const std::string log_path = it->second.status.log_path;
    lock.unlock();
    if (hook) hook(id, log_path);
    return Status::Ok();
  }

  Result<runtime::ContainerStats> container_stats(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("ContainerStats", id)) return *e;
    if (containers_.count(id) == 0) return not_found("ContainerStats", id, "container");
    auto it = stats_.find(id);
    if (it != stats_.end()) return it->second;
    runtime::ContainerStats s;
    s.id = id;
    s.timestamp = now();
    return s;
  }

  Result<std::string> pull_image(const runtime::ImageSpec& image,
                                 const std::optional<runtime::AuthConfig>& auth,
                                 const runtime::PodSandboxConfig* /*sandbox_config*/) override {
    std::unique_lock lock(mu_);
    pull_auths_.push_back(auth);  // also when the call is scripted to fail
    if (auto e = begin("PullImage", image.image)) return *e;
    last_pull_auth_ = auth;
    cv_.wait(lock, [&] { return held_pulls_.count(image.image) == 0; });
    if (auto it = pull_errors_.find(image.image); it != pull_errors_.end()) return it->second;
    auto it = images_.find(image.image);
    if (it == images_.end()) {
      return error("PullImage", image.image, "NotFound",
                   "failed to resolve reference \"" + image.image + "\": not found", ENOENT);
    }
    it->second.present = true;
    return it->second.id;
  }

  Result<std::optional<runtime::Image>> image_status(const runtime::ImageSpec& image) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("ImageStatus", image.image)) return *e;
    for (const auto& [ref, img] : images_) {
      if (img.present && (ref == image.image || img.id == image.image)) {
        return std::optional<runtime::Image>(to_image(ref, img));
      }
    }
    return std::optional<runtime::Image>();
  }

  Result<std::vector<runtime::Image>> list_images() override {
    std::lock_guard lock(mu_);
    if (auto e = begin("ListImages", "")) return *e;
    std::vector<runtime::Image> out;
    for (const auto& [ref, img] : images_) {
      if (img.present) out.push_back(to_image(ref, img));
    }
    return out;
  }

  Status remove_image(const runtime::ImageSpec& image) override {
    std::lock_guard lock(mu_);
    if (auto e = begin("RemoveImage", image.image)) return *e;
    for (auto& [ref, img] : images_) {
      if (ref == image.image || img.id == image.image) img.present = false;
    }
    return Status::Ok();  // CRI: already gone is fine
  }

  Result<std::vector<runtime::FilesystemUsage>> image_fs_info() override {
    std::lock_guard lock(mu_);
    if (auto e = begin("ImageFsInfo", "")) return *e;
    return image_fs_;
  }

  // The credentials of every pull, in order, failed ones too (nullopt: anonymous).
  std::vector<std::optional<runtime::AuthConfig>> pull_auths() const {
    std::lock_guard lock(mu_);
    return pull_auths_;
  }
  // The credentials the last pull came with.
  std::optional<runtime::AuthConfig> last_pull_auth() const {
    std::lock_guard lock(mu_);
    return last_pull_auth_;
  }
  // The grace period the last stop_container of `id` came with; -1 if never stopped.
  int64_t stop_timeout(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    return it == containers_.end() ? -1 : it->second.stop_timeout;
  }

 private:
  // A list call's subject: its label selector ("k=v,k2=v2"), empty for a list of everything.
  static std::string selector_text(const runtime::Labels& selector) {
    std::string out;
    for (const auto& [k, v] : selector) out += (out.empty() ? "" : ",") + k + "=" + v;
    return out;
  }
  struct Sandbox {
    runtime::PodSandboxConfig config;
    runtime::PodSandboxStatus status;
  };
  struct Ctr {
    std::string sandbox_id;
    runtime::ContainerConfig config;
    runtime::PodSandboxConfig sandbox_config;
    runtime::ContainerStatus status;
    int64_t stop_timeout = -1;
  };
  struct Img {
    std::string id;
    uint64_t size = 0;
    bool present = false;
    bool pinned = false;
  };

  // By reference or by ID, as a runtime resolves an image. Called with mu_ held.
  std::map<std::string, Img>::iterator find_image(const std::string& ref_or_id) {
    auto it = images_.find(ref_or_id);
    if (it != images_.end()) return it;
    return std::find_if(images_.begin(), images_.end(),
                        [&](const auto& kv) { return kv.second.id == ref_or_id; });
  }

  static bool known_method(const std::string& m) {
    static const std::set<std::string> kMethods = {
        "Version",          "Status",           "RuntimeConfig",   "RunPodSandbox",
        "StopPodSandbox",   "RemovePodSandbox", "PodSandboxStatus", "ListPodSandbox",
        "CreateContainer",  "StartContainer",   "StopContainer",   "RemoveContainer",
        "ListContainers",   "ContainerStatus",  "ExecSync",        "ReopenContainerLog",
        "ContainerStats",   "PullImage",        "ImageStatus",     "ListImages",
        "RemoveImage",      "ImageFsInfo",      "Exec",            "Attach",
        "PortForward"};
    return kMethods.count(m) != 0;
  }

  // Logs the call; a scripted failure for it comes back here. Called with mu_ held.
  std::optional<Status> begin(const std::string& method, const std::string& object) {
    calls_.push_back({method, object});
    cv_.notify_all();
    auto it = fail_next_.find(method);
    if (it == fail_next_.end() || it->second.empty()) return std::nullopt;
    Status s = std::move(it->second.front());
    it->second.pop_front();
    return s;
  }

  static Status error(const std::string& method, const std::string& object, const std::string& code,
                      const std::string& message, int err) {
    return Status::Error("CRI " + method + (object.empty() ? "" : " " + object) + ": " + code +
                             ": " + message,
                         err);
  }
  static Status not_found(const std::string& method, const std::string& id, const char* what) {
    return error(method, id, "NotFound", std::string(what) + " \"" + id + "\": not found", ENOENT);
  }

  // Streaming needs a running container and a streaming server. Called with mu_ held.
  std::optional<Status> check_streaming(const std::string& method, const std::string& id) {
    auto it = containers_.find(id);
    if (it == containers_.end()) return not_found(method, id, "container");
    if (it->second.status.state != runtime::ContainerState::kRunning) {
      return error(method, id, "FailedPrecondition", "container is not running", EIO);
    }
    if (streaming_url_.empty()) return error(method, id, "Unimplemented", "no streaming server", ENOTSUP);
    return std::nullopt;
  }

  static bool matches(const runtime::Labels& labels, const runtime::Labels& selector) {
    for (const auto& [k, v] : selector) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) return false;
    }
    return true;
  }

  static runtime::Image to_image(const std::string& ref, const Img& img) {
    runtime::Image out;
    out.id = img.id;
    out.repo_tags = {ref};
    out.size = img.size;
    out.pinned = img.pinned;
    return out;
  }

  void finish(Ctr& c, int32_t exit_code, const std::string& reason, const std::string& message) {
    c.status.state = runtime::ContainerState::kExited;
    c.status.finished_at = now();
    c.status.exit_code = exit_code;
    c.status.reason = reason;
    c.status.message = message;
  }

  runtime::UnixNanos now() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               clock_.system_now().time_since_epoch())
        .count();
  }

  const Clock& clock_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // a call was made, or a held pull released
  std::vector<Call> calls_;
  std::map<std::string, std::deque<Status>> fail_next_;
  std::map<std::string, int32_t> exit_on_start_;  // by container name
  std::map<std::pair<std::string, std::vector<std::string>>, Result<runtime::ExecResult>>
      exec_scripts_;
  std::map<std::string, Status> pull_errors_;
  std::map<std::string, Sandbox> sandboxes_;
  std::map<std::string, Ctr> containers_;
  std::map<std::string, Img> images_;
  std::map<std::string, runtime::ContainerStats> stats_;
  std::vector<runtime::FilesystemUsage> image_fs_;
  std::optional<runtime::AuthConfig> last_pull_auth_;
  std::vector<std::optional<runtime::AuthConfig>> pull_auths_;
  std::set<std::string> held_pulls_;
  std::function<void(const std::string&, const std::string&)> on_reopen_;
  runtime::VersionInfo version_{"0.1.0", "fake", "0.0.1", "v1"};
  runtime::RuntimeStatus status_{{{"RuntimeReady", true, "", ""}, {"NetworkReady", true, "", ""}}};
  Result<runtime::CgroupDriver> cgroup_driver_ = runtime::CgroupDriver::kCgroupfs;
  int32_t stop_exit_code_ = 137;
  std::string streaming_url_;
  int next_token_ = 0;
  std::vector<runtime::ExecRequest> exec_requests_;
  std::vector<runtime::AttachRequest> attach_requests_;
  std::vector<std::pair<std::string, std::vector<int32_t>>> port_forward_requests_;
  int next_id_ = 0;
  int next_ip_ = 0;
};

}  // namespace knode::testing
