// What the kubelet tells the API server about its pods, written from one thread in the
// order it was asked: a pod's status through the status subresource (a merge patch
// carrying the pod's UID as precondition, only when it changed, or again when the API
// holds another: restate(); a burst of changes to one pod coalesces to the latest), the
// final delete of a pod whose containers are gone after a graceful deletion (grace 0, UID
// precondition), and the mirror pods of static pods (created, recreated when deleted or
// outdated, deleted with the static pod).
// Failed writes are retried with a back-off; a status is retried until a newer one
// replaces it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "knode/api/pod.h"
#include "knode/kube/client.h"
#include "knode/worker.h"

namespace knode::kubelet {

class ApiPods {
 public:
  virtual ~ApiPods() = default;
  // The pod's status changed (an API pod, or a static pod: its mirror's status).
  virtual void status(const api::Pod& pod) = 0;
  // The API holds another status for the pod than the one the kubelet gave (someone else
  // wrote it): the kubelet's goes again, even if it was written before.
  virtual void restate(const api::Pod& pod) { status(pod); }
  // An API pod's containers are gone after its deletion: delete it for good.
  virtual void terminated(const api::Pod& pod) = 0;
  // A static pod runs: its mirror pod must exist; or it went: its mirror goes.
  virtual void mirror(const api::Pod& static_pod) = 0;
  virtual void unmirror(const api::Pod& static_pod) = 0;
};

class PodWriter final : public ApiPods {
 public:
  PodWriter(kube::RestClient& client, std::string node_name);
  ~PodWriter() override;
  void start();
  void stop();

  void status(const api::Pod& pod) override;
  void restate(const api::Pod& pod) override;
  void terminated(const api::Pod& pod) override;
  void mirror(const api::Pod& static_pod) override;
  void unmirror(const api::Pod& static_pod) override;

  uint64_t writes() const { return writes_; }

 private:
  struct Op {
    enum Kind { kStatus, kDelete, kMirror, kUnmirror } kind;
    std::string ns, name, uid;
    nlohmann::json body;  // the status, or the mirror pod
    bool again = false;   // a status written even when it is the one written last
  };
  void enqueue(Op op);
  void run();
  Status apply(const Op& op);
  Status write_status(const Op& op);
  Status create_mirror(const Op& op);
  Status delete_pod(const std::string& ns, const std::string& name, const std::string& uid, bool grace0);
  std::string node_uid();

  kube::RestClient& client_;
  const std::string node_name_;
  std::string node_uid_;
  kube::Cancel cancel_;
  Worker worker_;  // its mutex guards queue_
  std::deque<Op> queue_;
  std::map<std::string, nlohmann::json> written_;  // ns/name -> the status last written
  std::map<std::string, Op> unwritten_mirror_status_;  // refused (404) before the mirror existed
  std::atomic<uint64_t> writes_{0};
};

}  // namespace knode::kubelet
