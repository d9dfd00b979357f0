#include "knode/proxy/server.h"

#include "health.h"
#include "knode/http/handlers.h"
#include "knode/http/server.h"
#include "mode.h"
#include "options.h"
#include "proxier.h"
#include "service_health.h"

namespace knode::proxy {
namespace {

std::string urls(const http::HttpServer& s, const std::string& path) {
  std::string out;
  for (const auto& e : s.endpoints()) out += (out.empty() ? "" : ",") + ("http://" + e.str() + path);
  return out;
}

class Server final : public ProxyServer {
 public:
  // kube-proxy's health timeout: twice the sync period.
  Server(const ProxyOptions& options, const Clock& clock) : options_(options), health_(clock, 2 * options.sync_period) {}

  Status init(boost::asio::io_context& io, ObjectStore& store, const std::string& node_name,
              metrics::Registry& metrics, const Clock& clock) {
    auto sel = select_mode(options_);
    mode_ = sel.effective;
    ProxierOptions opts;
    opts.min_sync_period = options_.min_sync_period;
    opts.sync_period = options_.sync_period;
    opts.node.node_name = node_name;
    proxier_ = std::make_unique<Proxier>(io, store, std::move(sel.mode), opts, metrics, health_, clock);
    service_health_ = std::make_unique<ServiceHealthServer>(io, health_);
    proxier_->on_state([this](const ProxyState& s) { service_health_->update(s); });
    if (Status s = serve_health(io, metrics); !s.ok()) return s.Wrap("serve the proxy health endpoint");
    if (Status s = serve_metrics(io, metrics); !s.ok()) return s.Wrap("serve the metrics endpoint");
    return Status::Ok();
  }

  void start(std::function<void()> ready) override {
    proxier_->on_first_sync(std::move(ready));
    proxier_->start();
  }

  void stop() override {
    proxier_->stop();
    if (service_health_) service_health_->stop();
    for (auto* s : {health_server_.get(), metrics_server_.get()}) {
      if (s) s->stop();
    }
  }

  const std::string& mode() const override { return mode_; }
  bool has_synced() const override { return proxier_->has_synced(); }
  bool healthy() const override { return health_.healthy(); }
  size_t service_port_count() const override { return proxier_->service_port_count(); }

  std::vector<std::pair<std::string, std::string>> endpoint_urls() const override {
    std::vector<std::pair<std::string, std::string>> out;
    if (health_server_) {
      out.emplace_back("proxyHealthz", urls(*health_server_, "/healthz"));
      out.emplace_back("proxyLivez", urls(*health_server_, "/livez"));
    }
    if (metrics_server_) out.emplace_back("metrics", urls(*metrics_server_, "/metrics"));
    return out;
  }

 private:
  Status serve_health(boost::asio::io_context& io, metrics::Registry& metrics) {
    if (options_.healthz_bind_address.empty()) return Status::Ok();
    auto& healthz = metrics.counter_family("kubeproxy_healthz_total", "Cumulative proxy healthz HTTP status", {"code"});
    auto& livez = metrics.counter_family("kubeproxy_livez_total", "Cumulative proxy livez HTTP status", {"code"});
    health_server_ = std::make_unique<http::HttpServer>(io);
    health_server_->handle("/healthz", healthz_handler(health_, &healthz));
    health_server_->handle("/livez", livez_handler(health_, &livez));
    return health_server_->listen_on(options_.healthz_bind_address, 10256);
  }

  Status serve_metrics(boost::asio::io_context& io, metrics::Registry& metrics) {
    if (options_.metrics_bind_address.empty()) return Status::Ok();
    metrics_server_ = std::make_unique<http::HttpServer>(io);
    metrics_server_->handle("/metrics", http::metrics_handler(metrics));
    metrics_server_->handle("/proxyMode", [mode = mode_](const http::Request&) {
      return http::Response{200, "text/plain; charset=utf-8", mode, {}};
    });
    return metrics_server_->listen_on(options_.metrics_bind_address, 10249);
  }

  ProxyOptions options_;
  std::string mode_;
  ProxyHealth health_;
  std::unique_ptr<Proxier> proxier_;
  std::unique_ptr<ServiceHealthServer> service_health_;
  std::unique_ptr<http::HttpServer> health_server_, metrics_server_;
};

}  // namespace

Status check_config(const config::ProxyConfig& config) { return proxy_options(config).status(); }

Result<std::unique_ptr<ProxyServer>> make_proxy_server(boost::asio::io_context& io, ObjectStore& store,
                                                       const config::ProxyConfig& config,
                                                       const std::string& node_name, metrics::Registry& metrics,
                                                       const Clock& clock) {
  auto options = proxy_options(config);
  if (!options.ok()) return options.status();
  auto server = std::make_unique<Server>(*options, clock);
  if (Status s = server->init(io, store, node_name, metrics, clock); !s.ok()) return s;
  return std::unique_ptr<ProxyServer>(std::move(server));
}

Status cleanup(const config::ProxyConfig& config) {
  auto options = proxy_options(config);
  if (!options.ok()) return options.status();
  return cleanup_all_modes(*options);
}

}  // namespace knode::proxy
