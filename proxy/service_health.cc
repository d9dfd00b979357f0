#include "service_health.h"

#include <set>

#include <nlohmann/json.hpp>

#include "knode/log.h"
#include "knode/json_get.h"

namespace knode::proxy {

std::map<uint16_t, ServiceHealthInfo> health_check_ports(const ProxyState& state) {
  std::map<uint16_t, ServiceHealthInfo> out;
  std::map<uint16_t, std::set<std::string>> local;  // distinct local endpoint IPs per port
  for (const auto& sp : state.services) {
    if (!sp.external_policy_local || sp.health_check_node_port == 0) continue;
    const std::string svc = sp.name.substr(0, sp.name.find(':'));  // "namespace/name"
    const auto slash = svc.find('/');
    auto& info = out[sp.health_check_node_port];
    info.ns = svc.substr(0, slash);
    info.name = svc.substr(slash + 1);
    for (const auto& e : sp.local_endpoints) {
      if (e.ready) local[sp.health_check_node_port].insert(e.ip.str());
    }
  }
  for (auto& [port, info] : out) info.local_endpoints = static_cast<int>(local[port].size());
  return out;
}

void ServiceHealthServer::update(const ProxyState& state) {
  auto want = health_check_ports(state);
  for (auto it = servers_.begin(); it != servers_.end();) {
    if (want.count(it->first)) {
      ++it;
      continue;
    }
    it->second.server->stop();
    KLOG(INFO, "service health check port closed").kv("port", it->first);
    it = servers_.erase(it);
  }
  for (const auto& [port, info] : want) {
    auto it = servers_.find(port);
    if (it != servers_.end()) {
      *it->second.info = info;  // the handler reads it on this same loop
      continue;
    }
    Port p;
    p.info = std::make_shared<ServiceHealthInfo>(info);
    p.server = std::make_unique<http::HttpServer>(io_);
    p.server->handle_any([info = p.info, &health = health_](const http::Request&) {
      const bool proxy_ok = health.healthy();
      nlohmann::json body = {{"service", {{"namespace", info->ns}, {"name", info->name}}},
                             {"localEndpoints", info->local_endpoints},
                             {"serviceProxyHealthy", proxy_ok}};
      http::Response r{info->local_endpoints > 0 && proxy_ok ? 200 : 503, "application/json", jget::dump(body), {}};
      r.headers.emplace_back("X-Content-Type-Options", "nosniff");
      r.headers.emplace_back("X-Load-Balancing-Endpoint-Weight", std::to_string(info->local_endpoints));
      return r;
    });
    if (Status s = p.server->listen(address_, port); !s.ok()) {
      // As kube-proxy: reported, and tried again with the next state.
      KLOG(ERROR, "cannot open a service health check port").kv("service", info.ns + "/" + info.name)
          .kv("err", s.message());
      continue;
    }
    KLOG(INFO, "service health check port open").kv("service", info.ns + "/" + info.name).kv("port", port);
    servers_.emplace(port, std::move(p));
  }
}

void ServiceHealthServer::stop() {
  for (auto& [port, p] : servers_) p.server->stop();
  servers_.clear();
}

}  // namespace knode::proxy
