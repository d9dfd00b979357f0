#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "support/raw_client.h"
#include "support/server_fixture.h"

namespace knode::http {
namespace {

using testing::RawClient;

class HttpServerTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    handle("/hello", [](const Request& r) {
      return Response{200, "text/plain; charset=utf-8", "hello " + r.query};
    });
    handle("/down", [](const Request&) {
      return Response{503, "text/plain; charset=utf-8", "not ready\n"};
    });
  }
};

std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

TEST_F(HttpServerTest, GetReturnsHandlerStatusTypeAndBody) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(get("/hello?name=x")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r->header("content-length"), "12");
  EXPECT_EQ(r->body, "hello name=x");
}

TEST_F(HttpServerTest, HandlerStatus503IsPassedThrough) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/down")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "not ready\n");
}

TEST_F(HttpServerTest, UnknownPathIs404) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/nope")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->header("content-type"), "text/plain; charset=utf-8");
}

TEST_F(HttpServerTest, PathMatchIsExact) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/hello/")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(HttpServerTest, OtherMethodsAre405WithAllow) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send("POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->header("allow"), "GET, HEAD");
  // The connection stays usable.
  ASSERT_TRUE(c.send(get("/hello")));
  auto r2 = c.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/hello?1")));
  auto r1 = c.read_response();
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->body, "hello 1");
  EXPECT_NE(r1->header("connection"), "close");
  ASSERT_TRUE(c.send(get("/hello?2")));
  auto r2 = c.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->body, "hello 2");
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/hello?a") + get("/down") + get("/hello?b")));
  auto r1 = c.read_response();
  auto r2 = c.read_response();
  auto r3 = c.read_response();
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(r1->body, "hello a");
  EXPECT_EQ(r2->status, 503);
  EXPECT_EQ(r3->body, "hello b");
}

TEST_F(HttpServerTest, HeadHasGetHeadersAndNoBody) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send("HEAD /hello?xy HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response(/*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-length"), "8");  // "hello xy"
  EXPECT_EQ(r->header("content-type"), "text/plain; charset=utf-8");
  // No body bytes: the next response on the connection starts right away.
  ASSERT_TRUE(c.send(get("/hello?z")));
  auto r2 = c.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->body, "hello z");
  EXPECT_EQ(c.leftover(), "");
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveIsClosedAfterResponse) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send("GET /hello HTTP/1.0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/hello", "Connection: close\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(HttpServerTest, OversizeHeaderIsRejectedWith431AndClosed) {
  start(ServerOptions{.max_header_bytes = 1024});
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/hello", "X-Big: " + std::string(64 * 1024, 'a') + "\r\n")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(HttpServerTest, OversizeBodyIsRejectedWith413) {
  start(ServerOptions{.max_body_bytes = 100});
  RawClient c(port_);
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" +
                     std::string(5000, 'b')));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(HttpServerTest, GarbageIsRejectedWith400) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send("this is not http\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(HttpServerTest, SlowClientIsDisconnectedAfterReadTimeout) {
  start(ServerOptions{.read_timeout = std::chrono::milliseconds(200)});
  RawClient c(port_);
  ASSERT_TRUE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\n"));  // never finishes
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosedAfterReadTimeout) {
  start(ServerOptions{.read_timeout = std::chrono::milliseconds(200)});
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/hello")));
  ASSERT_TRUE(c.read_response());
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitAreClosed) {
  start(ServerOptions{.max_connections = 1});
  RawClient first(port_);
  ASSERT_TRUE(first.send(get("/hello")));
  ASSERT_TRUE(first.read_response());  // now surely accepted and counted
  RawClient second(port_);
  EXPECT_TRUE(second.closed_by_peer());
  // The first one still works.
  ASSERT_TRUE(first.send(get("/hello")));
  EXPECT_TRUE(first.read_response());
}

TEST_F(HttpServerTest, HandlerExceptionBecomes500) {
  handle("/throw", [](const Request&) -> Response { throw std::runtime_error("boom"); });
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/throw")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
}

TEST_F(HttpServerTest, HandlerSeesRequestFields) {
  std::string seen;
  handle("/echo", [&seen](const Request& r) {
    seen = r.method + " " + r.path + " " + r.query + " " + std::string(r.header("x-test").value_or("-")) +
           " " + (r.remote_address.starts_with("127.0.0.1:") ? "local" : r.remote_address);
    return Response{};
  });
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/echo?a=b", "X-Test: yes\r\n")));
  ASSERT_TRUE(c.read_response());
  EXPECT_EQ(seen, "GET /echo a=b yes local");
}

TEST_F(HttpServerTest, ExtraResponseHeadersAreSent) {
  handle("/h", [](const Request&) {
    Response r{200, "application/json", "{}"};
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return r;
  });
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/h")));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("x-content-type-options"), "nosniff");
  EXPECT_EQ(r->header("content-type"), "application/json");
}

TEST_F(HttpServerTest, StopClosesOpenConnectionsAndLetsTheLoopFinish) {
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send(get("/hello")));
  ASSERT_TRUE(c.read_response());
  server_->stop();
  EXPECT_TRUE(c.closed_by_peer());
  thread_.join();  // io_context ran out of work
  RawClient after(port_);
  EXPECT_FALSE(after.connected());
}

TEST_F(HttpServerTest, BusyPortErrorNamesTheAddress) {
  start();
  HttpServer other(io_);
  auto st = other.listen("127.0.0.1", port_);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(),
            "listen on 127.0.0.1:" + std::to_string(port_) + ": Address already in use");
  EXPECT_EQ(st.error_number(), EADDRINUSE);
}

TEST(HttpServer, ListensOnIpv6Loopback) {
  boost::asio::io_context io;
  HttpServer server(io);
  server.handle("/x", [](const Request&) { return Response{200, "text/plain", "v6"}; });
  auto st = server.listen("::1", 0);
  if (!st.ok() && st.error_number() == EADDRNOTAVAIL) GTEST_SKIP() << "no IPv6 loopback here";
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(server.endpoints().size(), 1u);
  EXPECT_EQ(server.endpoints()[0].address, "::1");
  std::thread t([&] { io.run(); });
  {
    RawClient c(server.port(), /*v6=*/true);
    ASSERT_TRUE(c.send(get("/x")));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "v6");
  }
  server.stop();
  t.join();
}

TEST(HttpServer, ServesConcurrentClientsWithSeveralLoopThreads) {
  boost::asio::io_context io;
  HttpServer server(io);
  std::atomic<int> served{0};
  server.handle("/n", [&served](const Request&) {
    return Response{200, "text/plain", std::to_string(++served)};
  });
  ASSERT_TRUE(server.listen("127.0.0.1", 0).ok());
  std::vector<std::thread> loop;
  for (int i = 0; i < 2; ++i) loop.emplace_back([&] { io.run(); });
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      RawClient c(server.port());
      for (int j = 0; j < 25; ++j) {
        if (!c.send(get("/n"))) return;
        auto r = c.read_response();
        if (r && r->status == 200) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(served.load(), 200);
  server.stop();
  for (auto& t : loop) t.join();
}

TEST(HttpServer, ListenRejectsNonIpAddress) {
  boost::asio::io_context io;
  HttpServer server(io);
  auto st = server.listen("localhost", 0);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "listen on localhost:0: not an IP address");
}

TEST(HttpServer, ListenAcceptsHostPort) {
  boost::asio::io_context io;
  HttpServer server(io);
  auto st = server.listen_on("127.0.0.1:0", 10249);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_NE(server.port(), 0);
  EXPECT_NE(server.port(), 10249);
}

TEST(ParseBindAddress, AcceptsTheUsualForms) {
  auto a = parse_bind_address("127.0.0.1:10249", 1);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->str(), "127.0.0.1:10249");
  auto b = parse_bind_address("0.0.0.0", 10256);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->str(), "0.0.0.0:10256");
  auto c = parse_bind_address("[::1]:10248", 1);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->address, "::1");
  EXPECT_EQ(c->port, 10248);
  EXPECT_EQ(c->str(), "[::1]:10248");
  auto d = parse_bind_address("::", 10256);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->str(), "[::]:10256");
}

TEST(ParseBindAddress, RejectsBadInput) {
  EXPECT_EQ(parse_bind_address("localhost:80", 1).error(),
            "bind address \"localhost:80\": \"localhost\" is not an IP address");
  EXPECT_EQ(parse_bind_address("1.2.3.4:70000", 1).error(),
            "bind address \"1.2.3.4:70000\": port \"70000\" out of range 0-65535");
  EXPECT_EQ(parse_bind_address("1.2.3.4:", 1).error(), "bind address \"1.2.3.4:\": empty port");
  EXPECT_EQ(parse_bind_address("[::1", 1).error(), "bind address \"[::1\": missing ']'");
}

}  // namespace
}  // namespace knode::http
