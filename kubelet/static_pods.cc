#include "static_pods.h"

#include "knode/log.h"

namespace knode::kubelet {

StaticPods::StaticPods(ObjectStore& store, std::string node_name)
    : store_(store), node_(std::move(node_name)) {}

void StaticPods::start() {
  store_.subscribe(api::Kind::kPod, [this](const Event& e) { on_pod(e); });
}

bool StaticPods::for_this_node(const api::Pod& pod) const {
  // A static pod without nodeName belongs to the node whose kubelet reads it.
  return pod.spec.node_name.empty() || pod.spec.node_name == node_;
}

void StaticPods::on_pod(const Event& e) {
  const auto& pod = std::get<api::Pod>(*e.object);
  std::string key = api::namespaced_name(pod.metadata);
  if (e.type == EventType::kDeleted || !for_this_node(pod)) {
    if (pods_.erase(key)) KLOG(INFO, "static pod removed").kv("pod", key);
    return;
  }
  bool added = pods_.insert_or_assign(key, e.object).second;
  KLOG(INFO, added ? "static pod admitted" : "static pod updated")
      .kv("pod", key)
      .kv("containers", pod.spec.containers.size())
      .kv("note", "tracked only: this build runs no container runtime");
}

}  // namespace knode::kubelet
