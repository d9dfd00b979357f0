// A streaming server of knode's own, for runtimes that have none (dockerd): what CRI
// runtimes answer Exec, Attach and PortForward with. The runtime asks it for a URL
// (http://127.0.0.1:<port>/exec/<token>), the kubelet API passes the client's upgrade
// request there (server/stream_proxy.h), and this server speaks Kubernetes' streaming
// protocols over SPDY/3.1 (spdy.h):
//
// - exec and attach: remotecommand v4.channel.k8s.io (also v3, v2, v1): the client opens
//   the streams error, stdin, stdout, stderr and resize (as its request said); the
//   backend runs; its exit code goes back on the error stream as a metav1.Status (v4) or
//   as text (older versions);
// - port-forward: portforward.k8s.io: a data and an error stream per request ID, each
//   pair forwarded to one port of the pod's network namespace.
//
// Tokens are random, usable once, and expire after a minute (upstream's request cache).
// WebSocket clients are refused: the API server speaks SPDY to kubelets.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "knode/runtime.h"
#include "knode/status.h"

namespace knode::streaming {

struct TerminalSize {
  uint16_t width = 0, height = 0;
};

// One session's client as a runtime backend sees it.
class Pipe {
 public:
  virtual ~Pipe() = default;
  // Output to the client: stream 1 is stdout (port-forward: the data), 2 stderr. False
  // once the client is gone.
  virtual bool write(int stream, std::string_view data) = 0;
  // What the client sends (stdin, or port-forward's data), from another thread: each
  // piece to on_data, then on_end once. What came before this call is delivered at once.
  virtual void on_input(std::function<void(std::string_view)> on_data, std::function<void()> on_end) = 0;
  // Terminal sizes the client sends (exec and attach with a TTY).
  virtual void on_resize(std::function<void(TerminalSize)> on_size) = 0;
  // Called once when the client goes away (at once if it already has), so that a
  // backend blocked on its runtime can end.
  virtual void on_gone(std::function<void()> gone) = 0;
  // The callbacks run on other threads, and one may still be running when the backend's
  // call returns (the pipe then waits for it and drops them all): they must hold what
  // they use (shared), not refer to the call's locals.
};

// What a runtime does for the sessions.
class Backend {
 public:
  virtual ~Backend() = default;
  // Runs the command with the client's streams; the command's exit code.
  virtual Result<int> exec(const runtime::ExecRequest& request, Pipe& pipe) = 0;
  // Attaches to the container's streams until it exits or the client goes.
  virtual Status attach(const runtime::AttachRequest& request, Pipe& pipe) = 0;
  // Connects to `port` on the sandbox's loopback and carries bytes both ways until both
  // ends closed.
  virtual Status port_forward(const std::string& sandbox_id, int32_t port, Pipe& pipe) = 0;
};

struct ServerOptions {
  std::string address = "127.0.0.1";  // port chosen by the kernel
  std::chrono::milliseconds token_ttl = std::chrono::minutes(1);
  std::chrono::milliseconds stream_creation_timeout = std::chrono::seconds(30);
};

class Server {
 public:
  // Listens at once; connections are served on threads of their own.
  static Result<std::unique_ptr<Server>> start(Backend& backend, ServerOptions options = {});
  ~Server();  // stops listening, ends every session and waits for them

  Result<std::string> exec_url(const runtime::ExecRequest& request);
  Result<std::string> attach_url(const runtime::AttachRequest& request);
  Result<std::string> port_forward_url(const std::string& sandbox_id);

  uint16_t port() const;
  // Sessions being served (tests).
  size_t active_sessions() const;

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace knode::streaming
