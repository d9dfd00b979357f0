#include "server/kubelet_api.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <charconv>
#include <cstring>
#include <set>
#include <sstream>

#include "knode/api/codec.h"
#include "knode/log.h"
#include "labels.h"
#include "logs/log_reader.h"
#include "server/stream_proxy.h"

namespace knode::kubelet {
namespace {

constexpr const char* kTextPlain = "text/plain; charset=utf-8";
constexpr int64_t kRunTimeoutSeconds = 60;

http::Response text(int status, std::string body) {
  return http::Response{status, kTextPlain, std::move(body), {}};
}

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : path) {
    if (c == '/') {
      if (!cur.empty()) out.push_back(http::url_decode(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(http::url_decode(cur));
  return out;
}

// Go's strconv.ParseBool.
std::optional<bool> parse_bool(const std::string& v) {
  if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True") return true;
  if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False")
    return false;
  return std::nullopt;
}

std::optional<int64_t> parse_int(const std::string& v) {
  int64_t x = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || end != v.data() + v.size()) return std::nullopt;
  return x;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string strip_scheme(const std::string& id) {
  auto sep = id.find("://");
  return sep == std::string::npos ? id : id.substr(sep + 3);
}

const api::Pod* find_pod(const std::vector<api::Pod>& pods, const std::string& ns,
                         const std::string& name) {
  for (const auto& p : pods) {
    if (p.metadata.namespace_ == ns && p.metadata.name == name) return &p;
  }
  return nullptr;
}

const api::ContainerStatus* find_status(const api::Pod& pod, const std::string& name) {
  for (const auto* list : {&pod.status.container_statuses, &pod.status.init_container_statuses,
                           &pod.status.ephemeral_container_statuses}) {
    for (const auto& cs : *list) {
      if (cs.name == name) return &cs;
    }
  }
  return nullptr;
}

bool has_container_spec(const api::Pod& pod, const std::string& name) {
  for (const auto* list : {&pod.spec.containers, &pod.spec.init_containers, &pod.spec.ephemeral_containers}) {
    for (const auto& c : *list) {
      if (c.name == name) return true;
    }
  }
  return false;
}

// Upstream's validateContainerLogStatus: which container's log `kubectl logs` means.
Result<std::string> log_container_id(const api::Pod& pod, const std::string& container,
                                     bool previous) {
  const std::string& pod_name = pod.metadata.name;
  const auto* cs = find_status(pod, container);
  if (cs == nullptr) {
    return Status::Error("container " + quoted(container) + " in pod " + quoted(pod_name) +
                         " is not available");
  }
  const auto& last = cs->last_state.terminated;
  if (previous) {
    if (!last || last->container_id.empty()) {
      return Status::Error("previous terminated container " + quoted(container) + " in pod " +
                           quoted(pod_name) + " not found");
    }
    return last->container_id;
  }
  if (cs->state.running) return cs->container_id;
  if (const auto& t = cs->state.terminated) {
    if (!t->container_id.empty()) return t->container_id;
    if (last && !last->container_id.empty()) return last->container_id;
    return Status::Error("container " + quoted(container) + " in pod " + quoted(pod_name) +
                         " is terminated");
  }
  if (last) {
    if (last->container_id.empty()) {
      return Status::Error("container " + quoted(container) + " in pod " + quoted(pod_name) +
                           " is terminated");
    }
    return last->container_id;
  }
  if (const auto& w = cs->state.waiting) {
    if (w->reason == "ErrImagePull") {
      return Status::Error("container " + quoted(container) + " in pod " + quoted(pod_name) +
                           " is waiting to start: image can't be pulled");
    }
    if (w->reason == "ImagePullBackOff") {
      return Status::Error("container " + quoted(container) + " in pod " + quoted(pod_name) +
                           " is waiting to start: trying and failing to pull image");
    }
    return Status::Error("container " + quoted(container) + " in pod " + quoted(pod_name) +
                         " is waiting to start: " + w->reason);
  }
  return Status::Error("container " + quoted(container) + " in pod " + quoted(pod_name) +
                       " is waiting to start - no logs yet");
}

std::string pod_list_json(const std::vector<api::Pod>& pods) {
  std::string body = R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":[)";
  bool first = true;
  for (const auto& p : pods) {
    body += (first ? "" : ",") + api::encode_json(api::Object(p));
    first = false;
  }
  return body + "]}";
}

}  // namespace

struct KubeletApi::Follow {
  std::thread thread;
  int stop_fd = -1;
  std::atomic<bool> done{false};
  ~Follow() {
    if (thread.joinable()) thread.join();
    if (stop_fd >= 0) ::close(stop_fd);
  }
  void wake() const {
    uint64_t one = 1;
    (void)::write(stop_fd, &one, sizeof one);
  }
};

struct KubeletApi::LogRequest {
  std::string container_id;
  LogReadOptions options;
};

KubeletApi::KubeletApi(boost::asio::io_context& io, KubeletAuth& auth,
                       runtime::ContainerRuntime& runtime,
                       std::function<std::vector<api::Pod>()> pods,
                       const health::HealthRegistry& health, StatsProvider& stats,
                       KubeletApiOptions options)
    : io_(io),
      auth_(auth),
      runtime_(runtime),
      pods_(std::move(pods)),
      health_(health),
      stats_(stats),
      options_(options),
      own_metrics_(options.metrics ? nullptr : std::make_unique<metrics::Registry>()),
      metrics_(options.metrics ? *options.metrics : *own_metrics_),
      running_pods_(
          metrics_.gauge("kubelet_running_pods", "Number of pods that have a running pod sandbox")),
      requests_(
          metrics_.counter_family("kubelet_http_requests_total",
                                  "Number of the http requests received since the server started",
                                  {"method", "path", "server_type"})),
      pool_(options.pool_threads) {
  if (own_metrics_) metrics::register_process_metrics(metrics_);  // a given registry has them
}

KubeletApi::~KubeletApi() { stop(); }

void KubeletApi::install(http::HttpServer& server) {
  server.handle_prefix(
      "/", [this](const http::Request& r, ExchangePtr ex) { on_request(r, std::move(ex)); });
}

void KubeletApi::stop() {
  std::list<std::shared_ptr<Follow>> follows;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    follows.swap(follows_);
  }
  for (auto& f : follows) f->wake();
  follows.clear();  // joins
  pool_.join();
}

// On the loop: authentication and authorization may ask the API server, so they run on
// the pool; the request is routed back on the loop, where the pods are read.
void KubeletApi::on_request(const http::Request& r, ExchangePtr ex) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return ex->respond(text(503, "the kubelet is stopping\n"));
  }
  // The path's first segment, of the known ones only: anyone can send any path.
  static const std::set<std::string> kKnown = {"healthz", "pods",          "metrics",
                                               "stats",   "containerLogs", "exec",
                                               "attach",  "portForward",   "run"};
  auto parts = segments(r.path);
  const std::string bucket = !parts.empty() && kKnown.count(parts[0]) ? parts[0] : "other";
  static const std::set<std::string> kMethods = {"GET",   "HEAD",   "POST",   "PUT",
                                                 "PATCH", "DELETE", "OPTIONS"};
  requests_.with({kMethods.count(r.method) ? r.method : "other", bucket, "readwrite"}).inc();
  boost::asio::post(pool_, [this, r, ex] {
    AuthOutcome a = auth_.check(r);
    if (!a.ok()) return ex->respond(text(a.status, a.message));
    KLOGV(4, "kubelet API request")
        .kv("user", a.user.name)
        .kv("method", r.method)
        .kv("path", r.path);
    boost::asio::post(io_, [this, r, ex] { route(r, ex); });
  });
}

void KubeletApi::route(const http::Request& r, ExchangePtr ex) {
  const auto parts = segments(r.path);
  const std::string first = parts.empty() ? "" : parts[0];
  auto only = [&](std::initializer_list<const char*> methods) {
    for (const char* m : methods) {
      if (r.method == m) return true;
    }
    ex->respond(text(405, "405: Method Not Allowed"));
    return false;
  };
  if (r.path == "/healthz") {
    if (!only({"GET", "HEAD"})) return;
    std::string reason = health_.unhealthy_reason();
    return ex->respond(reason.empty() ? text(200, "ok") : text(503, reason + "\n"));
  }
  if (r.path == "/pods" || r.path == "/pods/") {
    if (!only({"GET"})) return;
    return ex->respond(http::Response{200, "application/json", pod_list_json(pods_()), {}});
  }
  if (r.path == "/metrics") {
    if (!only({"GET"})) return;
    running_pods_.set(static_cast<double>(pods_().size()));
    return ex->respond(
        http::Response{200, std::string(metrics::kContentType), metrics_.render(), {}});
  }
  if (r.path == "/stats/summary" || r.path == "/stats/summary/") {
    if (!only({"GET", "POST"})) return;
    boost::asio::post(pool_, [this, ex, pods = pods_()] {
      ex->respond(http::Response{200, "application/json", stats_.summary(pods), {}});
    });
    return;
  }
  if (first == "containerLogs") {
    if (!only({"GET"})) return;
    return container_logs(r, parts, ex);
  }
  if (first == "exec" || first == "attach" || first == "portForward") {
    if (!only({"GET", "POST"})) return;
    return streaming(r, first, parts, ex);
  }
  if (first == "run") {
    if (!only({"POST"})) return;
    return run(r, parts, ex);
  }
  ex->respond(text(404, "404 page not found\n"));
}

void KubeletApi::container_logs(const http::Request& r, const std::vector<std::string>& parts,
                                ExchangePtr ex) {
  // Upstream's texts, JSON-looking bodies included.
  if (parts.size() < 3) return ex->respond(text(400, R"({"message": "Missing podID."})"));
  if (parts.size() < 4) return ex->respond(text(400, R"({"message": "Missing container name."})"));
  const std::string &ns = parts[1], &pod_name = parts[2], &container = parts[3];

  auto query = http::parse_query(r.query);
  LogReadOptions o;
  bool previous = false, bad = false, invalid = false;
  std::optional<int64_t> since_seconds;
  std::optional<api::Time> since_time;
  std::string stream = "All";
  for (const auto& [k, v] : query) {
    if (k == "follow" || k == "previous" || k == "timestamps" ||
        k == "insecureSkipTLSVerifyBackend") {
      auto b = parse_bool(v);
      if (!b) {
        bad = true;
        continue;
      }
      if (k == "follow") o.follow = *b;
      if (k == "previous") previous = *b;
      if (k == "timestamps") o.timestamps = *b;
    } else if (k == "tailLines" || k == "tail") {
      if (k == "tail" && v == "all") continue;
      auto n = parse_int(v);
      if (!n) {
        bad = true;
      } else if (*n < 0) {
        invalid = true;
      } else {
        o.tail_lines = *n;
      }
    } else if (k == "limitBytes" || k == "sinceSeconds") {
      auto n = parse_int(v);
      if (!n) {
        bad = true;
      } else if (*n < 1) {
        invalid = true;
      } else if (k == "limitBytes") {
        o.limit_bytes = *n;
      } else {
        since_seconds = *n;
      }
    } else if (k == "sinceTime") {
      since_time = api::Time::Parse(v);
      if (!since_time) bad = true;
    } else if (k == "stream") {
      stream = v;
    }
  }
  if (bad) return ex->respond(text(400, R"({"message": "Unable to decode query."})"));
  if (invalid || (since_seconds && since_time))
    return ex->respond(text(422, R"({"message": "Invalid request."})"));
  if (stream == "Stdout") {
    o.stderr_ = false;
  } else if (stream == "Stderr") {
    o.stdout_ = false;
  } else if (stream != "All") {
    return ex->respond(text(400, "invalid stream type " + quoted(stream)));
  }
  const auto pods = pods_();
  const api::Pod* pod = find_pod(pods, ns, pod_name);
  if (pod == nullptr) return ex->respond(text(404, "pod " + quoted(pod_name) + " does not exist"));
  if (!has_container_spec(*pod, container)) {
    return ex->respond(
        text(404, "container " + quoted(container) + " not found in pod " + quoted(pod_name)));
  }
  auto id = log_container_id(*pod, container, previous);
  if (!id.ok()) return ex->respond(text(400, id.status().message()));
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  if (since_seconds) o.since_unix_nanos = now - *since_seconds * 1000000000;
  if (since_time && since_time->unix_nanos() > o.since_unix_nanos)
    o.since_unix_nanos = since_time->unix_nanos();

  // As upstream: the head goes out once the request is valid (kubectl -f sees it at
  // once); trouble reading the file shows in the body.
  LogRequest lr{strip_scheme(*id), o};
  if (o.follow) {
    if (!start_follow([this, lr, ex](int stop_fd) { stream_logs(lr, ex, stop_fd); }, ex)) {
      ex->respond(text(429, "too many log streams followed at once; try again later\n"));
    }
    return;
  }
  ex->start_stream(200, kTextPlain);
  boost::asio::post(pool_, [this, lr, ex] { stream_logs(lr, ex, -1); });
}

void KubeletApi::stream_logs(const LogRequest& lr, ExchangePtr ex, int stop_fd) {
  auto st = runtime_.container_status(lr.container_id);
  if (!st.ok()) {
    ex->write("unable to retrieve container logs for " + lr.container_id + ": " +
              st.status().message());
    return ex->end_stream();
  }
  LogFollow follow;
  follow.stop_fd = stop_fd;
  follow.force_check = options_.follow_check;
  follow.container_running = [this, id = lr.container_id]() -> Result<bool> {
    auto s = runtime_.container_status(id);
    if (!s.ok()) {
      if (s.status().error_number() == ENOENT) return false;
      if (s.status().error_number() == ECONNREFUSED)
        return true;  // the runtime restarting: keep waiting
      return s.status();
    }
    return s->state == runtime::ContainerState::kRunning;
  };
  Status s = read_container_log(
      st->log_path, lr.options,
      [&](std::string_view piece) { return ex->write(std::string(piece)); },
      lr.options.follow ? &follow : nullptr);
  if (!s.ok()) {
    KLOGV(2, "kubelet API: reading a container log failed")
        .kv("container", lr.container_id)
        .kv("err", s.message());
    ex->write(s.message());
  }
  ex->end_stream();
}

// Starts the stream's head, then its thread, when there is room for one more.
bool KubeletApi::start_follow(std::function<void(int)> body, ExchangePtr ex) {
  auto f = std::make_shared<Follow>();
  f->stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (f->stop_fd < 0) {
    KLOG(ERROR, "kubelet API: eventfd").kv("err", std::strerror(errno));
    return false;
  }
  reap_follows();
  {
    std::lock_guard lock(mu_);
    if (stopped_) return false;
    if (follows_.size() >= options_.max_log_follows) {
      KLOG(WARNING, "kubelet API: too many log streams followed at once")
          .kv("limit", options_.max_log_follows);
      return false;
    }
    follows_.push_back(f);
  }
  ex->on_cancel([w = std::weak_ptr<Follow>(f)] {
    if (auto p = w.lock()) p->wake();
  });
  ex->start_stream(200, kTextPlain);
  Follow* raw = f.get();
  raw->thread = std::thread([raw, body = std::move(body)] {
    body(raw->stop_fd);
    raw->done = true;
  });
  return true;
}

std::size_t KubeletApi::active_follows() {
  reap_follows();
  std::lock_guard lock(mu_);
  return follows_.size();
}

void KubeletApi::reap_follows() {
  std::list<std::shared_ptr<Follow>> done;
  {
    std::lock_guard lock(mu_);
    for (auto it = follows_.begin(); it != follows_.end();) {
      if ((*it)->done) {
        done.push_back(std::move(*it));
        it = follows_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // joined here, outside the lock
}

void KubeletApi::streaming(const http::Request& r, const std::string& kind,
                           const std::vector<std::string>& parts, ExchangePtr ex) {
  const bool port_forward = kind == "portForward";
  // /exec/{ns}/{pod}/{container} or /exec/{ns}/{pod}/{uid}/{container}; portForward has no
  // container.
  const std::size_t want = port_forward ? 3 : 4;
  if (parts.size() != want && parts.size() != want + 1)
    return ex->respond(text(404, "404 page not found\n"));
  const std::string &ns = parts[1], &pod_name = parts[2];
  const std::string uid = parts.size() == want + 1 ? parts[3] : "";
  const std::string container = port_forward ? "" : parts.back();

  runtime::ExecRequest exec;
  std::vector<int32_t> ports;
  if (!port_forward) {
    exec.tty = r.query_value("tty") == "1";
    exec.stdin_ = r.query_value("input") == "1";
    exec.stdout_ = r.query_value("output") == "1";
    exec.stderr_ = r.query_value("error") == "1";
    if (exec.tty && exec.stderr_) exec.stderr_ = false;  // a terminal has one output, as upstream
    if (!exec.stdin_ && !exec.stdout_ && !exec.stderr_) {
      return ex->respond(text(400, "you must specify at least 1 of stdin, stdout, stderr"));
    }
    if (kind == "exec") {
      exec.cmd = r.query_values("command");
      if (exec.cmd.empty()) return ex->respond(text(400, "you must specify a command"));
    }
  } else {
    for (const auto& p : r.query_values("port")) {
      auto n = parse_int(p);
      if (!n || *n < 1 || *n > 65535) return ex->respond(text(400, "invalid port " + quoted(p)));
      ports.push_back(static_cast<int32_t>(*n));
    }
  }
  if (!is_upgrade_request(r)) return ex->respond(text(400, "Upgrade request required"));

  const auto pods = pods_();
  const api::Pod* pod = find_pod(pods, ns, pod_name);
  if (pod == nullptr || (!uid.empty() && pod->metadata.uid != uid)) {
    return ex->respond(text(404, "pod does not exist"));
  }
  const std::string pod_uid = pod->metadata.uid;
  if (!port_forward) {
    const auto* cs = find_status(*pod, container);
    if (cs == nullptr || !cs->state.running || cs->container_id.empty()) {
      return ex->respond(text(404, "container not found (" + quoted(container) + ")"));
    }
    exec.container_id = strip_scheme(cs->container_id);
  }
  boost::asio::post(pool_, [this, r, kind, exec, ports, pod_uid, ex] {
    Result<std::string> url = Status::Ok();
    if (kind == "exec") {
      url = runtime_.exec(exec);
    } else if (kind == "attach") {
      url = runtime_.attach({exec.container_id, exec.tty, exec.stdin_, exec.stdout_, exec.stderr_});
    } else {
      runtime::SandboxFilter f;
      f.state = runtime::SandboxState::kReady;
      f.label_selector[kPodUidLabel] = pod_uid;
      auto sandboxes = runtime_.list_pod_sandboxes(f);
      if (!sandboxes.ok()) {
        url = sandboxes.status();
      } else if (sandboxes->empty()) {
        url = Status::Error("pod " + pod_uid + " has no ready sandbox", ENOENT);
      } else {
        const auto newest = std::max_element(
            sandboxes->begin(), sandboxes->end(),
            [](const auto& a, const auto& b) { return a.created_at < b.created_at; });
        url = runtime_.port_forward(newest->id, ports);
      }
    }
    if (!url.ok()) {
      const int err = url.status().error_number();
      return ex->respond(text(err == ENOENT ? 404 : 500, url.status().message()));
    }
    if (Status s = proxy_upgrade(r, *url, *ex, options_.streaming_timeout); !s.ok()) {
      KLOGV(2, "kubelet API: streaming proxy failed")
          .kv("kind", kind)
          .kv("url", *url)
          .kv("err", s.message());
      ex->respond(text(500, s.message()));
    }
  });
}

void KubeletApi::run(const http::Request& r, const std::vector<std::string>& parts,
                     ExchangePtr ex) {
  if (parts.size() != 4 && parts.size() != 5) return ex->respond(text(404, "404 page not found\n"));
  const auto pods = pods_();
  const api::Pod* pod = find_pod(pods, parts[1], parts[2]);
  if (pod == nullptr || (parts.size() == 5 && pod->metadata.uid != parts[3])) {
    return ex->respond(text(404, "pod does not exist"));
  }
  const auto* cs = find_status(*pod, parts.back());
  if (cs == nullptr || !cs->state.running || cs->container_id.empty()) {
    return ex->respond(text(404, "container not found (" + quoted(parts.back()) + ")"));
  }
  // For legacy reasons, run takes one "cmd" split at white space.
  std::vector<std::string> cmd;
  std::istringstream words(r.query_value("cmd").value_or(""));
  for (std::string w; words >> w;) cmd.push_back(w);
  if (cmd.empty()) return ex->respond(text(400, "you must specify a command"));
  boost::asio::post(pool_, [this, id = strip_scheme(cs->container_id), cmd, ex] {
    // Upstream's has no timeout but ends with its request; here a pool thread waits, so
    // the command gets a minute.
    auto out = runtime_.exec_sync(id, cmd, kRunTimeoutSeconds);
    if (!out.ok()) return ex->respond(text(500, out.status().message()));
    ex->respond(text(200, out->stdout_ + out->stderr_));
  });
}

}  // namespace knode::kubelet
