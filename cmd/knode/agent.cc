#include "agent.h"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cctype>
#include <csignal>

#include <nlohmann/json.hpp>

#include "knode/health.h"
#include "knode/json_get.h"
#include "knode/kube/bootstrap.h"
#include "knode/kube/informer.h"
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
// kube-proxy's filter of the Services and EndpointSlices it programs.
constexpr const char* kProxyLabelSelector = "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name";

class Agent {
 public:
  explicit Agent(const config::AgentConfig& c)
      : c_(c), name_(node_name(c)), health_(clock_),
        // The watchdog: knode's own parts; a container runtime that is down does not get
        // knode restarted (it shows in /healthz and in the node's status instead).
        watchdog_(io_, [this] {
          return health_.healthy(health::HealthRegistry::Scope::kSelf) && (!proxy_ || proxy_->healthy());
        }),
        signals_(io_, SIGTERM, SIGINT) {
    metrics::register_process_metrics(metrics_);
  }

  // Cluster mode: the API server client, checked once: credentials it refuses stop knode
  // with a clear error; a server that does not answer yet is waited for by the informers.
  Status connect_api() {
    if (!c_.bootstrap_kubeconfig.empty() && !kube::has_valid_client_certificate(c_.kubeconfig)) {
      KLOG(INFO, "no valid client certificate; TLS bootstrap").kv("bootstrapKubeconfig", c_.bootstrap_kubeconfig)
          .kv("certDir", c_.cert_dir);
      kube::BootstrapOptions b{name_, c_.bootstrap_kubeconfig, c_.kubeconfig, c_.cert_dir};
      if (Status s = kube::bootstrap_client_certificate(b); !s.ok()) return s;
    }
    auto kc = kube::load_kubeconfig(c_.kubeconfig);
    if (!kc.ok()) return kc.status();
    kube::ClientOptions o;
    o.qps = c_.kube_api_qps;
    o.burst = c_.kube_api_burst;
    o.user_agent = std::string("knode/") + KNODE_VERSION;
    auto client = kube::RestClient::create(*kc, o);
    if (!client.ok()) return client.status();
    api_ = std::move(*client);
    if (!c_.bootstrap_kubeconfig.empty() && c_.rotate_certificates) {
      rotator_ = std::make_unique<kube::CertRotator>(*api_, name_, c_.cert_dir, c_.rotation_fraction);
      rotator_->start();
    }
    auto who = api_->request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                             R"({"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"})");
    if (!who.ok()) {
      if (who.status().error_number() == EACCES) return who.status();  // TLS: the server is not who it should be
      KLOG(WARNING, "the API server does not answer yet; waiting for it").kv("server", kc->server).kv("err", who.status().message());
      return Status::Ok();
    }
    if (who->status == 401) {
      return Status::Error("the API server at " + kc->server + " refused knode's credentials from " + c_.kubeconfig +
                           " (401 Unauthorized: " + kube::status_message(*who) +
                           "); check the client certificate (signed by the cluster's CA?) or the token");
    }
    std::string user;
    if (who->ok()) {
      auto j = nlohmann::json::parse(who->body, nullptr, false);
      user = jget::str(jget::member(jget::member(j, "status"), "userInfo"), "username");
    }
    KLOG(INFO, "connected to the API server").kv("server", kc->server).kv("user", user.empty() ? "?" : user);
    return Status::Ok();
  }

  // The kinds whose only consumer is the proxy, which keeps what it needs of them: the
  // sources and the store keep none of these objects. Without the kubelet, Services,
  // EndpointSlices and Endpoints; with it in a cluster, EndpointSlices (the kubelet reads
  // Services for the pods' environment); standalone, none (the kubelet's EndpointSlice
  // controller reads the slices it wrote).
  std::set<api::Kind> pass_through_kinds() const {
    if (!c_.runs_kubelet()) return {api::Kind::kService, api::Kind::kEndpointSlice, api::Kind::kEndpoints};
    if (!c_.kubeconfig.empty()) return {api::Kind::kEndpointSlice};
    return {};
  }

  Status setup_sources() {
    for (auto k : pass_through_kinds()) store_.pass_through(k);
    if (!c_.manifest_dir.empty()) {
      manifest_ = std::make_unique<ManifestDirSource>(
          io_, ManifestDirSource::Options{c_.manifest_dir, std::chrono::milliseconds(c_.kubelet.file_check_frequency.millis()), true, pass_through_kinds()});
      store_.expect_source(manifest_->name());
    }
    if (c_.kubeconfig.empty()) return Status::Ok();
    if (Status s = connect_api(); !s.ok()) return s;
    std::vector<kube::WatchSpec> specs;
    // The node's own Node; every Node with --pod-routes=host-gw (routes to their pod CIDRs).
    const bool all_nodes = c_.runs_kubelet() && c_.kubelet.pod_routes == "host-gw";
    specs.push_back({api::Kind::kNode, "", "", all_nodes ? "" : "metadata.name=" + name_});
    // The Services (also the kubelet's for the pods' environment: a headless Service has
    // no variables) and, for the proxy, their EndpointSlices.
    const auto pass = pass_through_kinds();
    specs.push_back({api::Kind::kService, "", kProxyLabelSelector, "", !pass.contains(api::Kind::kService)});
    if (c_.runs_proxy()) {
      specs.push_back({api::Kind::kEndpointSlice, "", kProxyLabelSelector, "", !pass.contains(api::Kind::kEndpointSlice)});
    }
    // The kubelet's pods: those the scheduler bound to this node.
    if (c_.runs_kubelet()) specs.push_back({api::Kind::kPod, "", "", "spec.nodeName=" + name_});
    kube::InformerOptions io;
    io.protobuf = c_.kube_api_content_type == "application/vnd.kubernetes.protobuf";
    api_source_ = std::make_unique<kube::ApiServerSource>(io_, *api_, std::move(specs), "apiserver", io);
    store_.expect_source(api_source_->name());
    return Status::Ok();
  }

  Status setup() {
    if (Status s = setup_sources(); !s.ok()) return s;
    if (c_.runs_proxy()) {
      auto p = proxy::make_proxy_server(io_, store_, c_.proxy, name_, metrics_, clock_);
      if (!p.ok()) return p.status().Wrap("set up the proxy");
      proxy_ = std::move(*p);
    }
    if (c_.runs_kubelet()) {
#ifdef KNODE_PROXY_ONLY
      return Status::Error("knode-proxy has no kubelet: run `knode kubelet` or `knode agent`");
#else
      health_.set_unhealthy("kubelet", "waiting for the initial sync of the pod sources");
      auto k = kubelet::make_kubelet_server(io_, store_, c_.kubelet, name_, health_, api_.get(), api_source_.get());
      if (!k.ok()) return k.status().Wrap("set up the kubelet");
      kubelet_ = std::move(*k);
#endif
    }
    return Status::Ok();
  }

  int run() {
    KLOG(INFO, "knode starting")
        .kv("component", c_.runs_proxy() && c_.runs_kubelet() ? "agent" : c_.runs_proxy() ? "proxy" : "kubelet")
        .kv("node", name_).kv("manifestDir", c_.manifest_dir).kv("kubeconfig", c_.kubeconfig);
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
    if (manifest_) {
      if (Status s = manifest_->start(store_); !s.ok()) {
        KLOG(ERROR, "cannot start the manifest source").kv("err", s.message());
        return 1;
      }
    }
    if (api_source_) (void)api_source_->start(store_);
    io_.run();
    // What stop() cancelled (the pod workers' timers, among others) still has handlers on
    // the loop that own parts of the kubelet, whose strands run on its pool: run them now,
    // while the pool is there, rather than destroy them with io_ after it.
    io_.restart();
    io_.poll();
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
    if (manifest_) manifest_->stop();
    if (api_source_) api_source_->stop();
    if (rotator_) rotator_->stop();
    if (api_) api_->stop();
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
  std::unique_ptr<ManifestDirSource> manifest_;
  std::unique_ptr<kube::RestClient> api_;
  std::unique_ptr<kube::ApiServerSource> api_source_;
  std::unique_ptr<kube::CertRotator> rotator_;
  std::unique_ptr<proxy::ProxyServer> proxy_;
  std::unique_ptr<kubelet::KubeletServer> kubelet_;
  systemd::Watchdog watchdog_;
  boost::asio::signal_set signals_;
};

}  // namespace

int run_agent(const config::AgentConfig& c) {
  Agent agent(c);
  return agent.run();
}

}  // namespace knode
