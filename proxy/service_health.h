// kube-proxy's service health server: for every Service with externalTrafficPolicy Local
// and a spec.healthCheckNodePort, an HTTP server on that port (every address) that a
// cloud load balancer polls to learn whether this node has endpoints of the Service.
// Any path answers
//   {"service":{"namespace":"default","name":"kubia"},"localEndpoints":2,"serviceProxyHealthy":true}
// with 200 when the node has local endpoints and the proxy is healthy, else 503, and the
// X-Load-Balancing-Endpoint-Weight header. Servers follow each programmed state: a
// port that appears is opened, one that goes is closed.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "health.h"
#include "knode/http/server.h"
#include "knode/proxy/model.h"

namespace boost::asio {
class io_context;
}

namespace knode::proxy {

struct ServiceHealthInfo {
  std::string ns, name;
  int local_endpoints = 0;
  bool operator==(const ServiceHealthInfo&) const = default;
};

// The health check ports a state asks for, and what each reports.
std::map<uint16_t, ServiceHealthInfo> health_check_ports(const ProxyState& state);

class ServiceHealthServer {
 public:
  ServiceHealthServer(boost::asio::io_context& io, const ProxyHealth& health, std::string address = "0.0.0.0")
      : io_(io), health_(health), address_(std::move(address)) {}
  // From the loop, with each state the proxier programs.
  void update(const ProxyState& state);
  void stop();
  size_t listening() const { return servers_.size(); }

 private:
  struct Port {
    std::unique_ptr<http::HttpServer> server;
    std::shared_ptr<ServiceHealthInfo> info;
  };
  boost::asio::io_context& io_;
  const ProxyHealth& health_;
  const std::string address_;
  std::map<uint16_t, Port> servers_;
};

}  // namespace knode::proxy
