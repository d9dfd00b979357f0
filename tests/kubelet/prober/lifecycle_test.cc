// run_handler: postStart/preStop handlers against FakeRuntime (exec) and real servers on
// 127.0.0.1 (httpGet), the sleep handler with an injected sleeper and with the real one cut
// short, and the budget that bounds each.
#include "prober/lifecycle.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "exec_runtime.h"
#include "test_servers.h"

namespace api = knode::api;
using knode::Status;
using namespace knode::kubelet::prober;
using namespace knode::kubelet::prober::testing;
using namespace std::chrono_literals;

namespace {

ProbeTarget loopback_pod() {
  ProbeTarget t;
  t.pod_name = "web-0";
  t.pod_namespace = "default";
  t.pod_uid = "uid-1";
  t.pod_ip = "127.0.0.1";
  t.container_name = "web";
  return t;
}

api::LifecycleHandler exec_hook(std::vector<std::string> command) {
  api::LifecycleHandler h;
  h.exec = api::ExecAction{std::move(command)};
  return h;
}

api::LifecycleHandler http_hook(int port, const std::string& path, const std::string& scheme = "") {
  api::LifecycleHandler h;
  api::HTTPGetAction a;
  a.path = path;
  a.port = api::IntOrString::Int(port);
  a.scheme = scheme;
  h.http_get = a;
  return h;
}

api::LifecycleHandler sleep_hook(int64_t seconds) {
  api::LifecycleHandler h;
  h.sleep = api::SleepAction{seconds};
  return h;
}

// Records what it was asked to wait, and waits not at all.
struct FakeSleeper {
  std::vector<std::chrono::milliseconds> asked;
  bool finish = true;
  Sleeper sleeper() {
    return [this](std::chrono::milliseconds d, std::stop_token) {
      asked.push_back(d);
      return finish;
    };
  }
};

const char* kPod = "\"web-0_default(uid-1)\"";

}  // namespace

// ---- exec ----

TEST(ExecHook, ZeroExitSucceeds) {
  ExecRuntime rt;
  rt.fake.script_exec("", {"sh", "-c", "touch /ready"}, knode::runtime::ExecResult{"", "", 0});
  auto t = loopback_pod();
  t.runtime = &rt;
  t.container_id = rt.container_id;
  EXPECT_TRUE(run_handler(exec_hook({"sh", "-c", "touch /ready"}), t, 0s).ok());
  EXPECT_EQ(rt.exec_timeouts(), (std::vector<int64_t>{0}));  // no budget: no timeout
}

TEST(ExecHook, NonZeroExitFailsWithUpstreamsMessage) {
  ExecRuntime rt;
  rt.fake.script_exec("", {"sh", "-c", "exit 3"},
                      knode::runtime::ExecResult{"out\n", "bad thing\n", 3});
  auto t = loopback_pod();
  t.runtime = &rt;
  t.container_id = rt.container_id;
  Status s = run_handler(exec_hook({"sh", "-c", "exit 3"}), t, 30s);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), std::string("Exec lifecycle hook ([sh -c exit 3]) for Container \"web\" "
                                     "in Pod ") +
                             kPod +
                             " failed - error: command 'sh -c exit 3' exited with 3: bad thing\n"
                             ", message: \"out\\nbad thing\\n\"");
  EXPECT_EQ(rt.exec_timeouts(), (std::vector<int64_t>{30}));  // the budget bounds the exec
}

TEST(ExecHook, CommandIsNotExpanded) {
  ExecRuntime rt;
  rt.fake.script_exec("", {"echo", "$(HOME)"}, knode::runtime::ExecResult{"", "", 0});
  auto t = loopback_pod();
  t.runtime = &rt;
  t.container_id = rt.container_id;
  t.env = {{"HOME", "/root", std::nullopt}};
  EXPECT_TRUE(run_handler(exec_hook({"echo", "$(HOME)"}), t, 0s).ok());  // as upstream: verbatim
}

TEST(ExecHook, PastTheBudgetFailsWithETIMEDOUT) {
  ExecRuntime rt;
  rt.fake.script_exec("", {"sleep", "100"},
                      Status::Error("CRI ExecSync ctr: DeadlineExceeded: deadline", ETIMEDOUT));
  auto t = loopback_pod();
  t.runtime = &rt;
  t.container_id = rt.container_id;
  Status s = run_handler(exec_hook({"sleep", "100"}), t, 5s);
  EXPECT_EQ(s.error_number(), ETIMEDOUT);
  EXPECT_NE(s.message().find("error: command \"sleep 100\" timed out"), std::string::npos)
      << s.message();
}

// ---- httpGet ----

TEST(HttpHook, AnswerSucceedsWhateverTheStatus) {
  TestHttpServer server;
  server.route("/ok", 200);
  server.route("/broken", 500);
  EXPECT_TRUE(run_handler(http_hook(server.port(), "/ok"), loopback_pod(), 5s).ok());
  // Upstream's handler runner does not look at the status (kubernetes#56963): the hook ran.
  EXPECT_TRUE(run_handler(http_hook(server.port(), "/broken"), loopback_pod(), 5s).ok());
  auto seen = server.requests("/ok");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].header("User-Agent"), "kube-lifecycle/1.37");
  EXPECT_EQ(seen[0].header("Accept"), "*/*");
}

TEST(HttpHook, NoAnswerFailsWithUpstreamsMessage) {
  RefusingPort closed;
  Status s = run_handler(http_hook(closed.port(), "/hook"), loopback_pod(), 5s);
  ASSERT_FALSE(s.ok());
  const std::string addr = "127.0.0.1:" + std::to_string(closed.port());
  EXPECT_EQ(s.message(), std::string("HTTP lifecycle hook (/hook) for Container \"web\" in Pod ") +
                             kPod + " failed - error: Get \"http://" + addr + "/hook\": dial tcp " +
                             addr + ": connect: connection refused");
  EXPECT_EQ(s.error_number(), ECONNREFUSED);
}

TEST(HttpHook, NamedPortAndHeaders) {
  TestHttpServer server;
  server.route("/hook", 204);
  auto t = loopback_pod();
  t.ports = {{"admin", 0, server.port(), "TCP", ""}};
  auto h = http_hook(0, "/hook");
  h.http_get->port = api::IntOrString::String("admin");
  h.http_get->http_headers = {{"Authorization", "Bearer x"}};
  EXPECT_TRUE(run_handler(h, t, 5s).ok());
  EXPECT_EQ(server.requests("/hook").at(0).header("Authorization"), "Bearer x");
}

TEST(HttpHook, HttpsToAPlainServerIsRetriedOverHttpWithoutCredentials) {
  TestHttpServer server;
  server.route("/hook", 200);
  auto h = http_hook(server.port(), "/hook", "HTTPS");
  h.http_get->http_headers = {{"Authorization", "Bearer secret"}, {"X-Keep", "1"}};
  EXPECT_TRUE(run_handler(h, loopback_pod(), 5s).ok());
  auto seen = server.requests("/hook");
  ASSERT_EQ(seen.size(), 1u);  // the TLS attempt never made it to a request
  EXPECT_EQ(seen[0].count("Authorization"), 0);
  EXPECT_EQ(seen[0].header("X-Keep"), "1");
}

TEST(HttpHook, HttpsHookOverTls) {
  TestHttpServer server(TestHttpServer::Mode::kHttps);
  server.route("/hook", 200);
  EXPECT_TRUE(run_handler(http_hook(server.port(), "/hook", "HTTPS"), loopback_pod(), 5s).ok());
  EXPECT_EQ(server.requests("/hook").size(), 1u);
}

TEST(HttpHook, ServerThatNeverAnswersFailsAtTheBudget) {
  TestHttpServer server;
  server.route("/hang", [](const SeenRequest&) {
    Reply r;
    r.hang = true;
    return r;
  });
  const auto start = std::chrono::steady_clock::now();
  Status s = run_handler(http_hook(server.port(), "/hang"), loopback_pod(), 1s);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.error_number(), ETIMEDOUT);
  EXPECT_GE(took, 950ms);
  EXPECT_LT(took, 1500ms);
}

TEST(HttpHook, StopEndsARequestInFlight) {
  TestHttpServer server;
  std::stop_source stop;
  // The request is in flight when the server sees it: that is when the pod worker's grace
  // period "runs out".
  server.route("/hang", [&stop](const SeenRequest&) {
    stop.request_stop();
    Reply r;
    r.hang = true;
    return r;
  });
  HandlerOptions options;
  options.stop = stop.get_token();
  const auto start = std::chrono::steady_clock::now();
  Status s = run_handler(http_hook(server.port(), "/hang"), loopback_pod(), 0s, options);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.error_number(), ECANCELED) << s.message();
  EXPECT_LT(took, 5s);  // no budget: only the stop request ended it
}

TEST(HttpHook, PodWithoutIpFails) {
  auto t = loopback_pod();
  t.pod_ip = "";
  Status s = run_handler(http_hook(80, "/hook"), t, 5s);
  EXPECT_NE(s.message().find("failed to find networking container"), std::string::npos);
}

// ---- sleep ----

TEST(SleepHook, WaitsItsSeconds) {
  FakeSleeper sleeper;
  HandlerOptions options;
  options.sleeper = sleeper.sleeper();
  EXPECT_TRUE(run_handler(sleep_hook(5), loopback_pod(), 30s, options).ok());
  EXPECT_EQ(sleeper.asked, (std::vector<std::chrono::milliseconds>{5s}));
}

TEST(SleepHook, ZeroSecondsReturnsAtOnce) {
  FakeSleeper sleeper;
  HandlerOptions options;
  options.sleeper = sleeper.sleeper();
  EXPECT_TRUE(run_handler(sleep_hook(0), loopback_pod(), 30s, options).ok());
  EXPECT_TRUE(sleeper.asked.empty());
}

TEST(SleepHook, LongerThanTheBudgetWaitsTheBudgetAndFails) {
  FakeSleeper sleeper;
  HandlerOptions options;
  options.sleeper = sleeper.sleeper();
  Status s = run_handler(sleep_hook(60), loopback_pod(), 30s, options);
  EXPECT_EQ(sleeper.asked, (std::vector<std::chrono::milliseconds>{30s}));
  EXPECT_EQ(s.error_number(), ETIMEDOUT);
}

TEST(SleepHook, CutShortFailsAsUpstreamSays) {
  FakeSleeper sleeper;
  sleeper.finish = false;
  HandlerOptions options;
  options.sleeper = sleeper.sleeper();
  Status s = run_handler(sleep_hook(5), loopback_pod(), 0s, options);
  EXPECT_EQ(s.error_number(), ECANCELED);
  EXPECT_EQ(s.message(), std::string("Sleep lifecycle hook (5) for Container \"web\" in Pod ") +
                             kPod +
                             " failed - error: container terminated before sleep hook finished");
}

TEST(SleepHook, RealSleepEndsOnAStopRequest) {
  // The real sleeper, entered for an hour, then stopped from this thread.
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  HandlerOptions options;
  std::stop_source stop;
  options.stop = stop.get_token();
  options.sleeper = [&](std::chrono::milliseconds d, std::stop_token token) {
    {
      std::lock_guard lock(mu);
      entered = true;
    }
    cv.notify_all();
    return sleep_unless_stopped(d, token);
  };
  Status result;
  const auto start = std::chrono::steady_clock::now();
  std::thread hook([&] { result = run_handler(sleep_hook(3600), loopback_pod(), 0s, options); });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  stop.request_stop();
  hook.join();
  EXPECT_EQ(result.error_number(), ECANCELED);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(SleepHook, RealSleepWaitsWithoutAStop) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(sleep_unless_stopped(50ms, std::stop_token()));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
}

// ---- the rest ----

TEST(Hook, TcpSocketCannotRunAsUpstreamsCannot) {
  api::LifecycleHandler h;
  h.tcp_socket = api::TCPSocketAction{api::IntOrString::Int(80), ""};
  Status s = run_handler(h, loopback_pod(), 5s);
  EXPECT_EQ(s.error_number(), EINVAL);
  EXPECT_EQ(s.message(),
            "Cannot run handler: invalid handler: tcpSocket is deprecated and not supported as a "
            "lifecycle handler");
}

TEST(Hook, EmptyHandlerCannotRun) {
  Status s = run_handler(api::LifecycleHandler{}, loopback_pod(), 5s);
  EXPECT_EQ(s.message(), "Cannot run handler: invalid handler: no action set");
}
