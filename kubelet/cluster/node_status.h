// The node in the API: its registration, its status (addresses, capacity, conditions,
// nodeInfo) and its Lease, as the upstream kubelet keeps them.
//
// Pure functions build the objects (tested without a server); NodeReporter writes them:
// register once (an existing Node is taken over), then every status_interval (10 s) it
// computes the status and PATCHes it when it changed, when the Node in the API has other
// conditions (the node lifecycle controller's Unknown) or report_interval (5 min) passed,
// and renews the Lease in kube-node-lease (40 s, renewed every 10 s). It runs on its own
// thread with blocking API calls; the signals come from the daemon's loop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "knode/api/cluster.h"
#include "knode/kube/client.h"
#include "knode/worker.h"

namespace knode::kubelet {

// What the machine is: read once at start.
struct NodeFacts {
  std::string name;
  std::string hostname;
  std::vector<std::string> internal_ips;
  int64_t cpus = 0;
  int64_t memory_bytes = 0;
  int64_t ephemeral_storage_bytes = 0;
  int32_t max_pods = 110;
  int32_t kubelet_port = 10250;
  std::string kernel_version, os_image, architecture = "amd64", machine_id, boot_id;
  std::string kubelet_version;  // "v1.37.2+knode.0.1.0"
};
NodeFacts read_node_facts(const std::string& name, const std::vector<std::string>& ips, const std::string& root_dir);

// What changes: from the runtime, the relist and the machine, sampled every interval.
struct NodeSignals {
  bool runtime_ready = false;
  std::string not_ready_message;       // why not, for the Ready condition
  std::string runtime_version;         // "containerd://2.4.2"
  bool memory_pressure = false, disk_pressure = false, pid_pressure = false;
};
NodeSignals sample_pressure(const std::string& root_dir);  // the three pressures

api::Node registration(const NodeFacts& f);
// The status for `s`; transition times carry over from `prev` when a condition's status
// did not change.
api::NodeStatus node_status(const NodeFacts& f, const NodeSignals& s, const std::vector<api::NodeCondition>& prev,
                            api::Time now);
// True when a and b differ in more than the conditions' heartbeat times.
bool status_differs(const api::NodeStatus& a, const api::NodeStatus& b);
// The Lease object (coordination.k8s.io/v1), owned by the Node so it goes with it.
nlohmann::json lease_object(const std::string& node, const std::string& node_uid, int duration_seconds,
                            api::Time renew);
std::string micro_time(api::Time t);  // "2026-12-02T01:02:03.000123Z"

struct NodeReporterOptions {
  std::chrono::milliseconds status_interval{std::chrono::seconds(10)};
  std::chrono::milliseconds report_interval{std::chrono::minutes(5)};
  std::chrono::milliseconds lease_renew_interval{std::chrono::seconds(10)};
  int lease_duration_seconds = 40;
};

class NodeReporter {
 public:
  // signals() is called from the reporter's thread; it must be thread-safe.
  NodeReporter(kube::RestClient& client, NodeFacts facts, std::function<NodeSignals()> signals,
               NodeReporterOptions options = {});
  ~NodeReporter();
  void start();
  void stop();

  bool registered() const { return registered_; }
  uint64_t lease_renewals() const { return renewals_; }
  uint64_t status_writes() const { return status_writes_; }

 private:
  void run();
  Status register_node();
  Status write_status(bool force);
  Status renew_lease();

  kube::RestClient& client_;
  const NodeFacts facts_;
  std::function<NodeSignals()> signals_;
  const NodeReporterOptions options_;
  kube::Cancel cancel_;
  Worker worker_;
  std::atomic<bool> registered_{false};
  std::atomic<uint64_t> renewals_{0}, status_writes_{0};
  std::string node_uid_;
  api::NodeStatus last_written_;
  std::chrono::steady_clock::time_point last_write_{};
  bool lease_exists_ = false;
};

}  // namespace knode::kubelet
