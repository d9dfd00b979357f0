// Prober: each kind of probe against real servers on 127.0.0.1 that the tests start
// (HTTP, HTTPS, a TCP listener, gRPC's own health service), exec against FakeRuntime, and
// each bounded by its timeout.
#include "prober/prober.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>

#include "exec_runtime.h"
#include "test_servers.h"

namespace api = knode::api;
using knode::Status;
using knode::kubelet::ProbeResult;
using knode::kubelet::ProbeType;
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

api::Probe http_probe(int port, const std::string& path, const std::string& scheme = "") {
  api::Probe p;
  p.timeout_seconds = 1;
  api::HTTPGetAction a;
  a.path = path;
  a.port = api::IntOrString::Int(port);
  a.scheme = scheme;
  p.http_get = a;
  return p;
}

api::Probe tcp_probe(api::IntOrString port, const std::string& host = "") {
  api::Probe p;
  p.timeout_seconds = 1;
  p.tcp_socket = api::TCPSocketAction{port, host};
  return p;
}

api::Probe grpc_probe(int port, std::optional<std::string> service = std::nullopt) {
  api::Probe p;
  p.timeout_seconds = 1;
  p.grpc = api::GRPCAction{port, std::move(service)};
  return p;
}

api::Probe exec_probe(std::vector<std::string> command, int timeout = 1) {
  api::Probe p;
  p.timeout_seconds = timeout;
  p.exec = api::ExecAction{std::move(command)};
  return p;
}

// Runs the probe and measures how long it took.
struct Timed {
  ProbeOutcome outcome;
  std::chrono::milliseconds took;
};
Timed timed_run(const Prober& prober, const api::Probe& p, const ProbeTarget& t) {
  const auto start = std::chrono::steady_clock::now();
  ProbeOutcome o = prober.run(p, t);
  return {std::move(o), std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - start)};
}

// A 1 s timeout must have been waited out, and not much longer.
void expect_bounded_by_one_second(std::chrono::milliseconds took) {
  EXPECT_GE(took, 950ms);
  EXPECT_LT(took, 1500ms);
}

std::string url(int port, const std::string& path, const std::string& scheme = "http") {
  return scheme + "://127.0.0.1:" + std::to_string(port) + path;
}

Reply redirect_to(int status, const std::string& location, const std::string& body = "") {
  Reply r;
  r.status = status;
  r.headers = {{"Location", location}};
  r.body = body;
  return r;
}

}  // namespace

// ---- httpGet ----

TEST(HttpProbe, OkPassesWithTheBodyAsOutput) {
  TestHttpServer server;
  server.route("/healthz", 200, "all good");
  Prober prober;
  auto o = prober.run(http_probe(server.port(), "/healthz"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kSuccess);
  EXPECT_FALSE(o.warning);
  EXPECT_EQ(o.output, "all good");
  EXPECT_TRUE(o.error.ok());
}

TEST(HttpProbe, AnyTwoHundredPasses) {
  TestHttpServer server;
  server.route("/a", 204);
  server.route("/b", 299, "x");
  Prober prober;
  EXPECT_EQ(prober.run(http_probe(server.port(), "/a"), loopback_pod()).result,
            ProbeResult::kSuccess);
  EXPECT_EQ(prober.run(http_probe(server.port(), "/b"), loopback_pod()).result,
            ProbeResult::kSuccess);
}

TEST(HttpProbe, ErrorStatusFailsWithTheCodeAndNotTheBody) {
  TestHttpServer server;
  server.route("/500", 500, "secret stack trace");
  server.route("/404", 404, "nope");
  server.route("/400", 400);
  Prober prober;
  for (int code : {500, 404, 400}) {
    auto o = prober.run(http_probe(server.port(), "/" + std::to_string(code)), loopback_pod());
    EXPECT_EQ(o.result, ProbeResult::kFailure) << code;
    EXPECT_EQ(o.output, "HTTP probe failed with statuscode: " + std::to_string(code));
  }
}

TEST(HttpProbe, SendsUpstreamsRequest) {
  TestHttpServer server;
  server.route("/healthz", 200);
  Prober prober;
  ASSERT_EQ(prober.run(http_probe(server.port(), "/healthz?verbose=1"), loopback_pod()).result,
            ProbeResult::kSuccess);
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/healthz?verbose=1");
  EXPECT_EQ(seen[0].header("Host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(seen[0].header("User-Agent"), "kube-probe/1.37");
  EXPECT_EQ(seen[0].header("Accept"), "*/*");
  EXPECT_EQ(seen[0].header("Connection"), "close");  // keep-alives off, as upstream's transport
}

TEST(HttpProbe, EmptyPathAsksForTheRoot) {
  TestHttpServer server;
  server.route("/", 200);
  Prober prober;
  ASSERT_EQ(prober.run(http_probe(server.port(), ""), loopback_pod()).result,
            ProbeResult::kSuccess);
  EXPECT_EQ(server.requests()[0].target, "/");
}

TEST(HttpProbe, ActionHeadersAreSentWithGoCanonicalNames) {
  TestHttpServer server;
  server.route("/", 200);
  auto p = http_probe(server.port(), "/");
  p.http_get->http_headers = {{"x-custom-thing", "v1"}, {"X-Multi", "a"}, {"x-multi", "b"}};
  Prober prober;
  ASSERT_EQ(prober.run(p, loopback_pod()).result, ProbeResult::kSuccess);
  const auto seen = server.requests()[0];
  bool canonical = false;
  for (const auto& [k, v] : seen.headers) canonical |= k == "X-Custom-Thing" && v == "v1";
  EXPECT_TRUE(canonical);
  EXPECT_EQ(seen.count("X-Multi"), 2);
}

TEST(HttpProbe, HostHeaderOverridesTheRequestHost) {
  TestHttpServer server;
  server.route("/", 200);
  auto p = http_probe(server.port(), "/");
  p.http_get->http_headers = {{"host", "muffins.cupcakes.org"}};
  Prober prober;
  ASSERT_EQ(prober.run(p, loopback_pod()).result, ProbeResult::kSuccess);
  const auto seen = server.requests()[0];
  EXPECT_EQ(seen.header("Host"), "muffins.cupcakes.org");
  EXPECT_EQ(seen.count("Host"), 1);
}

TEST(HttpProbe, UserAgentAndAcceptCanBeReplacedOrRemoved) {
  TestHttpServer server;
  server.route("/", 200);
  Prober prober;
  auto p = http_probe(server.port(), "/");
  p.http_get->http_headers = {{"user-agent", "mine/2.0"}, {"Accept", "application/json"}};
  ASSERT_EQ(prober.run(p, loopback_pod()).result, ProbeResult::kSuccess);
  p.http_get->http_headers = {{"User-Agent", ""}, {"Accept", ""}};
  ASSERT_EQ(prober.run(p, loopback_pod()).result, ProbeResult::kSuccess);
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].header("User-Agent"), "mine/2.0");
  EXPECT_EQ(seen[0].count("User-Agent"), 1);
  EXPECT_EQ(seen[0].header("Accept"), "application/json");
  EXPECT_EQ(seen[1].count("User-Agent"), 0);
  EXPECT_EQ(seen[1].count("Accept"), 0);
}

TEST(HttpProbe, NamedPortIsTheContainerPortOfThatName) {
  TestHttpServer server;
  server.route("/", 200);
  auto target = loopback_pod();
  target.ports = {{"metrics", 0, 1, "TCP", ""}, {"http", 0, server.port(), "TCP", ""}};
  auto p = http_probe(0, "/");
  p.http_get->port = api::IntOrString::String("http");
  Prober prober;
  EXPECT_EQ(prober.run(p, target).result, ProbeResult::kSuccess);
  // A number written as a string is a number, as upstream's last resort.
  p.http_get->port = api::IntOrString::String(std::to_string(server.port()));
  EXPECT_EQ(prober.run(p, target).result, ProbeResult::kSuccess);
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(HttpProbe, MissingNamedPortIsAnErrorNotAFailure) {
  auto p = http_probe(0, "/");
  p.http_get->port = api::IntOrString::String("admin");
  Prober prober;
  auto o = prober.run(p, loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kUnknown);
  EXPECT_NE(o.error.message().find("\"admin\" not found"), std::string::npos) << o.error.message();
}

TEST(HttpProbe, SameHostRedirectsAreFollowed) {
  TestHttpServer server;
  server.route("/ok", 200, "landed");
  for (int code : {301, 302, 303, 307, 308}) {
    server.route("/start", [code](const SeenRequest&) { return redirect_to(code, "/ok"); });
    Prober prober;
    auto o = prober.run(http_probe(server.port(), "/start"), loopback_pod());
    EXPECT_EQ(o.result, ProbeResult::kSuccess) << code;
    EXPECT_FALSE(o.warning) << code;
    EXPECT_EQ(o.output, "landed") << code;
  }
  EXPECT_EQ(server.requests("/ok").size(), 5u);
}

TEST(HttpProbe, RedirectToAFailingPathFails) {
  TestHttpServer server;
  server.route("/start", [](const SeenRequest&) { return redirect_to(302, "/broken"); });
  server.route("/broken", 500);
  Prober prober;
  auto o = prober.run(http_probe(server.port(), "/start"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output, "HTTP probe failed with statuscode: 500");
}

TEST(HttpProbe, RedirectToAnotherPortOfTheSameHostIsFollowed) {
  TestHttpServer first, second;
  second.route("/ok", 200, "other port");
  const std::string there = url(second.port(), "/ok");
  first.route("/start", [there](const SeenRequest&) { return redirect_to(302, there); });
  Prober prober;
  auto o = prober.run(http_probe(first.port(), "/start"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kSuccess);
  EXPECT_EQ(o.output, "other port");
}

TEST(HttpProbe, RedirectToAnotherHostPassesWithAWarningAndIsNotFollowed) {
  TestHttpServer server;
  // Never contacted: a redirect off the pod's host ends the probe.
  server.route("/start", [](const SeenRequest&) {
    return redirect_to(302, "http://login.example.invalid/signin", "go away");
  });
  Prober prober;
  auto o = prober.run(http_probe(server.port(), "/start"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kSuccess);
  EXPECT_TRUE(o.warning);
  EXPECT_EQ(o.output, "Probe terminated redirects, Response body: go away");
  EXPECT_EQ(probe_event(ProbeType::kReadiness, o).reason, "ProbeWarning");
}

TEST(HttpProbe, RedirectLoopFailsAfterTenRequests) {
  TestHttpServer server;
  server.route("/loop", [](const SeenRequest&) { return redirect_to(302, "/loop"); });
  Prober prober;
  auto o = prober.run(http_probe(server.port(), "/loop"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output, "Get \"/loop\": stopped after 10 redirects");
  EXPECT_EQ(server.requests("/loop").size(), 10u);
}

TEST(HttpProbe, HostOverrideSurvivesARelativeRedirect) {
  TestHttpServer server;
  server.route("/redirect", [](const SeenRequest&) { return redirect_to(302, "/check"); });
  server.route("/check", [](const SeenRequest& r) {
    Reply reply;
    reply.status = r.header("Host") == "www.success.com" ? 200 : 400;
    return reply;
  });
  auto p = http_probe(server.port(), "/redirect");
  Prober prober;
  p.http_get->http_headers = {{"Host", "www.success.com"}};
  EXPECT_EQ(prober.run(p, loopback_pod()).result, ProbeResult::kSuccess);
  p.http_get->http_headers = {{"Host", "www.fail.com"}};
  EXPECT_EQ(prober.run(p, loopback_pod()).result, ProbeResult::kFailure);
}

TEST(HttpProbe, AtMostTenKiBOfTheBodyIsRead) {
  TestHttpServer server;
  server.route("/big", 200, std::string(20 * 1024, 'a'));
  server.route("/fits", 200, std::string(10 * 1024 - 1, 'b'));
  Prober prober;
  auto big = prober.run(http_probe(server.port(), "/big"), loopback_pod());
  EXPECT_EQ(big.result, ProbeResult::kSuccess);
  EXPECT_EQ(big.output, std::string(10 * 1024, 'a'));
  auto fits = prober.run(http_probe(server.port(), "/fits"), loopback_pod());
  EXPECT_EQ(fits.output, std::string(10 * 1024 - 1, 'b'));
}

TEST(HttpProbe, ServerThatNeverAnswersFailsAtTheTimeout) {
  TestHttpServer server;
  server.route("/hang", [](const SeenRequest&) {
    Reply r;
    r.hang = true;
    return r;
  });
  Prober prober;
  auto [o, took] = timed_run(prober, http_probe(server.port(), "/hang"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output, "Get \"" + url(server.port(), "/hang") +
                          "\": context deadline exceeded (Client.Timeout exceeded while awaiting "
                          "headers)");
  expect_bounded_by_one_second(took);
}

TEST(HttpProbe, BodyThatStallsFailsAtTheTimeout) {
  TestHttpServer server;
  server.route("/stall", [](const SeenRequest&) {
    Reply r;
    r.body = std::string(100, 'x');
    r.hang_after_bytes = 10;
    return r;
  });
  Prober prober;
  auto [o, took] = timed_run(prober, http_probe(server.port(), "/stall"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_NE(o.output.find("while reading body"), std::string::npos) << o.output;
  expect_bounded_by_one_second(took);
}

TEST(HttpProbe, TimeoutIsTheProbes) {
  TestHttpServer server;
  server.route("/hang", [](const SeenRequest&) {
    Reply r;
    r.hang = true;
    return r;
  });
  auto p = http_probe(server.port(), "/hang");
  p.timeout_seconds = 2;
  Prober prober;
  auto [o, took] = timed_run(prober, p, loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_GE(took, 1950ms);
  EXPECT_LT(took, 2500ms);
}

TEST(HttpProbe, ConnectionRefusedFails) {
  RefusingPort closed;
  Prober prober;
  auto o = prober.run(http_probe(closed.port(), "/healthz"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  const std::string addr = "127.0.0.1:" + std::to_string(closed.port());
  EXPECT_EQ(o.output, "Get \"http://" + addr + "/healthz\": dial tcp " + addr +
                          ": connect: connection refused");
}

TEST(HttpProbe, ConnectWithoutAnswerFailsAtTheTimeout) {
  TestTcpListener full(/*fill_backlog=*/true);
  Prober prober;
  auto [o, took] = timed_run(prober, http_probe(full.port(), "/"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_NE(o.output.find(": i/o timeout (Client.Timeout exceeded while awaiting headers)"),
            std::string::npos)
      << o.output;
  expect_bounded_by_one_second(took);
}

TEST(HttpProbe, HttpsDoesNotVerifyTheCertificate) {
  TestHttpServer server(TestHttpServer::Mode::kHttps);
  server.route("/healthz", 200, "over tls");
  Prober prober;
  auto o = prober.run(http_probe(server.port(), "/healthz", "HTTPS"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kSuccess) << o.output;
  EXPECT_EQ(o.output, "over tls");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].sni, "");  // no SNI for an IP address, as Go
}

TEST(HttpProbe, HttpsErrorStatusFails) {
  TestHttpServer server(TestHttpServer::Mode::kHttps);
  server.route("/healthz", 503);
  Prober prober;
  auto o = prober.run(http_probe(server.port(), "/healthz", "HTTPS"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output, "HTTP probe failed with statuscode: 503");
}

TEST(HttpProbe, HttpsToAPlainServerFailsAsGoSaysIt) {
  TestHttpServer server;
  server.route("/healthz", 200);
  Prober prober;
  auto o = prober.run(http_probe(server.port(), "/healthz", "HTTPS"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output, "Get \"" + url(server.port(), "/healthz", "https") +
                          "\": http: server gave HTTP response to HTTPS client");
}

TEST(HttpProbe, HeaderValueWithALineBreakIsNeverSent) {
  TestHttpServer server;
  server.route("/", 200);
  auto p = http_probe(server.port(), "/");
  p.http_get->http_headers = {{"X-Bad", "a\r\nX-Injected: 1"}};
  Prober prober;
  auto o = prober.run(p, loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_NE(o.output.find("net/http: invalid header field value for \"X-Bad\""), std::string::npos)
      << o.output;
  EXPECT_TRUE(server.requests().empty());
}

TEST(HttpProbe, HostFieldReplacesThePodIp) {
  TestHttpServer server;
  server.route("/", 200);
  auto target = loopback_pod();
  target.pod_ip = "";
  auto p = http_probe(server.port(), "/");
  Prober prober;
  EXPECT_EQ(prober.run(p, target).result, ProbeResult::kUnknown);  // nowhere to go
  p.http_get->host = "127.0.0.1";
  EXPECT_EQ(prober.run(p, target).result, ProbeResult::kSuccess);
}

// ---- tcpSocket ----

TEST(TcpProbe, ListeningPortPasses) {
  TestTcpListener listener;
  Prober prober;
  auto o = prober.run(tcp_probe(api::IntOrString::Int(listener.port())), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kSuccess);
  EXPECT_EQ(o.output, "");
}

TEST(TcpProbe, RefusedPortFails) {
  RefusingPort closed;
  Prober prober;
  auto o = prober.run(tcp_probe(api::IntOrString::Int(closed.port())), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output, "dial tcp 127.0.0.1:" + std::to_string(closed.port()) +
                          ": connect: connection refused");
}

TEST(TcpProbe, ConnectWithoutAnswerFailsAtTheTimeout) {
  TestTcpListener full(/*fill_backlog=*/true);
  Prober prober;
  auto [o, took] = timed_run(prober, tcp_probe(api::IntOrString::Int(full.port())), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output, "dial tcp 127.0.0.1:" + std::to_string(full.port()) + ": i/o timeout");
  expect_bounded_by_one_second(took);
}

TEST(TcpProbe, NamedPortAndHost) {
  TestTcpListener listener;
  auto target = loopback_pod();
  target.pod_ip = "";
  target.ports = {{"redis", 0, listener.port(), "TCP", ""}};
  Prober prober;
  auto o = prober.run(tcp_probe(api::IntOrString::String("redis"), "127.0.0.1"), target);
  EXPECT_EQ(o.result, ProbeResult::kSuccess) << o.error.message();
}

// ---- grpc ----

TEST(GrpcProbe, ServingPasses) {
  TestHealthServer server;
  Prober prober;
  auto o = prober.run(grpc_probe(server.port()), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kSuccess) << o.output;
  EXPECT_EQ(o.output, "service healthy");
}

TEST(GrpcProbe, NamedServiceFollowsItsServingStatus) {
  TestHealthServer server;
  server.set_serving("db", false);
  Prober prober;
  auto o = prober.run(grpc_probe(server.port(), "db"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output, "service unhealthy (responded with \"NOT_SERVING\")");
  server.set_serving("db", true);
  EXPECT_EQ(prober.run(grpc_probe(server.port(), "db"), loopback_pod()).result,
            ProbeResult::kSuccess);
}

TEST(GrpcProbe, UnknownServiceFails) {
  TestHealthServer server;
  Prober prober;
  auto o = prober.run(grpc_probe(server.port(), "nosuch"), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output.rfind("error: health rpc probe failed: rpc error: code = NotFound desc = ", 0),
            0u)
      << o.output;
}

TEST(GrpcProbe, ServerWithoutTheHealthServiceFails) {
  TestHealthServer server(/*with_health_service=*/false);
  Prober prober;
  auto o = prober.run(grpc_probe(server.port()), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output.rfind("error: this server does not implement the grpc health protocol "
                           "(grpc.health.v1.Health): ",
                           0),
            0u)
      << o.output;
}

TEST(GrpcProbe, NothingListeningFailsAtTheTimeout) {
  RefusingPort closed;
  Prober prober;
  auto [o, took] = timed_run(prober, grpc_probe(closed.port()), loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output,
            "timeout: failed to connect service \"127.0.0.1:" + std::to_string(closed.port()) +
                "\" within 1s: context deadline exceeded");
  expect_bounded_by_one_second(took);
}

// ---- exec ----

TEST(ExecProbe, ExitZeroPassesWithTheOutput) {
  ExecRuntime rt;
  rt.fake.script_exec("", {"cat", "/tmp/healthy"}, knode::runtime::ExecResult{"ok\n", "warn\n", 0});
  auto target = loopback_pod();
  target.runtime = &rt;
  target.container_id = rt.container_id;
  Prober prober;
  auto o = prober.run(exec_probe({"cat", "/tmp/healthy"}), target);
  EXPECT_EQ(o.result, ProbeResult::kSuccess);
  EXPECT_EQ(o.output, "ok\nwarn\n");
}

TEST(ExecProbe, NonZeroExitFailsWithTheOutput) {
  ExecRuntime rt;
  rt.fake.script_exec("", {"cat", "/tmp/healthy"},
                      knode::runtime::ExecResult{"", "cat: /tmp/healthy: No such file\n", 1});
  auto target = loopback_pod();
  target.runtime = &rt;
  target.container_id = rt.container_id;
  Prober prober;
  auto o = prober.run(exec_probe({"cat", "/tmp/healthy"}), target);
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output, "cat: /tmp/healthy: No such file\n");
  EXPECT_EQ(probe_event(ProbeType::kLiveness, o).message,
            "Liveness probe failed: cat: /tmp/healthy: No such file\n");
}

TEST(ExecProbe, CommandPastItsTimeoutFails) {
  ExecRuntime rt;
  // What CriRuntime answers when the runtime ended the command at its timeout.
  rt.fake.script_exec(
      "", {"sleep", "10"},
      Status::Error("CRI ExecSync ctr: DeadlineExceeded: timeout 1s exceeded", ETIMEDOUT));
  auto target = loopback_pod();
  target.runtime = &rt;
  target.container_id = rt.container_id;
  Prober prober;
  auto o = prober.run(exec_probe({"sleep", "10"}), target);
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_EQ(o.output, "command \"sleep 10\" timed out");
  EXPECT_EQ(rt.fake.count("ExecSync"), 1);  // a failure, so not retried
}

TEST(ExecProbe, ExecSyncGetsTheProbesTimeout) {
  ExecRuntime rt;
  rt.fake.script_exec("", {"true"}, knode::runtime::ExecResult{"", "", 0});
  auto target = loopback_pod();
  target.runtime = &rt;
  target.container_id = rt.container_id;
  Prober prober;
  ASSERT_EQ(prober.run(exec_probe({"true"}, 7), target).result, ProbeResult::kSuccess);
  ASSERT_EQ(prober.run(exec_probe({"true"}, 0), target).result, ProbeResult::kSuccess);
  EXPECT_EQ(rt.exec_timeouts(), (std::vector<int64_t>{7, 1}));
}

TEST(ExecProbe, CommandIsExpandedWithTheContainersEnvValues) {
  ExecRuntime rt;
  rt.fake.script_exec("", {"cat", "/tmp/healthy", "$(MISSING)", "$(FILE)", ""},
                      knode::runtime::ExecResult{"", "", 0});
  auto target = loopback_pod();
  target.runtime = &rt;
  target.container_id = rt.container_id;
  api::EnvVar from_secret;
  from_secret.name = "TOKEN";
  from_secret.value_from = api::EnvVarSource{};
  target.env = {{"FILE", "/tmp/healthy", std::nullopt}, from_secret};
  Prober prober;
  auto o = prober.run(exec_probe({"cat", "$(FILE)", "$(MISSING)", "$$(FILE)", "$(TOKEN)"}), target);
  // Only static values, as upstream's ExpandContainerCommandOnlyStatic: a valueFrom
  // variable is empty here, "$$" is a literal "$".
  EXPECT_EQ(o.result, ProbeResult::kSuccess) << o.error.message();
}

TEST(ExecProbe, RuntimeErrorIsUnknownAfterThreeAttempts) {
  ExecRuntime rt;
  ASSERT_TRUE(rt.fake.stop_container(rt.container_id, 0).ok());
  auto target = loopback_pod();
  target.runtime = &rt;
  target.container_id = rt.container_id;
  rt.fake.clear_calls();
  Prober prober;
  auto o = prober.run(exec_probe({"true"}), target);
  EXPECT_EQ(o.result, ProbeResult::kUnknown);
  EXPECT_NE(o.error.message().find("container is not running"), std::string::npos);
  EXPECT_EQ(rt.fake.count("ExecSync"), 3);  // upstream's maxProbeRetries
  EXPECT_EQ(probe_event(ProbeType::kStartup, o).message,
            "Startup probe errored and resulted in unknown state: " + o.error.message());
}

TEST(ExecProbe, OutputIsCutAtTenKiB) {
  ExecRuntime rt;
  rt.fake.script_exec(
      "", {"dump"}, knode::runtime::ExecResult{std::string(8000, 'o'), std::string(8000, 'e'), 0});
  auto target = loopback_pod();
  target.runtime = &rt;
  target.container_id = rt.container_id;
  Prober prober;
  auto o = prober.run(exec_probe({"dump"}), target);
  EXPECT_EQ(o.output, std::string(8000, 'o') + std::string(2240, 'e'));
}

// ---- the rest ----

TEST(Prober, ProbeWithoutAnActionIsAnError) {
  Prober prober;
  api::Probe p;
  auto o = prober.run(p, loopback_pod());
  EXPECT_EQ(o.result, ProbeResult::kUnknown);
  EXPECT_EQ(o.error.message(), "missing probe handler for web-0_default(uid-1):web");
}

TEST(ProbeEvent, UsesUpstreamsReasonsAndMessages) {
  ProbeOutcome failed;
  failed.result = ProbeResult::kFailure;
  failed.output = "HTTP probe failed with statuscode: 500";
  auto e = probe_event(ProbeType::kReadiness, failed);
  EXPECT_EQ(e.reason, "Unhealthy");
  EXPECT_EQ(e.message, "Readiness probe failed: HTTP probe failed with statuscode: 500");

  ProbeOutcome passed;
  passed.result = ProbeResult::kSuccess;
  EXPECT_EQ(probe_event(ProbeType::kLiveness, passed).reason, "");
}

TEST(ResolveContainerPort, NumbersNamesAndNumericStrings) {
  const std::vector<api::ContainerPort> ports = {{"http", 0, 8080, "TCP", ""},
                                                 {"8081", 0, 9000, "TCP", ""}};
  EXPECT_EQ(*resolve_container_port(api::IntOrString::Int(80), ports), 80);
  EXPECT_EQ(*resolve_container_port(api::IntOrString::String("http"), ports), 8080);
  // A name wins over reading it as a number.
  EXPECT_EQ(*resolve_container_port(api::IntOrString::String("8081"), ports), 9000);
  EXPECT_EQ(*resolve_container_port(api::IntOrString::String("7070"), ports), 7070);
  for (const auto& bad : {api::IntOrString::Int(0), api::IntOrString::Int(65536),
                          api::IntOrString::String("grpc"), api::IntOrString::String("")}) {
    EXPECT_FALSE(resolve_container_port(bad, ports).ok()) << bad.str();
  }
  EXPECT_EQ(resolve_container_port(api::IntOrString::Int(70000), ports).error(),
            "invalid port number: 70000");
}
