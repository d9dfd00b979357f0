#include "agent.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>

#include "knode/cni/conflist.h"
#include "knode/health.h"
#include "knode/http/handlers.h"
#include "knode/http/server.h"
#include "knode/log.h"
#include "knode/manifest_source.h"
#include "knode/metrics.h"
#include "knode/sd_notify.h"
#include "knode/store.h"
#include "mode.h"
#include "proxier.h"
#include "static_pods.h"

namespace knode {
namespace {

std::string node_name(const config::AgentConfig& c) {
  if (!c.hostname_override.empty()) return c.hostname_override;
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  std::string n = buf;
  for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return n;
}

std::string urls(const http::HttpServer& s, const std::string& path) {
  std::string out;
  for (const auto& e : s.endpoints()) out += (out.empty() ? "" : ",") + ("http://" + e.str() + path);
  return out;
}

}  // namespace

int run_agent(const config::AgentConfig& c) {
  const Clock& clock = RealClock::instance();
  boost::asio::io_context io;
  ObjectStore store;
  metrics::Registry registry;
  metrics::register_process_metrics(registry);
  health::HealthRegistry health(clock);
  const bool proxy = c.runs_proxy();
  const bool kubelet = c.runs_kubelet();

  if (c.manifest_dir.empty()) {
    KLOG(ERROR, "cluster mode (--kubeconfig without --manifest-dir) is not available in this version of knode; "
                "run standalone with --manifest-dir");
    return 1;
  }
  std::string name = node_name(c);
  KLOG(INFO, "knode starting").kv("component", proxy && kubelet ? "agent" : proxy ? "proxy" : "kubelet")
      .kv("node", name).kv("manifestDir", c.manifest_dir);

  // Sources feed the store; the store feeds the controllers.
  ManifestDirSource source(io, {c.manifest_dir,
                                std::chrono::milliseconds(c.kubelet.file_check_frequency.millis()), true});
  store.expect_source(source.name());

  // --- proxy ---
  std::unique_ptr<proxy::Proxier> proxier;
  std::unique_ptr<health::ProxyHealth> proxy_health;
  std::unique_ptr<http::HttpServer> proxy_server, metrics_server;
  std::string mode;
  if (proxy) {
    auto sel = proxy::select_mode(c.proxy);
    if (!sel.ok()) {
      KLOG(ERROR, "cannot set up the proxy").kv("err", sel.error());
      return 1;
    }
    mode = sel->effective;
    bool ipvs = mode == "ipvs";
    auto period = std::chrono::milliseconds((ipvs ? c.proxy.ipvs.sync_period : c.proxy.iptables.sync_period).millis());
    auto min_period =
        std::chrono::milliseconds((ipvs ? c.proxy.ipvs.min_sync_period : c.proxy.iptables.min_sync_period).millis());
    proxy_health = std::make_unique<health::ProxyHealth>(clock, 2 * period);
    proxy::ProxierOptions opts;
    opts.min_sync_period = min_period;
    opts.sync_period = period;
    opts.node.node_name = name;
    if (!c.proxy.ipvs.scheduler.empty()) dp::parse_scheduler(c.proxy.ipvs.scheduler, &opts.node.scheduler);
    proxier = std::make_unique<proxy::Proxier>(io, store, std::move(sel->backend), opts, registry, *proxy_health, clock);

    if (!c.proxy.healthz_bind_address.empty()) {
      auto& answers = registry.counter_family("kubeproxy_healthz_total", "Cumulative proxy healthz HTTP status", {"code"});
      auto& live = registry.counter_family("kubeproxy_livez_total", "Cumulative proxy livez HTTP status", {"code"});
      proxy_server = std::make_unique<http::HttpServer>(io);
      proxy_server->handle("/healthz", http::proxy_healthz_handler(*proxy_health, &answers));
      proxy_server->handle("/livez", http::proxy_livez_handler(*proxy_health, &live));
      if (auto s = proxy_server->listen_on(c.proxy.healthz_bind_address, 10256); !s.ok()) {
        KLOG(ERROR, "cannot serve the proxy health endpoint").kv("err", s.message());
        return 1;
      }
    }
    if (!c.proxy.metrics_bind_address.empty()) {
      metrics_server = std::make_unique<http::HttpServer>(io);
      metrics_server->handle("/metrics", http::metrics_handler(registry));
      metrics_server->handle("/proxyMode", [mode](const http::Request&) {
        return http::Response{200, "text/plain; charset=utf-8", mode, {}};
      });
      if (auto s = metrics_server->listen_on(c.proxy.metrics_bind_address, 10249); !s.ok()) {
        KLOG(ERROR, "cannot serve the metrics endpoint").kv("err", s.message());
        return 1;
      }
    }
  }

  // --- kubelet ---
  std::unique_ptr<http::HttpServer> kubelet_server;
  std::unique_ptr<kubelet::StaticPods> pods;
  if (kubelet) {
    health.set_unhealthy("kubelet", "waiting for the initial sync of the pod sources");
    pods = std::make_unique<kubelet::StaticPods>(store, name);
    if (!c.kubelet.pod_cidr.empty()) {
      // Pods get their network from knode-cni, configured for this node's pod CIDR.
      cni::ConflistOptions net;
      net.pod_cidr = c.kubelet.pod_cidr;
      net.path = c.kubelet.cni_conf_dir + "/10-knode.conflist";
      if (auto s = cni::write_conflist(net); !s.ok()) {
        KLOG(ERROR, "cannot write the CNI network configuration").kv("err", s.message());
        return 1;
      }
      KLOG(INFO, "CNI network configuration written").kv("path", net.path).kv("podCIDR", net.pod_cidr);
    }
    if (c.kubelet.healthz_port != 0) {
      kubelet_server = std::make_unique<http::HttpServer>(io);
      kubelet_server->handle("/healthz", http::kubelet_healthz_handler(health));
      if (auto s = kubelet_server->listen(c.kubelet.healthz_bind_address, static_cast<uint16_t>(c.kubelet.healthz_port));
          !s.ok()) {
        KLOG(ERROR, "cannot serve the kubelet health endpoint").kv("err", s.message());
        return 1;
      }
    }
  }

  // Readiness: sources synced and, with the proxy, its first sync programmed.
  auto ready = [&] {
    if (proxier && !proxier->has_synced()) return;
    if (!store.synced()) return;
    auto line = KLOG(INFO, "knode ready");
    if (proxier) line.kv("proxyMode", mode).kv("servicePorts", proxier->service_port_count());
    if (kubelet_server) line.kv("kubeletHealthz", urls(*kubelet_server, "/healthz"));
    if (proxy_server) line.kv("proxyHealthz", urls(*proxy_server, "/healthz")).kv("proxyLivez", urls(*proxy_server, "/livez"));
    if (metrics_server) line.kv("metrics", urls(*metrics_server, "/metrics"));
    systemd::notify_ready();
    systemd::notify_status(proxier ? "ready; proxy mode " + mode : "ready");
  };
  store.on_all_synced([&] {
    if (kubelet) health.set_healthy("kubelet");
    ready();
  });
  if (proxier) {
    proxier->on_first_sync(ready);
    proxier->start();
  }
  if (pods) pods->start();

  systemd::Watchdog watchdog(io, [&] { return health.healthy() && (!proxy_health || proxy_health->healthy()); });
  watchdog.start();

  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    // Kernel rules stay as they are, so a restart does not disturb traffic.
    KLOG(INFO, "stopping; leaving kernel state in place").kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    systemd::notify_stopping();
    watchdog.stop();
    source.stop();
    if (proxier) proxier->stop();
    for (auto* s : {proxy_server.get(), metrics_server.get(), kubelet_server.get()}) {
      if (s) s->stop();
    }
    io.stop();
  });

  if (auto s = source.start(store); !s.ok()) {
    KLOG(ERROR, "cannot start the manifest source").kv("err", s.message());
    return 1;
  }
  io.run();
  if (proxier) proxier->stop();
  KLOG(INFO, "knode stopped");
  return 0;
}

}  // namespace knode
