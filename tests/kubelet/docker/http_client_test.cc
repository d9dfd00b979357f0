// The HTTP client over dockerd's unix socket (kubelet/docker/http_client.h) against the
// in-process fake: whole, chunked and hijacked answers, deadlines, cancellation, and a
// daemon that is not there.
#include "docker/http_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "fake_docker_server.h"

namespace knode::docker {
namespace {

using namespace std::chrono_literals;
using testing::FakeDockerServer;
using testing::FakeReply;
using testing::FakeRequest;

Deadline in(std::chrono::milliseconds d) { return std::chrono::steady_clock::now() + d; }

TEST(DockerSocketPath, AcceptsUnixEndpointsOnly) {
  EXPECT_EQ(*socket_path("unix:///var/run/docker.sock"), "/var/run/docker.sock");
  EXPECT_EQ(*socket_path("/run/docker.sock"), "/run/docker.sock");
  EXPECT_EQ(socket_path("tcp://127.0.0.1:2375").status().error_number(), EINVAL);
  EXPECT_EQ(socket_path("unix://relative.sock").status().error_number(), EINVAL);
  EXPECT_EQ(socket_path("").status().error_number(), EINVAL);
}

TEST(DockerHttpClient, WholeAnswerWithRequestRecorded) {
  FakeDockerServer server([](const FakeRequest& r) {
    return FakeReply::json(201, "{\"Id\":\"abc\",\"echo\":" + std::to_string(r.body.size()) + "}");
  });
  ASSERT_TRUE(server.started());
  UnixHttpClient c(server.socket_path());
  auto r = c.request({"POST",
                      "/v1.41/containers/create?name=k8s_x",
                      "{\"Image\":\"busybox\"}",
                      {{"X-Registry-Auth", "e30="}}},
                     in(5s));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(r->body, "{\"Id\":\"abc\",\"echo\":19}");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].path, "/v1.41/containers/create");
  EXPECT_EQ(reqs[0].query.at("name"), "k8s_x");
  EXPECT_EQ(reqs[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(reqs[0].headers.at("x-registry-auth"), "e30=");
}

TEST(DockerHttpClient, StreamsAChunkedBodyPieceByPiece) {
  FakeDockerServer server([](const FakeRequest&) {
    FakeReply r;
    r.mode = FakeReply::Mode::kChunked;
    r.pieces = {"one ", "two ", "three"};
    return r;
  });
  UnixHttpClient c(server.socket_path());
  std::vector<std::string> got;
  auto r = c.stream({"GET", "/v1.41/containers/x/logs", "", {}}, in(5s), [&](std::string_view d) {
    got.emplace_back(d);
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200);
  std::string all;
  for (const auto& g : got) all += g;
  EXPECT_EQ(all, "one two three");
}

TEST(DockerHttpClient, AStreamThatFailsIsReadWhole) {
  FakeDockerServer server(
      [](const FakeRequest&) { return FakeReply::error(404, "No such container: x"); });
  UnixHttpClient c(server.socket_path());
  bool called = false;
  auto r = c.stream({"GET", "/v1.41/containers/x/logs", "", {}}, in(5s), [&](std::string_view) {
    called = true;
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "{\"message\":\"No such container: x\"}\n");
  EXPECT_FALSE(called);
}

TEST(DockerHttpClient, HijackReadsRawBytesAfterTheUpgrade) {
  FakeDockerServer server([](const FakeRequest&) {
    FakeReply r;
    r.mode = FakeReply::Mode::kHijack;
    r.status = 101;
    r.content_type = "application/vnd.docker.raw-stream";
    r.pieces = {testing::frame(1, "hello\n"), testing::frame(2, "oops\n")};
    return r;
  });
  UnixHttpClient c(server.socket_path());
  std::string raw;
  auto r = c.hijack({"POST", "/v1.41/exec/e1/start", "{\"Detach\":false}", {}}, in(5s),
                    [&](std::string_view d) {
                      raw.append(d);
                      return true;
                    });
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 101);
  EXPECT_EQ(raw, testing::frame(1, "hello\n") + testing::frame(2, "oops\n"));
  auto req = server.requests().at(0);
  EXPECT_EQ(req.headers.at("connection"), "Upgrade");
  EXPECT_EQ(req.headers.at("upgrade"), "tcp");
}

TEST(DockerHttpClient, HijackRefusedIsAnErrorAnswer) {
  FakeDockerServer server(
      [](const FakeRequest&) { return FakeReply::error(409, "Container x is not running"); });
  UnixHttpClient c(server.socket_path());
  auto r = c.hijack({"POST", "/v1.41/exec/e1/start", "{}", {}}, in(5s),
                    [](std::string_view) { return true; });
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 409);
  EXPECT_NE(r->body.find("not running"), std::string::npos);
}

TEST(DockerHttpClient, TheDeadlineEndsACallThatGetsNoAnswer) {
  FakeDockerServer server([](const FakeRequest&) {
    FakeReply r;
    r.mode = FakeReply::Mode::kHang;
    return r;
  });
  UnixHttpClient c(server.socket_path());
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c.request({"GET", "/v1.41/containers/json", "", {}}, in(300ms));
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error_number(), ETIMEDOUT) << r.error();
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
}

TEST(DockerHttpClient, TheDeadlineEndsAStreamThatStalls) {
  FakeDockerServer server([](const FakeRequest&) {
    FakeReply r;
    r.mode = FakeReply::Mode::kChunked;
    r.pieces = {"first"};
    r.stream = [](testing::StreamWriter& w) {
      while (!w.wait_closed(std::chrono::seconds(60))) {
      }
    };
    return r;
  });
  UnixHttpClient c(server.socket_path());
  std::string got;
  auto r = c.stream({"GET", "/x", "", {}}, in(300ms), [&](std::string_view d) {
    got.append(d);
    return true;
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error_number(), ETIMEDOUT);
  EXPECT_EQ(got, "first");
}

TEST(DockerHttpClient, CancelEndsAStreamFromAnotherThread) {
  FakeDockerServer server([](const FakeRequest&) {
    FakeReply r;
    r.mode = FakeReply::Mode::kChunked;
    r.pieces = {"first"};
    r.stream = [](testing::StreamWriter& w) {
      while (!w.wait_closed(std::chrono::seconds(60))) {
      }
    };
    return r;
  });
  UnixHttpClient c(server.socket_path());
  Cancel cancel;
  std::promise<void> first_seen;
  std::thread canceller([&] {
    first_seen.get_future().wait();
    cancel.cancel();
  });
  bool signalled = false;
  auto r = c.stream(
      {"GET", "/x", "", {}}, std::nullopt,
      [&](std::string_view) {
        if (!signalled) first_seen.set_value();
        signalled = true;
        return true;
      },
      &cancel);
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error_number(), ECANCELED);
  // Once cancelled, it stays so: a new call ends at once.
  auto again = c.stream(
      {"GET", "/x", "", {}}, std::nullopt, [](std::string_view) { return true; }, &cancel);
  EXPECT_EQ(again.status().error_number(), ECANCELED);
}

TEST(DockerHttpClient, NoDaemonIsConnectionRefused) {
  UnixHttpClient missing("/tmp/knode-no-such-dir/docker.sock");
  auto r = missing.request({"GET", "/_ping", "", {}}, in(2s));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error_number(), ECONNREFUSED) << r.error();

  // A socket file nobody listens on any more (dockerd died).
  char tmpl[] = "/tmp/knode-dead-docker-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/docker.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  UnixHttpClient dead(path);
  auto d = dead.request({"GET", "/_ping", "", {}}, in(2s));
  ::unlink(path.c_str());
  ::rmdir(tmpl);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().error_number(), ECONNREFUSED) << d.error();
}

TEST(DockerHttpClient, AnAnswerBeyondTheLimitIsRefused) {
  FakeDockerServer server(
      [](const FakeRequest&) { return FakeReply::json(200, std::string(4096, 'x')); });
  UnixHttpClient c(server.socket_path(), 1024);
  auto r = c.request({"GET", "/x", "", {}}, in(5s));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error_number(), EIO);
}

TEST(DockerEscape, QueryAndPath) {
  EXPECT_EQ(query_escape("{\"label\":[\"a=b\"]}"), "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
  EXPECT_EQ(path_escape("127.0.0.1:5000/kubia:1"), "127.0.0.1:5000/kubia:1");
  EXPECT_EQ(path_escape("r/x@sha256:ab cd"), "r/x@sha256:ab%20cd");
}

}  // namespace
}  // namespace knode::docker
