#include "knode/kubelet/server.h"

#include "knode/cni/conflist.h"
#include "knode/http/handlers.h"
#include "knode/http/server.h"
#include "knode/log.h"
#include "static_pods.h"

namespace knode::kubelet {
namespace {

class Server final : public KubeletServer {
 public:
  Server(ObjectStore& store, const std::string& node_name) : pods_(store, node_name) {}

  Status init(boost::asio::io_context& io, const config::KubeletConfig& c, health::HealthRegistry& health) {
    if (!c.pod_cidr.empty()) {
      // Pods get their network from knode-cni, configured for this node's pod CIDR.
      cni::ConflistOptions net;
      net.pod_cidr = c.pod_cidr;
      net.path = c.cni_conf_dir + "/10-knode.conflist";
      if (Status s = cni::write_conflist(net); !s.ok()) return s.Wrap("write the CNI network configuration");
      KLOG(INFO, "CNI network configuration written").kv("path", net.path).kv("podCIDR", net.pod_cidr);
    }
    if (c.healthz_port == 0) return Status::Ok();
    health_server_ = std::make_unique<http::HttpServer>(io);
    health_server_->handle("/healthz", http::kubelet_healthz_handler(health));
    Status s = health_server_->listen(c.healthz_bind_address, static_cast<uint16_t>(c.healthz_port));
    return s.ok() ? s : s.Wrap("serve the kubelet health endpoint");
  }

  void start() override { pods_.start(); }
  void stop() override {
    if (health_server_) health_server_->stop();
  }

  std::vector<std::pair<std::string, std::string>> endpoint_urls() const override {
    if (!health_server_) return {};
    std::string urls;
    for (const auto& e : health_server_->endpoints()) {
      urls += (urls.empty() ? "" : ",") + ("http://" + e.str() + "/healthz");
    }
    return {{"kubeletHealthz", urls}};
  }

 private:
  StaticPods pods_;
  std::unique_ptr<http::HttpServer> health_server_;
};

}  // namespace

Result<std::unique_ptr<KubeletServer>> make_kubelet_server(boost::asio::io_context& io, ObjectStore& store,
                                                           const config::KubeletConfig& config,
                                                           const std::string& node_name,
                                                           health::HealthRegistry& health) {
  auto server = std::make_unique<Server>(store, node_name);
  if (Status s = server->init(io, config, health); !s.ok()) return s;
  return std::unique_ptr<KubeletServer>(std::move(server));
}

}  // namespace knode::kubelet
