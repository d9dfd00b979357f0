#include "knode/kubelet/server.h"

#include <sys/socket.h>
#include <sys/sysinfo.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio/thread_pool.hpp>

#include "cri/cri_runtime.h"
#include "docker/docker_runtime.h"
#include "knode/api/codec.h"
#include "knode/cni/conflist.h"
#include "knode/dataplane/link.h"
#include "knode/http/handlers.h"
#include "knode/http/server.h"
#include "knode/log.h"
#include "housekeeping.h"
#include "instrumented_runtime.h"
#include "kubelet.h"
#include "node_environment.h"
#include "object_cache.h"
#include "cluster/node_status.h"
#include "cluster/claims.h"
#include "cluster/pod_certificates.h"
#include "cluster/trust_bundles.h"
#include "cluster/event_writer.h"
#include "cluster/host_gw.h"
#include "cluster/pod_writer.h"
#include "cluster/references.h"
#include "cluster/tokens.h"
#include "knode/kube/bootstrap.h"
#include "knode/kube/informer.h"
#include "knode/manifest_source.h"
#include "pod/static_pod.h"
#include "server/auth.h"
#include "server/kubelet_api.h"
#include "server/serving_cert.h"
#include "server/stats.h"
#include "server/webhook.h"
#include "standalone/endpoint_slices.h"

namespace knode::kubelet {
namespace {

// The node's IPs, primary first: --node-ip, else the default route's interface's.
std::vector<std::string> node_ips(const std::string& configured) {
  if (!configured.empty()) return {configured};
  std::vector<std::string> out;
  auto sock = link::Socket::Open();
  if (!sock.ok()) return out;
  for (int family : {AF_INET, AF_INET6}) {
    for (const auto& ip : link::default_route_addresses(*sock, family)) out.push_back(ip.str());
  }
  return out;
}

int64_t machine_memory() {
  struct sysinfo si {};
  if (::sysinfo(&si) != 0) return 0;
  return static_cast<int64_t>(si.totalram) * si.mem_unit;
}

runtime::CgroupDriver driver_of(const std::string& name) {
  return name == "systemd" ? runtime::CgroupDriver::kSystemd : runtime::CgroupDriver::kCgroupfs;
}

// The runtime's cgroup driver must be the kubelet's: containers would otherwise land in
// cgroups the kubelet does not manage. A runtime that cannot say (containerd 1.6) is
// trusted to be configured alike.
Status check_cgroup_driver(runtime::ContainerRuntime& rt, runtime::CgroupDriver mine) {
  auto theirs = rt.cgroup_driver();
  if (!theirs.ok()) {
    if (theirs.status().error_number() == ENOTSUP) return Status::Ok();
    return theirs.status();
  }
  if (*theirs == mine) return Status::Ok();
  const std::string knob = rt.id_scheme() == "docker" ? "dockerd's --exec-opt native.cgroupdriver"
                                                      : "the runtime's SystemdCgroup";
  return Status::Error(std::string("misconfiguration: kubelet cgroup driver: \"") + runtime::to_string(mine) +
                           "\" is different from the container runtime's cgroup driver: \"" +
                           runtime::to_string(*theirs) + "\" (set --cgroup-driver=" + runtime::to_string(*theirs) +
                           ", or " + knob + ")",
                       EINVAL);
}

// Threads for blocking work: pod syncs (one at a time per pod), probes, the relist,
// housekeeping. Runtime calls mostly wait on the runtime, so pods start in parallel.
constexpr size_t kPoolThreads = 16;

// --container-runtime: a CRI runtime (remote) or dockerd through knode's own backend.
Result<std::unique_ptr<runtime::ContainerRuntime>> make_runtime(const config::KubeletConfig& c) {
  const std::chrono::milliseconds timeout(c.runtime_request_timeout.millis());
  if (c.container_runtime == "docker") {
    docker::DockerOptions o;
    o.endpoint = c.docker_endpoint;
    o.request_timeout = timeout;
    o.pod_infra_image = c.pod_infra_container_image;
    o.cni.conf = c.cni_conf_dir;
    o.cni.bin_dirs.clear();
    std::stringstream dirs(c.cni_bin_dir);
    for (std::string d; std::getline(dirs, d, ',');) {
      if (!d.empty()) o.cni.bin_dirs.push_back(d);
    }
    auto rt = docker::DockerRuntime::connect(o);
    if (!rt.ok()) return rt.status().Wrap("--docker-endpoint");
    return std::unique_ptr<runtime::ContainerRuntime>(std::move(*rt));
  }
  auto rt = cri::CriRuntime::connect({c.container_runtime_endpoint, timeout});
  if (!rt.ok()) return rt.status().Wrap("--container-runtime-endpoint");
  return std::unique_ptr<runtime::ContainerRuntime>(std::move(*rt));
}

class Server final : public KubeletServer {
 public:
  Server(boost::asio::io_context& io, ObjectStore& store, const std::string& node_name, health::HealthRegistry& health)
      : io_(io), store_(store), node_name_(node_name), health_(health), pool_(kPoolThreads) {
    metrics::register_process_metrics(metrics_);
  }
  ~Server() override {
    stop();
    // Work still running on the pool (a pod sync) uses the runtime and the metrics: it
    // ends before they go.
    pool_.stop();
    pool_.join();
  }

  Status init(const config::KubeletConfig& c, kube::RestClient* api, kube::ApiServerSource* api_source) {
    api_source_ = api_source;
    api_ = api;
    config_ = c;
    if (Status s = write_cni_config(c.pod_cidr); !s.ok()) return s;
    auto rt = make_runtime(c);
    if (!rt.ok()) return rt.status();
    // Every runtime call counted and timed (kubelet_runtime_operations_*), on the
    // kubelet API's /metrics.
    runtime_ = std::make_unique<InstrumentedRuntime>(std::move(*rt), metrics_);
    if (Status s = check_cgroup_driver(*runtime_, driver_of(c.cgroup_driver)); !s.ok()) {
      if (s.error_number() == EINVAL) return s;
      KLOG(WARNING, "the container runtime does not answer yet; the kubelet waits for it")
          .kv("endpoint", c.container_runtime == "docker" ? c.docker_endpoint : c.container_runtime_endpoint)
          .kv("err", s.message());
    }
    KubeletOptions o;
    o.node.node_name = node_name_;
    o.node.cluster_dns = c.cluster_dns;
    o.node.cluster_domain = c.cluster_domain;
    o.node.resolv_conf = c.resolv_conf;
    o.node.cgroup_driver = driver_of(c.cgroup_driver);
    o.node.cgroup_root = c.cgroup_root;
    o.node.memory_capacity = machine_memory();
    o.node.host_ips = node_ips(c.node_ip);
    host_ips_ = o.node.host_ips;
    if (o.node.host_ips.empty()) KLOG(WARNING, "the node's IP is unknown (no --node-ip, no default route)");
    // The kubelet's state: the pods' volumes live below it.
    std::error_code ec;
    std::filesystem::create_directories(c.root_dir + "/pods", ec);
    if (ec) return Status::Error("--root-dir: create " + c.root_dir + "/pods: " + ec.message(), ec.value());
    const Clock& clock = RealClock::instance();
    logs_ = std::make_unique<LogManager>(*runtime_, clock, LogManagerOptions{c.log_root, {}});
    o.node.pod_logs_dir = logs_->pods_directory();
    cache_.follow(store_);
    api::ResourceList allocatable;
    allocatable["cpu"] = *api::Quantity::Parse(std::to_string(std::thread::hardware_concurrency()));
    allocatable["memory"] = *api::Quantity::Parse(std::to_string(o.node.memory_capacity));
    cache_.set_node(allocatable, o.node.host_ips);
    if (api != nullptr) {
      // A cluster: pod statuses, final deletions and mirror pods go to the API server;
      // service account tokens come from it.
      writer_ = std::make_unique<PodWriter>(*api, node_name_);
      o.api = writer_.get();
      events_ = std::make_unique<EventWriter>(*api, node_name_);
      o.events = events_.get();
      tokens_ = std::make_unique<TokenManager>(*api);
      ObjectCache::ClusterReads reads;
      reads.tokens = [t = tokens_.get()](const api::Pod& p, const api::ServiceAccountTokenProjection& proj) {
        return t->token(p, proj);
      };
      reads.claims = [api](const std::string& ns, const std::string& claim) { return resolve_claim(*api, ns, claim); };
      reads.trust_bundles = [api](const api::ClusterTrustBundleProjection& p) { return trust_anchors(*api, p); };
      pcr_api_ = rest_pod_certificate_api(*api, node_name_);
      pod_certs_ = std::make_unique<PodCertificateManager>(*pcr_api_, node_name_);
      reads.pod_certificates = [m = pod_certs_.get()](const api::Pod& pod, const std::string& volume, size_t index,
                                                      const api::PodCertificateProjection& p) {
        return m->credential(pod, volume, index, p);
      };
      reads.pod_gone = [m = pod_certs_.get()](const std::string& uid) { m->forget(uid); };
      cache_.set_cluster_reads(std::move(reads));
      if (api_source_) store_.subscribe(api::Kind::kPod, [this](const Event& e) { follow_references(e); });
    }
    env_ = std::make_unique<NodeEnvironment>(*runtime_, cache_, *logs_, c.root_dir + "/pods", clock,
                                             c.cluster_domain);
    kubelet_ = std::make_unique<Kubelet>(io_, store_, *runtime_, *env_, o, health_, clock, pool_.get_executor());
    container_gc_ = std::make_unique<ContainerGc>(*runtime_, clock, *kubelet_, *logs_);
    image_gc_ = std::make_unique<ImageGcManager>(*runtime_, clock);
    if (api == nullptr) {
      // Standalone: nobody else computes the Services' EndpointSlices from the pods.
      slices_ = std::make_unique<EndpointSliceController>(store_, EndpointSliceControllerOptions{node_name_});
    } else {
      // A cluster: the node in the API, and the pod network from its spec.podCIDR.
      auto facts = read_node_facts(node_name_, o.node.host_ips, c.root_dir);
      facts.kubelet_port = c.port;
      reporter_ = std::make_unique<NodeReporter>(*api, facts, [this, root = c.root_dir] {
        NodeSignals s = sample_pressure(root);
        s.runtime_ready = health_.healthy() && cni_ready_;
        s.not_ready_message = !cni_ready_ ? "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
                                            "message:the node has no pod CIDR yet"
                                          : health_.unhealthy_reason();
        std::lock_guard lock(version_mu_);
        s.runtime_version = runtime_version_;
        return s;
      });
      cni_ready_ = !c.pod_cidr.empty();
      if (c.pod_routes == "host-gw") {
        auto cidr = net::Cidr::Parse(c.cluster_cidr);
        if (!cidr) return Status::Error("--pod-routes=host-gw: --cluster-cidr \"" + c.cluster_cidr + "\" is not a CIDR");
        host_gw_ = std::make_unique<HostGwRoutes>(node_name_, *cidr);
      }
      store_.subscribe(api::Kind::kNode, [this](const Event& e) { on_node(e); });
      boost::asio::post(pool_, [this] {
        auto v = runtime_->version();
        if (!v.ok()) return;
        std::lock_guard lock(version_mu_);
        runtime_version_ = v->runtime_name + "://" + v->runtime_version;
      });
    }
    housekeeping_ = std::make_unique<Housekeeping>(io_, pool_.get_executor(), *logs_, *container_gc_, *image_gc_,
                                                   [this] { return store_.synced(); });
    return serve(c);
  }

  void start() override {
    kubelet_->start();  // a source of the store: before the controller takes its inputs
    if (slices_) slices_->start();
    if (reporter_) reporter_->start();
    if (writer_) writer_->start();
    if (events_) events_->start();
    housekeeping_->start();
  }
  void stop() override {
    if (serving_certs_) serving_certs_->stop();
    if (api_server_) api_server_->stop();
    if (kubelet_api_) kubelet_api_->stop();
    if (reporter_) reporter_->stop();
    if (writer_) writer_->stop();
    if (events_) events_->stop();
    if (housekeeping_) housekeeping_->stop();
    if (kubelet_) kubelet_->stop();
    for (auto* s : {health_server_.get(), read_only_.get()}) {
      if (s) s->stop();
    }
  }

  std::vector<std::pair<std::string, std::string>> endpoint_urls() const override {
    std::vector<std::pair<std::string, std::string>> out;
    auto urls = [](const http::HttpServer& s, const std::string& path) {
      std::string u;
      for (const auto& e : s.endpoints()) u += (u.empty() ? "" : ",") + ("http://" + e.str() + path);
      return u;
    };
    if (health_server_) out.emplace_back("kubeletHealthz", urls(*health_server_, "/healthz"));
    if (read_only_) out.emplace_back("kubeletPods", urls(*read_only_, "/pods"));
    if (api_server_) {
      std::string u;
      for (const auto& e : api_server_->endpoints()) u += (u.empty() ? "" : ",") + ("https://" + e.str());
      out.emplace_back("kubeletApi", u);
    }
    return out;
  }

 private:
  // The ConfigMaps and Secrets this node's pods name, watched one by one (what the Node
  // authorizer lets a node read), while some pod names them.
  void follow_references(const Event& e) {
    const auto& pod = api::get<api::Pod>(*e.object);
    if (pod.spec.node_name != node_name_ || is_mirror_pod(pod) || is_static_pod(pod) ||
        pod.metadata.annotations.count(kManifestFileAnnotation)) {
      return;
    }
    const std::string& uid = pod.metadata.uid;
    std::set<ObjectRef> now;
    if (e.type != EventType::kDeleted) now = referenced_objects(pod);
    auto& had = refs_[uid];
    for (const auto& r : now) {
      if (!had.count(r) && refcount_[r]++ == 0) api_source_->add_watch(watch_of(r));
    }
    for (const auto& r : had) {
      if (!now.count(r) && --refcount_[r] == 0) {
        refcount_.erase(r);
        api_source_->remove_watch(watch_of(r).describe());
      }
    }
    if (now.empty()) {
      refs_.erase(uid);
    } else {
      had = std::move(now);
    }
  }

  static kube::WatchSpec watch_of(const ObjectRef& r) {
    auto slash = r.second.find('/');
    return kube::WatchSpec{r.first, r.second.substr(0, slash), "", "metadata.name=" + r.second.substr(slash + 1)};
  }

  // The Node as the API server has it: a new spec.podCIDR configures the pod network.
  void on_node(const Event& e) {
    const auto& n = api::get<api::Node>(*e.object);
    if (host_gw_) {
      host_gw_->on_node(n, e.type == EventType::kDeleted);
      reconcile_routes();
    }
    if (e.type == EventType::kDeleted) return;
    if (n.metadata.name != node_name_ || n.spec.pod_cidr.empty() || n.spec.pod_cidr == written_cidr_) return;
    if (!config_.pod_cidr.empty() && config_.pod_cidr != n.spec.pod_cidr) {
      KLOG(WARNING, "the Node's spec.podCIDR differs from --pod-cidr; using the Node's")
          .kv("flag", config_.pod_cidr).kv("node", n.spec.pod_cidr);
    }
    if (Status s = write_cni_config(n.spec.pod_cidr); !s.ok()) {
      KLOG(ERROR, "cannot configure the pod network").kv("err", s.message());
      return;
    }
    cni_ready_ = true;
  }

  // The kernel's routes brought to what the Nodes say, on the pool; changes arriving
  // meanwhile are taken by one more pass.
  void reconcile_routes() {
    if (routes_busy_) {
      routes_again_ = true;
      return;
    }
    routes_busy_ = true;
    boost::asio::post(pool_, [this, want = host_gw_->desired(), own = host_gw_->own_cidr()] {
      Status s = host_gw_->reconcile(want, own);
      if (!s.ok()) KLOG(WARNING, "cannot set the pod routes").kv("err", s.message());
      boost::asio::post(io_, [this] {
        routes_busy_ = false;
        if (routes_again_) {
          routes_again_ = false;
          reconcile_routes();
        }
      });
    });
  }

  Status write_cni_config(const std::string& pod_cidr) {
    if (pod_cidr.empty()) return Status::Ok();
    // Pods get their network from knode-cni, configured for this node's pod CIDR.
    cni::ConflistOptions net;
    net.pod_cidr = pod_cidr;
    net.path = config_.cni_conf_dir + "/10-knode.conflist";
    net.data_dir = config_.cni_data_dir;
    if (Status s = cni::write_conflist(net); !s.ok()) return s.Wrap("write the CNI network configuration");
    KLOG(INFO, "CNI network configuration written").kv("path", net.path).kv("podCIDR", net.pod_cidr);
    written_cidr_ = pod_cidr;
    return Status::Ok();
  }

  Status serve(const config::KubeletConfig& c) {
    if (c.healthz_port != 0) {
      health_server_ = std::make_unique<http::HttpServer>(io_);
      health_server_->handle("/healthz", http::kubelet_healthz_handler(health_));
      Status s = health_server_->listen(c.healthz_bind_address, static_cast<uint16_t>(c.healthz_port));
      if (!s.ok()) return s.Wrap("serve the kubelet health endpoint");
    }
    if (c.read_only_port != 0) {
      read_only_ = std::make_unique<http::HttpServer>(io_);
      read_only_->handle("/pods", [this](const http::Request&) { return pod_list(); });
      read_only_->handle("/healthz", http::kubelet_healthz_handler(health_));
      // As upstream's read-only port: the kubelet's metrics without authentication.
      read_only_->handle("/metrics", http::metrics_handler(metrics_));
      Status s = read_only_->listen(c.read_only_address, static_cast<uint16_t>(c.read_only_port));
      if (!s.ok()) return s.Wrap("serve the kubelet read-only port");
    }
    return serve_kubelet_api(c);
  }

  // The kubelet API on --port over TLS: in a cluster always (the API server calls it for
  // logs, exec and port-forward), standalone only when given a serving certificate.
  Status serve_kubelet_api(const config::KubeletConfig& c) {
    if (c.port == 0 || (api_ == nullptr && c.tls_cert_file.empty())) return Status::Ok();
    const Clock& clock = RealClock::instance();
    const std::string pki = c.root_dir + "/pki";
    auto cert = load_serving_certificate(c.tls_cert_file, c.tls_private_key_file, pki, node_name_, host_ips_, clock);
    if (!cert.ok()) return cert.status().Wrap("serve the kubelet API");
    const bool bootstrap = c.server_tls_bootstrap && api_ != nullptr && c.tls_cert_file.empty();
    if (bootstrap) {
      // One the cluster's CA signed earlier, when still valid, serves from the start.
      if (auto kept = kube::ServingCertManager::current(pki)) {
        cert->cert_pem = *kept;
        cert->key_pem = *kept;
        cert->cert_path = kube::serving_pem_path(pki);
        cert->generated = false;
      }
    }
    http::TlsOptions tls{cert->cert_pem, cert->key_pem, ""};
    const std::string& ca_file = c.authentication.x509.client_ca_file;
    if (!ca_file.empty()) {
      std::ifstream in(ca_file, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      if (!in || ss.str().empty()) return Status::Error("--client-ca-file " + ca_file + ": cannot read it", ENOENT);
      tls.client_ca_pem = ss.str();
    } else {
      const bool tokens_work = api_ != nullptr && c.authentication.webhook.enabled;
      KLOG(WARNING, std::string("no --client-ca-file: the kubelet API accepts no client certificate, so the API "
                                "server's calls (kubectl logs, exec, port-forward) are refused") +
                        (tokens_work ? "; bearer tokens still work" : ""));
    }
    if (api_ != nullptr) reviewer_ = std::make_unique<ApiReviewer>(*api_);
    // Whole seconds, rounded up: a TTL under a second still caches (0 turns caching off).
    auto ttl = [](const api::Duration& d) { return std::chrono::seconds((d.nanos() + 999999999) / 1000000000); };
    AuthOptions ao;
    ao.token_ttl = ttl(c.authentication.webhook.cache_ttl);
    ao.allowed_ttl = ttl(c.authorization.webhook.cache_authorized_ttl);
    ao.denied_ttl = ttl(c.authorization.webhook.cache_unauthorized_ttl);
    ao.anonymous = c.authentication.anonymous.enabled;
    TokenReviewer* tokens = c.authentication.webhook.enabled ? reviewer_.get() : nullptr;
    AccessReviewer* access = c.authorization.mode == "Webhook" ? reviewer_.get() : nullptr;
    if (access == nullptr && api_ != nullptr) {
      KLOG(WARNING, "--authorization-mode=AlwaysAllow: every authenticated request to the kubelet API is allowed"
                    + std::string(ao.anonymous ? ", anonymous ones too" : ""));
    } else if (access == nullptr && ao.anonymous) {
      KLOG(WARNING, "--anonymous-auth=true without an API server to authorize requests: anyone who reaches the "
                    "kubelet API may use all of it, exec included");
    }
    const char* authz_mode = access != nullptr ? "Webhook" : "AlwaysAllow";
    auth_ = std::make_unique<KubeletAuth>(node_name_, tokens, access, clock, ao);
    stats_ = std::make_unique<StatsProvider>(node_name_, *runtime_, clock);
    KubeletApiOptions api_options;
    api_options.metrics = &metrics_;
    kubelet_api_ = std::make_unique<KubeletApi>(io_, *auth_, *runtime_, [this] { return kubelet_->pods(); }, health_,
                                                *stats_, api_options);
    http::ServerOptions so;
    so.tls = std::move(tls);
    so.max_connections = 512;  // exec sessions and log streams hold theirs
    so.server_name = "knode-kubelet";
    api_server_ = std::make_unique<http::HttpServer>(io_, so);
    kubelet_api_->install(*api_server_);
    Status s = api_server_->listen(c.address, static_cast<uint16_t>(c.port));
    if (!s.ok()) return s.Wrap("serve the kubelet API");
    if (bootstrap) {
      kube::ServingCertManager::Options mo;
      mo.node_name = node_name_;
      if (net::IPAddress::Parse(node_name_)) {
        mo.ips.push_back(node_name_);
      } else {
        mo.dns_names.push_back(node_name_);
      }
      for (const auto& ip : host_ips_) {
        if (net::IPAddress::Parse(ip) && ip != node_name_) mo.ips.push_back(ip);
      }
      mo.cert_dir = pki;
      serving_certs_ = std::make_unique<kube::ServingCertManager>(*api_, std::move(mo), [this](const std::string& pem) {
        // On the loop's thread, where the server's handshakes run.
        boost::asio::post(io_, [this, pem] {
          if (!api_server_) return;
          if (Status st = api_server_->set_certificate(pem, pem); !st.ok()) {
            KLOG(WARNING, "cannot serve the kubelet API with the new certificate").kv("err", st.message());
          } else {
            KLOG(INFO, "kubelet API serving the certificate signed by the cluster's CA");
          }
        });
      });
      serving_certs_->start();
    }
    KLOG(INFO, "kubelet API serving")
        .kv("address", http::Endpoint{c.address, static_cast<uint16_t>(c.port)}.str())
        .kv("cert", cert->cert_path).kv("selfSigned", c.tls_cert_file.empty() && cert->cert_path != kube::serving_pem_path(pki))
        .kv("clientCA", ca_file).kv("authorization", authz_mode).kv("anonymous", ao.anonymous);
    return Status::Ok();
  }

  // GET /pods: a v1 PodList of this node's pods with their status.
  http::Response pod_list() const {
    std::string body = R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":[)";
    bool first = true;
    for (const auto& p : kubelet_->pods()) {
      body += (first ? "" : ",") + api::encode_json(api::Object(p));
      first = false;
    }
    body += "]}";
    return http::Response{200, "application/json", std::move(body), {}};
  }

  boost::asio::io_context& io_;
  ObjectStore& store_;
  std::string node_name_;
  health::HealthRegistry& health_;
  boost::asio::thread_pool pool_;
  metrics::Registry metrics_;  // the kubelet API's /metrics; outlives runtime_
  std::unique_ptr<runtime::ContainerRuntime> runtime_;
  ObjectCache cache_;
  std::unique_ptr<LogManager> logs_;
  std::unique_ptr<NodeEnvironment> env_;
  std::unique_ptr<Kubelet> kubelet_;
  std::unique_ptr<ContainerGc> container_gc_;
  std::unique_ptr<ImageGcManager> image_gc_;
  std::unique_ptr<Housekeeping> housekeeping_;
  std::unique_ptr<EndpointSliceController> slices_;
  std::unique_ptr<NodeReporter> reporter_;
  std::unique_ptr<PodWriter> writer_;
  std::unique_ptr<EventWriter> events_;
  std::unique_ptr<HostGwRoutes> host_gw_;
  bool routes_busy_ = false, routes_again_ = false;
  std::unique_ptr<TokenManager> tokens_;
  std::unique_ptr<PodCertificateApi> pcr_api_;
  std::unique_ptr<PodCertificateManager> pod_certs_;
  kube::ApiServerSource* api_source_ = nullptr;
  std::map<std::string, std::set<ObjectRef>> refs_;  // pod UID -> what it names
  std::map<ObjectRef, int> refcount_;
  std::unique_ptr<http::HttpServer> health_server_, read_only_;
  kube::RestClient* api_ = nullptr;
  std::vector<std::string> host_ips_;
  std::unique_ptr<ApiReviewer> reviewer_;
  std::unique_ptr<KubeletAuth> auth_;
  std::unique_ptr<StatsProvider> stats_;
  std::unique_ptr<KubeletApi> kubelet_api_;
  std::unique_ptr<http::HttpServer> api_server_;
  std::unique_ptr<kube::ServingCertManager> serving_certs_;  // --rotate-server-certificates
  config::KubeletConfig config_;
  std::string written_cidr_;
  std::atomic<bool> cni_ready_{true};
  std::mutex version_mu_;
  std::string runtime_version_;
};

}  // namespace

Result<std::unique_ptr<KubeletServer>> make_kubelet_server(boost::asio::io_context& io, ObjectStore& store,
                                                           const config::KubeletConfig& config,
                                                           const std::string& node_name,
                                                           health::HealthRegistry& health,
                                                           kube::RestClient* api,
                                                           kube::ApiServerSource* api_source) {
  auto server = std::make_unique<Server>(io, store, node_name, health);
  if (Status s = server->init(config, api, api_source); !s.ok()) return s;
  return std::unique_ptr<KubeletServer>(std::move(server));
}

}  // namespace knode::kubelet
