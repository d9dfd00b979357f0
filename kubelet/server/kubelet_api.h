// The kubelet API (upstream's "kubelet server" on --port, 10250): what the API server
// calls for `kubectl logs`, `exec`, `attach`, `port-forward` and node proxying, and what
// metrics-server scrapes. Every request is authenticated and authorized first (auth.h);
// then:
//
//   GET  /healthz                           "ok", or 503 with the reason
//   GET  /pods                              the node's pods (v1 PodList), as the read-only port
//   GET  /metrics                           process_*, kubelet_running_pods, ...
//   GET  /stats/summary                     stats/v1alpha1 Summary (stats.h)
//   GET  /containerLogs/{ns}/{pod}/{c}      follow, previous, tailLines (tail), limitBytes,
//                                           timestamps, sinceSeconds, sinceTime, stream
//   GET|POST /exec/{ns}/{pod}[/{uid}]/{c}   command=..., input, output, error, tty ("1")
//   GET|POST /attach/{ns}/{pod}[/{uid}]/{c} input, output, error, tty
//   GET|POST /portForward/{ns}/{pod}[/{uid}] port=... (WebSocket clients)
//   POST /run/{ns}/{pod}[/{uid}]/{c}        cmd="..." (runs it for at most a minute, answers
//                                           its output)
//
// exec, attach and portForward ask the runtime for its streaming URL and proxy the
// upgraded connection to it (stream_proxy.h). Answers and errors follow upstream's texts
// and statuses. Blocking work (reviews, runtime calls, reading logs) runs on a small pool
// of its own; each `follow` stream has a thread of its own while it lasts.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "knode/api/pod.h"
#include "knode/health.h"
#include "knode/http/server.h"
#include "knode/metrics.h"
#include "knode/runtime.h"
#include "server/auth.h"
#include "server/stats.h"

namespace knode::kubelet {

struct KubeletApiOptions {
  std::size_t pool_threads = 4;
  std::size_t max_log_follows = 64;  // concurrent `kubectl logs -f` streams; beyond: 429
  std::chrono::milliseconds streaming_timeout{std::chrono::seconds(30)};  // the runtime's handshake
  std::chrono::milliseconds follow_check{std::chrono::seconds(1)};
  // The registry /metrics serves (it must outlive the KubeletApi, and carries the process_*
  // metrics); none: one of its own, with them.
  metrics::Registry* metrics = nullptr;
};

class KubeletApi {
 public:
  // `pods` is called on the io_context's thread only.
  KubeletApi(boost::asio::io_context& io, KubeletAuth& auth, runtime::ContainerRuntime& runtime,
             std::function<std::vector<api::Pod>()> pods, const health::HealthRegistry& health,
             StatsProvider& stats, KubeletApiOptions options = {});
  ~KubeletApi();
  KubeletApi(const KubeletApi&) = delete;
  KubeletApi& operator=(const KubeletApi&) = delete;

  // Serves every path of `server` (a prefix handler on "/").
  void install(http::HttpServer& server);
  // Ends the log streams and waits for the work in flight. Idempotent.
  void stop();

  metrics::Registry& metrics() { return metrics_; }
  // `follow` streams still running.
  std::size_t active_follows();

 private:
  struct Follow;
  struct LogRequest;
  using ExchangePtr = std::shared_ptr<http::Exchange>;

  void on_request(const http::Request& r, ExchangePtr ex);
  void route(const http::Request& r, ExchangePtr ex);
  void container_logs(const http::Request& r, const std::vector<std::string>& parts,
                      ExchangePtr ex);
  void stream_logs(const LogRequest& lr, ExchangePtr ex, int stop_fd);
  void streaming(const http::Request& r, const std::string& kind,
                 const std::vector<std::string>& parts, ExchangePtr ex);
  void run(const http::Request& r, const std::vector<std::string>& parts, ExchangePtr ex);
  bool start_follow(std::function<void(int stop_fd)> body, ExchangePtr ex);
  void reap_follows();

  boost::asio::io_context& io_;
  KubeletAuth& auth_;
  runtime::ContainerRuntime& runtime_;
  std::function<std::vector<api::Pod>()> pods_;
  const health::HealthRegistry& health_;
  StatsProvider& stats_;
  const KubeletApiOptions options_;
  std::unique_ptr<metrics::Registry> own_metrics_;  // when options_.metrics is none
  metrics::Registry& metrics_;
  metrics::Gauge& running_pods_;
  metrics::CounterFamily& requests_;
  boost::asio::thread_pool pool_;
  std::mutex mu_;
  bool stopped_ = false;
  std::list<std::shared_ptr<Follow>> follows_;
};

}  // namespace knode::kubelet
