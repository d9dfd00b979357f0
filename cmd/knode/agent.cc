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

// One daemon: sources feed the store, the store feeds the proxy and the kubelet, all on
// one event loop; sd_notify and the watchdog report its health to systemd.
class Agent {
 public:
  explicit Agent(const config::AgentConfig& c)
      : c_(c), name_(node_name(c)), health_(clock_),
        source_(io_, {c.manifest_dir, std::chrono::milliseconds(c.kubelet.file_check_frequency.millis()), true}),
        // The watchdog: knode's own parts; a container runtime that is down does not get
        // knode restarted (it shows in /healthz and in the node's status instead).
        watchdog_(io_, [this] {
          return health_.healthy(health::HealthRegistry::Scope::kSelf) && (!proxy_ || proxy_->healthy());
        }),
        signals_(io_, SIGTERM, SIGINT) {
    metrics::register_process_metrics(metrics_);
    store_.expect_source(source_.name());
  }

  Status setup() {
    if (c_.runs_proxy()) {
      auto p = proxy::make_proxy_server(io_, store_, c_.proxy, name_, metrics_, clock_);
      if (!p.ok()) return p.status().Wrap("set up the proxy");
      proxy_ = std::move(*p);
    }
    if (c_.runs_kubelet()) {
      health_.set_unhealthy("kubelet", "waiting for the initial sync of the pod sources");
      auto k = kubelet::make_kubelet_server(io_, store_, c_.kubelet, name_, health_);
      if (!k.ok()) return k.status().Wrap("set up the kubelet");
      kubelet_ = std::move(*k);
    }
    return Status::Ok();
  }

  int run() {
    KLOG(INFO, "knode starting")
        .kv("component", c_.runs_proxy() && c_.runs_kubelet() ? "agent" : c_.runs_proxy() ? "proxy" : "kubelet")
        .kv("node", name_).kv("manifestDir", c_.manifest_dir);
    if (Status s = setup(); !s.ok()) {
      KLOG(ERROR, "cannot start").kv("err", s.message());
      return 1;
    }
    store_.on_all_synced([this] {
      if (kubelet_) health_.set_healthy("kubelet");
      maybe_ready();
    });
    if (proxy_) proxy_->start([this] { maybe_ready(); });
    if (kubelet_) kubelet_->start();
    watchdog_.start();
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) stop(sig);
    });
    if (Status s = source_.start(store_); !s.ok()) {
      KLOG(ERROR, "cannot start the manifest source").kv("err", s.message());
      return 1;
    }
    io_.run();
    if (proxy_) proxy_->stop();
    KLOG(INFO, "knode stopped");
    return 0;
  }

 private:
  // Ready: the sources synced and, with the proxy, its first sync programmed.
  void maybe_ready() {
    if ((proxy_ && !proxy_->has_synced()) || !store_.synced()) return;
    auto line = KLOG(INFO, "knode ready");
    if (proxy_) line.kv("proxyMode", proxy_->mode()).kv("servicePorts", proxy_->service_port_count());
    if (kubelet_) {
      for (const auto& [k, v] : kubelet_->endpoint_urls()) line.kv(k, v);
    }
    if (proxy_) {
      for (const auto& [k, v] : proxy_->endpoint_urls()) line.kv(k, v);
    }
    notify(systemd::notify_ready());
    notify(systemd::notify_status(proxy_ ? "ready; proxy mode " + proxy_->mode() : "ready"));
  }

  // Kernel rules stay as they are, so a restart does not disturb traffic.
  void stop(int sig) {
    KLOG(INFO, "stopping; leaving kernel state in place").kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    notify(systemd::notify_stopping());
    watchdog_.stop();
    source_.stop();
    if (proxy_) proxy_->stop();
    if (kubelet_) kubelet_->stop();
    io_.stop();
  }

  const config::AgentConfig& c_;
  const std::string name_;
  const Clock& clock_ = RealClock::instance();
  boost::asio::io_context io_;
  ObjectStore store_;
  metrics::Registry metrics_;
  health::HealthRegistry health_;
  ManifestDirSource source_;
  std::unique_ptr<proxy::ProxyServer> proxy_;
  std::unique_ptr<kubelet::KubeletServer> kubelet_;
  systemd::Watchdog watchdog_;
  boost::asio::signal_set signals_;
};

}  // namespace

int run_agent(const config::AgentConfig& c) {
  if (c.manifest_dir.empty()) {
    KLOG(ERROR, "cluster mode (--kubeconfig without --manifest-dir) is not available in this version of knode; "
                "run standalone with --manifest-dir");
    return 1;
  }
  Agent agent(c);
  return agent.run();
}

}  // namespace knode
