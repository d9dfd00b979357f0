#include "agent.h"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cctype>
#include <csignal>

#include "knode/health.h"
#include "knode/log.h"
#include "knode/manifest_source.h"
#include "knode/metrics.h"
#include "knode/sd_notify.h"
#include "knode/store.h"
#include "knode/kubelet/server.h"
#include "knode/proxy/server.h"

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

// systemd notifications are advisory: without systemd (NOTIFY_SOCKET unset) they are
// no-ops, and a failed one must not stop the node.
void notify(const Status& s) {
  if (!s.ok()) KLOG(WARNING, "systemd notification failed").kv("err", s.message());
}

}  // namespace

int run_agent(const config::AgentConfig& c) {
  if (c.manifest_dir.empty()) {
    KLOG(ERROR, "cluster mode (--kubeconfig without --manifest-dir) is not available in this version of knode; "
                "run standalone with --manifest-dir");
    return 1;
  }
  const Clock& clock = RealClock::instance();
  boost::asio::io_context io;
  ObjectStore store;
  metrics::Registry registry;
  metrics::register_process_metrics(registry);
  health::HealthRegistry health(clock);
  const std::string name = node_name(c);
  KLOG(INFO, "knode starting")
      .kv("component", c.runs_proxy() && c.runs_kubelet() ? "agent" : c.runs_proxy() ? "proxy" : "kubelet")
      .kv("node", name).kv("manifestDir", c.manifest_dir);

  // Sources feed the store; the store feeds the controllers.
  ManifestDirSource source(io, {c.manifest_dir, std::chrono::milliseconds(c.kubelet.file_check_frequency.millis()), true});
  store.expect_source(source.name());

  std::unique_ptr<proxy::ProxyServer> proxy;
  if (c.runs_proxy()) {
    auto p = proxy::make_proxy_server(io, store, c.proxy, name, registry, clock);
    if (!p.ok()) {
      KLOG(ERROR, "cannot set up the proxy").kv("err", p.error());
      return 1;
    }
    proxy = std::move(*p);
  }
  std::unique_ptr<kubelet::KubeletServer> kubelet;
  if (c.runs_kubelet()) {
    health.set_unhealthy("kubelet", "waiting for the initial sync of the pod sources");
    auto k = kubelet::make_kubelet_server(io, store, c.kubelet, name, health);
    if (!k.ok()) {
      KLOG(ERROR, "cannot set up the kubelet").kv("err", k.error());
      return 1;
    }
    kubelet = std::move(*k);
  }

  // Ready: the sources synced and, with the proxy, its first sync programmed.
  auto ready = [&] {
    if ((proxy && !proxy->has_synced()) || !store.synced()) return;
    auto line = KLOG(INFO, "knode ready");
    if (proxy) line.kv("proxyMode", proxy->mode()).kv("servicePorts", proxy->service_port_count());
    if (kubelet) {
      for (const auto& [k, v] : kubelet->endpoint_urls()) line.kv(k, v);
    }
    if (proxy) {
      for (const auto& [k, v] : proxy->endpoint_urls()) line.kv(k, v);
    }
    notify(systemd::notify_ready());
    notify(systemd::notify_status(proxy ? "ready; proxy mode " + proxy->mode() : "ready"));
  };
  store.on_all_synced([&] {
    if (kubelet) health.set_healthy("kubelet");
    ready();
  });
  if (proxy) proxy->start(ready);
  if (kubelet) kubelet->start();

  systemd::Watchdog watchdog(io, [&] { return health.healthy() && (!proxy || proxy->healthy()); });
  watchdog.start();

  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    // Kernel rules stay as they are, so a restart does not disturb traffic.
    KLOG(INFO, "stopping; leaving kernel state in place").kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    notify(systemd::notify_stopping());
    watchdog.stop();
    source.stop();
    if (proxy) proxy->stop();
    if (kubelet) kubelet->stop();
    io.stop();
  });

  if (Status s = source.start(store); !s.ok()) {
    KLOG(ERROR, "cannot start the manifest source").kv("err", s.message());
    return 1;
  }
  io.run();
  if (proxy) proxy->stop();
  KLOG(INFO, "knode stopped");
  return 0;
}

}  // namespace knode
