// The kubelet as one piece the daemon composes: the pods of this node from the object
// store, the node's pod network configuration for knode-cni, and the kubelet's health
// endpoint (--healthz-bind-address:--healthz-port, /healthz). With an API server client
// (cluster mode) it registers the Node, keeps its status and Lease, and takes the pod
// network's CIDR from the Node's spec.podCIDR; without one (standalone) it computes the
// Services' EndpointSlices itself.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "knode/config.h"
#include "knode/health.h"
#include "knode/status.h"
#include "knode/store.h"

namespace knode::kube {
class RestClient;
class ApiServerSource;
}

namespace knode::kubelet {

class KubeletServer {
 public:
  virtual ~KubeletServer() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  // ("kubeletHealthz", "http://127.0.0.1:10248/healthz") for the ready line.
  virtual std::vector<std::pair<std::string, std::string>> endpoint_urls() const = 0;
};

Result<std::unique_ptr<KubeletServer>> make_kubelet_server(boost::asio::io_context& io, ObjectStore& store,
                                                           const config::KubeletConfig& config,
                                                           const std::string& node_name,
                                                           health::HealthRegistry& health,
                                                           kube::RestClient* api = nullptr,
                                                           kube::ApiServerSource* api_source = nullptr);

}  // namespace knode::kubelet
