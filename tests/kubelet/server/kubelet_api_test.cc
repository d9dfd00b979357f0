// The kubelet API end to end on loopback: TLS with client certificates, fake reviewers,
// the fake runtime with real log files, and a stand-in for the runtime's streaming
// server, so exec's upgrade is proxied for real.
#include "server/kubelet_api.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "fakes/fake_clock.h"
#include "fakes/fake_runtime.h"
#include "labels.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"

namespace knode::kubelet {
namespace {

using namespace std::chrono_literals;
using knode::testing::KeyCert;
using knode::testing::TlsClient;

class AllowAdmin final : public TokenReviewer, public AccessReviewer {
 public:
  Result<std::optional<UserInfo>> review_token(const std::string& token) override {
    if (token == "admin-token") return std::optional<UserInfo>(UserInfo{"admin", "", {}, {}});
    return std::optional<UserInfo>();
  }
  Result<AccessDecision> review_access(const AccessReview& r) override {
    std::lock_guard lock(mu);
    reviews.push_back(r);
    return AccessDecision{r.user.name == "admin", ""};
  }
  std::mutex mu;
  std::vector<AccessReview> reviews;
};

// The runtime's streaming server: answers one upgrade with 101 and echoes what follows.
class FakeStreamingServer {
 public:
  FakeStreamingServer() {
    lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(lfd_, 4);
    socklen_t len = sizeof a;
    ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeStreamingServer() {
    ::shutdown(lfd_, SHUT_RDWR);
    ::close(lfd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string head() {
    std::lock_guard lock(mu_);
    return head_;
  }

 private:
  void serve() {
    int fd = ::accept(lfd_, nullptr, nullptr);
    if (fd < 0) return;
    std::string buf;
    char tmp[4096];
    while (buf.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) break;
      buf.append(tmp, static_cast<std::size_t>(n));
    }
    {
      std::lock_guard lock(mu_);
      head_ = buf.substr(0, buf.find("\r\n\r\n") + 4);
    }
    std::string ok =
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n";
    ::send(fd, ok.data(), ok.size(), MSG_NOSIGNAL);
    for (;;) {
      ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) break;
      std::string echo = "echo:" + std::string(tmp, static_cast<std::size_t>(n));
      ::send(fd, echo.data(), echo.size(), MSG_NOSIGNAL);
    }
    ::close(fd);
  }

  int lfd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::string head_;
};

class KubeletApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = knode::testing::make_ca();
    admin_ = knode::testing::issue(ca_, "admin", {"system:masters"});
    node_ = knode::testing::issue(ca_, "system:node:n1", {"system:nodes"});
    // A pod with a running container and a previous, exited one.
    rt_.add_image("busybox", true);
    runtime::PodSandboxConfig sb;
    sb.metadata = {"web-0", "uid-1", "default", 0};
    sb.log_directory = dir_.path() + "/default_web-0_uid-1";
    sb.labels[kPodUidLabel] = "uid-1";
    std::filesystem::create_directories(sb.log_directory + "/web");
    sandbox_ = *rt_.run_pod_sandbox(sb);
    runtime::ContainerConfig cc;
    cc.image.image = "busybox";
    cc.metadata = {"web", 0};
    cc.log_path = "web/0.log";
    old_ = *rt_.create_container(sandbox_, cc, sb);
    ASSERT_TRUE(rt_.start_container(old_).ok());
    rt_.exit_container(old_, 1);
    cc.metadata = {"web", 1};
    cc.log_path = "web/1.log";
    current_ = *rt_.create_container(sandbox_, cc, sb);
    ASSERT_TRUE(rt_.start_container(current_).ok());
    log_ = sb.log_directory + "/web/1.log";
    append(sb.log_directory + "/web/0.log", "2024-01-02T03:04:01Z stdout F first run\n");
    append(log_, "2024-01-02T03:04:02Z stdout F line 1\n2024-01-02T03:04:03Z stderr F line 2\n");

    pod_.metadata.name = "web-0";
    pod_.metadata.namespace_ = "default";
    pod_.metadata.uid = "uid-1";
    pod_.spec.containers.resize(1);
    pod_.spec.containers[0].name = "web";
    api::ContainerStatus cs;
    cs.name = "web";
    cs.container_id = "fake://" + current_;
    cs.state.running = api::ContainerStateRunning{api::Time::FromUnixNanos(1704164645000000000)};
    api::ContainerStateTerminated t;
    t.container_id = "fake://" + old_;
    t.exit_code = 1;
    cs.last_state.terminated = t;
    pod_.status.container_statuses.push_back(cs);

    auth_ = std::make_unique<KubeletAuth>("n1", &reviewer_, &reviewer_, clock_);
    stats_ = std::make_unique<StatsProvider>("n1", rt_, clock_);
    KubeletApiOptions o;
    o.follow_check = 50ms;
    api_ = std::make_unique<KubeletApi>(
        io_, *auth_, rt_, [this] { return std::vector<api::Pod>{pod_}; }, health_, *stats_, o);
    http::ServerOptions so;
    auto serving = knode::testing::issue(ca_, "n1", {}, true, false, {"127.0.0.1"});
    so.tls = http::TlsOptions{serving.cert_pem, serving.key_pem, ca_.cert_pem};
    server_ = std::make_unique<http::HttpServer>(io_, so);
    api_->install(*server_);
    ASSERT_TRUE(server_->listen("127.0.0.1", 0).ok());
    loop_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    server_->stop();
    api_->stop();
    loop_.join();
  }

  static void append(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::app | std::ios::binary) << text;
  }
  std::pair<int, std::string> get(const std::string& target, const KeyCert* cert,
                                  const std::string& extra = "") {
    TlsClient c(server_->port(), cert);
    EXPECT_TRUE(c.connected());
    auto [status, body] = c.request(
        "GET " + target + " HTTP/1.1\r\nHost: n1\r\nConnection: close\r\n" + extra + "\r\n");
    return {status, body};
  }
  // A chunked body, unframed.
  static std::string unchunk(const std::string& body) {
    std::string out;
    std::size_t pos = 0;
    while (pos < body.size()) {
      auto eol = body.find("\r\n", pos);
      if (eol == std::string::npos) break;
      std::size_t n = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
      if (n == 0) break;
      out += body.substr(eol + 2, n);
      pos = eol + 2 + n + 2;
    }
    return out;
  }

  knode::testing::TempDir dir_;
  knode::testing::FakeClock clock_;
  knode::testing::FakeRuntime rt_;
  health::HealthRegistry health_;
  AllowAdmin reviewer_;
  KeyCert ca_, admin_, node_;
  std::string sandbox_, old_, current_, log_;
  api::Pod pod_;
  boost::asio::io_context io_;
  std::unique_ptr<KubeletAuth> auth_;
  std::unique_ptr<StatsProvider> stats_;
  std::unique_ptr<KubeletApi> api_;
  std::unique_ptr<http::HttpServer> server_;
  std::thread loop_;
};

TEST_F(KubeletApiTest, WhoMayAsk) {
  EXPECT_EQ(get("/pods", nullptr), (std::pair<int, std::string>{401, "Unauthorized"}));
  auto other_ca = knode::testing::make_ca("another-ca");
  auto foreign = knode::testing::issue(other_ca, "admin", {"system:masters"});
  EXPECT_EQ(get("/pods", &foreign).first, 401);
  EXPECT_EQ(get("/pods", &node_),
            (std::pair<int, std::string>{403,
                                         "Forbidden (user=system:node:n1, verb=get, "
                                         "resource=nodes, subresource(s)=[pods proxy])\n"}));
  EXPECT_EQ(get("/pods", nullptr, "Authorization: Bearer admin-token\r\n").first, 200);
  EXPECT_EQ(get("/pods", nullptr, "Authorization: Bearer nobody\r\n").first, 401);
  // Unknown paths are checked first too, as upstream's filter runs before its routes.
  EXPECT_EQ(get("/nothing", nullptr).first, 401);
  EXPECT_EQ(get("/nothing", &admin_).first, 404);
}

TEST_F(KubeletApiTest, PodsHealthzAndMetrics) {
  auto [status, body] = get("/pods", &admin_);
  ASSERT_EQ(status, 200);
  auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["kind"], "PodList");
  ASSERT_EQ(j["items"].size(), 1u);
  EXPECT_EQ(j["items"][0]["metadata"]["name"], "web-0");
  EXPECT_EQ(get("/healthz", &admin_), (std::pair<int, std::string>{200, "ok"}));
  auto m = get("/metrics", &admin_);
  EXPECT_EQ(m.first, 200);
  EXPECT_NE(m.second.find("process_cpu_seconds_total"), std::string::npos);
  EXPECT_NE(m.second.find("kubelet_running_pods 1"), std::string::npos) << m.second;
  EXPECT_NE(
      m.second.find(
          "kubelet_http_requests_total{method=\"GET\",path=\"metrics\",server_type=\"readwrite\"}"),
      std::string::npos)
      << m.second;
}

TEST_F(KubeletApiTest, ContainerLogsWithTheirOptions) {
  auto logs = [&](const std::string& q) {
    auto [status, body] = get("/containerLogs/default/web-0/web" + q, &admin_);
    return std::make_pair(status, status == 200 ? unchunk(body) : body);
  };
  EXPECT_EQ(logs(""), (std::pair<int, std::string>{200, "line 1\nline 2\n"}));
  EXPECT_EQ(logs("?tailLines=1"), (std::pair<int, std::string>{200, "line 2\n"}));
  EXPECT_EQ(logs("?tail=1"), (std::pair<int, std::string>{200, "line 2\n"}));
  EXPECT_EQ(logs("?tail=all"), (std::pair<int, std::string>{200, "line 1\nline 2\n"}));
  EXPECT_EQ(logs("?limitBytes=3"), (std::pair<int, std::string>{200, "lin"}));
  EXPECT_EQ(logs("?timestamps=true&tailLines=1"),
            (std::pair<int, std::string>{200, "2024-01-02T03:04:03.000000000Z line 2\n"}));
  EXPECT_EQ(logs("?stream=Stderr"), (std::pair<int, std::string>{200, "line 2\n"}));
  EXPECT_EQ(logs("?previous=true"), (std::pair<int, std::string>{200, "first run\n"}));
  EXPECT_EQ(logs("?sinceTime=2024-01-02T03:04:03Z"),
            (std::pair<int, std::string>{200, "line 2\n"}));
  EXPECT_EQ(logs("?tailLines=-1"),
            (std::pair<int, std::string>{422, R"({"message": "Invalid request."})"}));
  EXPECT_EQ(logs("?limitBytes=0").first, 422);
  EXPECT_EQ(logs("?sinceSeconds=5&sinceTime=2024-01-02T03:04:03Z").first, 422);
  EXPECT_EQ(logs("?follow=maybe"),
            (std::pair<int, std::string>{400, R"({"message": "Unable to decode query."})"}));
  EXPECT_EQ(get("/containerLogs/default/nope/web", &admin_),
            (std::pair<int, std::string>{404, "pod \"nope\" does not exist"}));
  EXPECT_EQ(get("/containerLogs/default/web-0/db", &admin_),
            (std::pair<int, std::string>{404, "container \"db\" not found in pod \"web-0\""}));
  EXPECT_EQ(get("/containerLogs/default/web-0", &admin_).first, 400);
  pod_.status.container_statuses[0].last_state.terminated.reset();
  EXPECT_EQ(logs("?previous=true"),
            (std::pair<int, std::string>{
                400, "previous terminated container \"web\" in pod \"web-0\" not found"}));
}

TEST_F(KubeletApiTest, FollowStreamsUntilTheContainerStops) {
  TlsClient c(server_->port(), &admin_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(
      "GET /containerLogs/default/web-0/web?follow=true&tailLines=1 HTTP/1.1\r\nHost: n1\r\n\r\n"));
  std::string got = c.read_until("line 2\n");
  ASSERT_NE(got.find("HTTP/1.1 200 OK"), std::string::npos) << got;
  append(log_, "2024-01-02T03:04:09Z stdout F later\n");
  got = c.read_until("later\n");
  ASSERT_NE(got.find("later\n"), std::string::npos) << got;
  append(log_, "2024-01-02T03:04:10Z stdout F last\n");
  rt_.exit_container(current_, 0);
  got = c.read_until("0\r\n\r\n");
  EXPECT_NE(got.find("last\n"), std::string::npos) << got;
  EXPECT_NE(got.find("0\r\n\r\n"), std::string::npos)
      << "the stream ends with the container: " << got;
}

TEST_F(KubeletApiTest, AFollowerThatLeavesIsLetGo) {
  {
    TlsClient c(server_->port(), &admin_);
    ASSERT_TRUE(
        c.send("GET /containerLogs/default/web-0/web?follow=1 HTTP/1.1\r\nHost: n1\r\n\r\n"));
    ASSERT_NE(c.read_until("line 2\n").find("line 2"), std::string::npos);
    EXPECT_EQ(api_->active_follows(), 1u);
  }  // gone, while its container still runs and writes nothing
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (api_->active_follows() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);  // polling an outcome, bounded: not waiting out a race
  }
  EXPECT_EQ(api_->active_follows(), 0u) << "the follow thread noticed its client leave";
}

TEST_F(KubeletApiTest, ExecIsProxiedToTheRuntimesStreamingServer) {
  FakeStreamingServer streaming;
  rt_.set_streaming_url(streaming.url());
  TlsClient c(server_->port(), &admin_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.send("POST /exec/default/web-0/web?command=echo&command=hi&output=1&error=1 "
             "HTTP/1.1\r\nHost: n1\r\n"
             "Authorization: Bearer secret\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
             "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: "
             "v3.channel.k8s.io\r\n\r\n"));
  std::string got = c.read_until("\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << got;
  ASSERT_TRUE(c.send("ping"));
  EXPECT_EQ(c.read_until("echo:ping"), "echo:ping");
  auto reqs = rt_.exec_requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0], (runtime::ExecRequest{current_, {"echo", "hi"}, false, false, true, true}));
  const std::string head = streaming.head();
  EXPECT_EQ(head.rfind("POST /exec/1 HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("X-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: "
                      "v3.channel.k8s.io"),
            std::string::npos)
      << head;
  EXPECT_NE(head.find("Upgrade: SPDY/3.1"), std::string::npos) << head;
  EXPECT_EQ(head.find("secret"), std::string::npos)
      << "the client's credentials stay here: " << head;
}

TEST_F(KubeletApiTest, StreamingRequestsAreCheckedFirst) {
  rt_.set_streaming_url("http://127.0.0.1:1");
  const std::string upgrade = "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
  auto post = [&](const std::string& target, const std::string& extra) {
    TlsClient c(server_->port(), &admin_);
    return c.request("POST " + target + " HTTP/1.1\r\nHost: n1\r\nConnection: close\r\n" + extra +
                     "\r\n");
  };
  EXPECT_EQ(
      post("/exec/default/web-0/web?command=ls", upgrade),
      (std::pair<int, std::string>{400, "you must specify at least 1 of stdin, stdout, stderr"}));
  EXPECT_EQ(post("/exec/default/web-0/web?command=ls&output=1", ""),
            (std::pair<int, std::string>{400, "Upgrade request required"}));
  EXPECT_EQ(post("/exec/default/nope/web?command=ls&output=1", upgrade).first, 404);
  EXPECT_EQ(post("/exec/default/web-0/uid-2/web?command=ls&output=1", upgrade).first, 404);
  EXPECT_EQ(post("/exec/default/web-0/db?command=ls&output=1", upgrade),
            (std::pair<int, std::string>{404, "container not found (\"db\")"}));
  // The streaming server is not there: an error, not a hang.
  auto down = post("/exec/default/web-0/uid-1/web?command=ls&output=1", upgrade);
  EXPECT_EQ(down.first, 500);
  EXPECT_NE(down.second.find("connect to 127.0.0.1:1"), std::string::npos) << down.second;
  EXPECT_TRUE(rt_.exec_requests().size() == 1u);
}

TEST_F(KubeletApiTest, PortForwardUsesThePodsReadySandbox) {
  FakeStreamingServer streaming;
  rt_.set_streaming_url(streaming.url());
  TlsClient c(server_->port(), &admin_);
  ASSERT_TRUE(
      c.send("POST /portForward/default/web-0 HTTP/1.1\r\nHost: n1\r\nConnection: Upgrade\r\n"
             "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n"));
  EXPECT_EQ(c.read_until("\r\n\r\n").rfind("HTTP/1.1 101", 0), 0u);
  auto pf = rt_.port_forward_requests();
  ASSERT_EQ(pf.size(), 1u);
  EXPECT_EQ(pf[0].first, sandbox_);
  EXPECT_TRUE(pf[0].second.empty());
  EXPECT_EQ(streaming.head().rfind("POST /portforward/1 HTTP/1.1", 0), 0u) << streaming.head();
}

TEST_F(KubeletApiTest, RunAnswersTheCommandsOutput) {
  rt_.script_exec(current_, {"cat", "/etc/hostname"}, runtime::ExecResult{"web-0\n", "", 0});
  TlsClient c(server_->port(), &admin_);
  auto r = c.request(
      "POST /run/default/web-0/web?cmd=cat+/etc/hostname HTTP/1.1\r\nHost: n1\r\nConnection: "
      "close\r\n\r\n");
  EXPECT_EQ(r, (std::pair<int, std::string>{200, "web-0\n"}));
  EXPECT_EQ(reviewer_.reviews.back().verb, "create");
  EXPECT_EQ(reviewer_.reviews.back().subresource, "proxy");
}

TEST_F(KubeletApiTest, StatsSummaryHasTheNodeAndThePodsContainers) {
  runtime::ContainerStats s;
  s.id = current_;
  s.timestamp = 1704164645000000000;
  s.cpu_usage_core_nanoseconds = 1000000000;
  s.memory_working_set_bytes = 4 << 20;
  s.writable_layer_used_bytes = 8192;
  rt_.set_stats(current_, s);
  auto [status, body] = get("/stats/summary", &admin_);
  ASSERT_EQ(status, 200) << body;
  auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["node"]["nodeName"], "n1");
  EXPECT_GT(j["node"]["cpu"]["usageCoreNanoSeconds"].get<uint64_t>(), 0u);
  EXPECT_GT(j["node"]["memory"]["workingSetBytes"].get<uint64_t>(), 0u);
  ASSERT_EQ(j["pods"].size(), 1u);
  const auto& p = j["pods"][0];
  EXPECT_EQ(p["podRef"],
            nlohmann::json({{"name", "web-0"}, {"namespace", "default"}, {"uid", "uid-1"}}));
  ASSERT_EQ(p["containers"].size(), 1u);
  EXPECT_EQ(p["containers"][0]["name"], "web");
  EXPECT_EQ(p["containers"][0]["cpu"]["usageCoreNanoSeconds"], 1000000000);
  EXPECT_FALSE(p["containers"][0]["cpu"].contains("usageNanoCores")) << "no earlier sample";
  EXPECT_EQ(p["memory"]["workingSetBytes"], 4 << 20);
  EXPECT_EQ(p["containers"][0]["rootfs"]["usedBytes"], 8192);
  // A second sample half a second later: half a core.
  s.timestamp += 500000000;
  s.cpu_usage_core_nanoseconds += 250000000;
  rt_.set_stats(current_, s);
  j = nlohmann::json::parse(get("/stats/summary", &admin_).second);
  EXPECT_EQ(j["pods"][0]["containers"][0]["cpu"]["usageNanoCores"], 500000000);
  EXPECT_EQ(reviewer_.reviews.back().subresource, "stats");
}

}  // namespace
}  // namespace knode::kubelet
