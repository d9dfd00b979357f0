// The HTTP server's asynchronous side: prefix handlers answered later from other threads,
// chunked streams, tunnels to another socket, and TLS with client certificates.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "knode/http/server.h"
#include "support/raw_client.h"
#include "support/test_certs.h"

namespace knode::http {
namespace {

using testing::RawClient;

class ExchangeTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    server_ = std::make_unique<HttpServer>(io_, std::move(options));
    for (auto& [p, h] : prefixes_) server_->handle_prefix(p, h);
    for (auto& [p, h] : exact_) server_->handle(p, h);
    auto st = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(st.ok()) << st.message();
    port_ = server_->port();
    loop_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (loop_.joinable()) loop_.join();
    for (auto& t : workers_) t.join();
  }
  // Runs fn on a thread of its own, as the kubelet runs blocking work off the loop.
  void later(std::function<void()> fn) { workers_.emplace_back(std::move(fn)); }

  boost::asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::vector<std::pair<std::string, AsyncHandler>> prefixes_;
  std::vector<std::pair<std::string, Handler>> exact_;
  std::thread loop_;
  std::vector<std::thread> workers_;
  uint16_t port_ = 0;
};

// Reads from a raw socket until `needle` arrived (or 5 s without data).
bool read_until(int fd, std::string& buf, const std::string& needle) {
  while (buf.find(needle) == std::string::npos) {
    char tmp[4096];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
  return true;
}

int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

void send_all(int fd, const std::string& s) {
  ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size()));
}

TEST_F(ExchangeTest, PrefixHandlerSeesEveryMethodTheBodyAndAnswersFromAnotherThread) {
  prefixes_.emplace_back("/api/", [this](const Request& r, std::shared_ptr<Exchange> ex) {
    std::string what = r.method + " " + r.path + " q=" + r.query_value("command").value_or("-") +
                       " body=" + r.body;
    later([ex, what] { ex->respond(Response{201, "text/plain", what}); });
  });
  prefixes_.emplace_back("/api/long/", [](const Request&, std::shared_ptr<Exchange> ex) {
    ex->respond(Response{200, "text/plain", "longest prefix"});
  });
  exact_.emplace_back("/api/exact", [](const Request&) {
    return Response{200, "text/plain", "exact"};
  });
  start();
  RawClient c(port_);
  ASSERT_TRUE(
      c.send("POST /api/run?command=echo%20hi&command=x HTTP/1.1\r\nHost: t\r\nContent-Length: "
             "5\r\n\r\nhello"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "POST /api/run q=echo hi body=hello");
  // Keep-alive: the same connection serves the next requests.
  ASSERT_TRUE(c.send("DELETE /api/long/x HTTP/1.1\r\nHost: t\r\n\r\n"));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "longest prefix");
  ASSERT_TRUE(c.send("GET /api/exact HTTP/1.1\r\nHost: t\r\n\r\n"));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "exact");
  ASSERT_TRUE(c.send("GET /other HTTP/1.1\r\nHost: t\r\n\r\n"));
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(ExchangeTest, ExchangeDroppedWithoutAnAnswerIs500) {
  prefixes_.emplace_back("/", [](const Request&, std::shared_ptr<Exchange>) {});
  start();
  RawClient c(port_);
  ASSERT_TRUE(c.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
}

TEST_F(ExchangeTest, StreamSendsEachChunkAsItIsWritten) {
  std::promise<void> first_read;
  auto first_read_f = first_read.get_future().share();
  prefixes_.emplace_back("/logs", [&, first_read_f](const Request&, std::shared_ptr<Exchange> ex) {
    ex->start_stream(200, "text/plain", {{"X-Test", "1"}});
    later([ex, first_read_f] {
      EXPECT_TRUE(ex->write("line 1\n"));
      first_read_f.wait();  // the second piece only after the client saw the first
      EXPECT_TRUE(ex->write("line 2\n"));
      ex->end_stream();
    });
  });
  start();
  int fd = connect_loopback(port_);
  send_all(fd, "GET /logs HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string got;
  ASSERT_TRUE(read_until(fd, got, "line 1\n")) << got;
  EXPECT_EQ(got.find("line 2"), std::string::npos);
  EXPECT_NE(got.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("X-Test: 1\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("\r\n7\r\nline 1\n\r\n"), std::string::npos) << got;
  first_read.set_value();
  ASSERT_TRUE(read_until(fd, got, "0\r\n\r\n")) << got;
  EXPECT_NE(got.find("7\r\nline 2\n\r\n0\r\n\r\n"), std::string::npos) << got;
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0) << "closed after the last chunk";
  ::close(fd);
}

TEST_F(ExchangeTest, Http10StreamIsTheRawBodyUntilClose) {
  prefixes_.emplace_back("/logs", [&](const Request&, std::shared_ptr<Exchange> ex) {
    ex->start_stream(200, "text/plain");
    later([ex] {
      ex->write("a");
      ex->write("b");
      ex->end_stream();
    });
  });
  start();
  int fd = connect_loopback(port_);
  send_all(fd, "GET /logs HTTP/1.0\r\n\r\n");
  std::string got;
  read_until(fd, got, "\x01never");
  EXPECT_EQ(got.substr(got.find("\r\n\r\n") + 4), "ab");
  EXPECT_EQ(got.find("chunked"), std::string::npos);
  ::close(fd);
}

TEST_F(ExchangeTest, StreamNoticesTheClientLeaving) {
  std::promise<bool> write_after_close;
  std::promise<void> cancelled;
  prefixes_.emplace_back("/follow", [&](const Request&, std::shared_ptr<Exchange> ex) {
    ex->on_cancel([&] { cancelled.set_value(); });
    ex->start_stream(200, "text/plain");
    later([ex, &write_after_close] {
      EXPECT_TRUE(ex->write("first\n"));
      while (!ex->cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      write_after_close.set_value(ex->write("too late\n"));
    });
  });
  start();
  int fd = connect_loopback(port_);
  send_all(fd, "GET /follow HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string got;
  ASSERT_TRUE(read_until(fd, got, "first\n"));
  ::close(fd);
  auto c = cancelled.get_future();
  ASSERT_EQ(c.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "on_cancel ran";
  auto w = write_after_close.get_future();
  ASSERT_EQ(w.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_FALSE(w.get());
}

TEST_F(ExchangeTest, StopEndsAStreamAndItsBlockedWriter) {
  std::promise<void> streaming;
  std::promise<bool> result;
  prefixes_.emplace_back("/follow", [&](const Request&, std::shared_ptr<Exchange> ex) {
    ex->start_stream(200, "text/plain");
    later([ex, &streaming, &result] {
      ex->write("x");
      streaming.set_value();
      while (!ex->cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      result.set_value(ex->write("y"));
    });
  });
  start();
  int fd = connect_loopback(port_);
  send_all(fd, "GET /follow HTTP/1.1\r\nHost: t\r\n\r\n");
  streaming.get_future().wait();
  server_->stop();
  auto r = result.get_future();
  ASSERT_EQ(r.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_FALSE(r.get());
  ::close(fd);
}

TEST_F(ExchangeTest, TunnelPassesBytesBothWaysUntilTheOtherSideCloses) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  timeval tv{5, 0};
  ::setsockopt(pair[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::promise<void> cancelled;
  prefixes_.emplace_back("/exec/", [&](const Request& r, std::shared_ptr<Exchange> ex) {
    EXPECT_EQ(r.header("Upgrade").value_or(""), "SPDY/3.1");
    ex->on_cancel([&] { cancelled.set_value(); });
    later([ex, fd = pair[0]] {
      ex->tunnel(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\n\r\n");
    });
  });
  start();
  int fd = connect_loopback(port_);
  // The client's first frame rides in the same packet as its request.
  send_all(fd,
           "POST /exec/ns/pod/c HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: "
           "SPDY/3.1\r\n\r\nearly");
  std::string got;
  ASSERT_TRUE(read_until(fd, got, "\r\n\r\n"));
  EXPECT_EQ(got, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\n\r\n");
  std::string other;
  ASSERT_TRUE(read_until(pair[1], other, "early"));
  send_all(fd, "ping");
  ASSERT_TRUE(read_until(pair[1], other, "earlyping")) << other;
  send_all(pair[1], "pong");
  got.clear();
  ASSERT_TRUE(read_until(fd, got, "pong"));
  EXPECT_EQ(got, "pong");
  // The client half-closes: the other side sees EOF and can still answer.
  ::shutdown(fd, SHUT_WR);
  char c;
  EXPECT_EQ(::recv(pair[1], &c, 1, 0), 0);
  send_all(pair[1], "bye");
  got.clear();
  ASSERT_TRUE(read_until(fd, got, "bye"));
  ::close(pair[1]);
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0) << "the tunnel ends with the other side";
  ASSERT_EQ(cancelled.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  ::close(fd);
}

class TlsServerTest : public ExchangeTest {
 protected:
  void SetUp() override {
    ca_ = knode::testing::make_ca("cluster-ca");
    serving_ =
        knode::testing::issue(ca_, "n1", {}, /*server=*/true, /*client=*/false, {"127.0.0.1"});
    prefixes_.emplace_back("/", [](const Request& r, std::shared_ptr<Exchange> ex) {
      std::string who = r.tls ? "tls" : "plain";
      if (!r.peer_certificate) {
        who += " anonymous";
      } else {
        who += std::string(r.peer_certificate->verified ? " verified " : " unverified ") +
               r.peer_certificate->common_name;
        for (const auto& o : r.peer_certificate->organizations) who += " O=" + o;
        if (!r.peer_certificate->verified) who += " (" + r.peer_certificate->verify_error + ")";
      }
      ex->respond(Response{200, "text/plain", who});
    });
  }
  ServerOptions tls_options() {
    ServerOptions o;
    o.tls = TlsOptions{serving_.cert_pem, serving_.key_pem, ca_.cert_pem};
    return o;
  }
  static std::string get() { return "GET /pods HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"; }

  knode::testing::KeyCert ca_, serving_;
};

TEST_F(TlsServerTest, ClientCertificatesAreVerifiedAgainstTheClientCa) {
  start(tls_options());
  {
    knode::testing::TlsClient anonymous(port_);
    ASSERT_TRUE(anonymous.connected());
    EXPECT_EQ(anonymous.request(get()), (std::pair<int, std::string>{200, "tls anonymous"}));
  }
  {
    auto node = knode::testing::issue(ca_, "system:node:n1", {"system:nodes", "extra"});
    knode::testing::TlsClient c(port_, &node);
    ASSERT_TRUE(c.connected());
    EXPECT_EQ(c.request(get()).second, "tls verified system:node:n1 O=system:nodes O=extra");
  }
  {
    auto other_ca = knode::testing::make_ca("another-ca");
    auto foreign = knode::testing::issue(other_ca, "system:node:n1", {"system:nodes"});
    knode::testing::TlsClient c(port_, &foreign);
    ASSERT_TRUE(c.connected()) << "the handshake succeeds; the handler decides";
    auto [status, body] = c.request(get());
    EXPECT_EQ(body.rfind("tls unverified system:node:n1 O=system:nodes (", 0), 0u) << body;
  }
  {
    // Signed by the CA but not for client authentication.
    auto server_only = knode::testing::issue(ca_, "someone", {}, /*server=*/true, /*client=*/false);
    knode::testing::TlsClient c(port_, &server_only);
    ASSERT_TRUE(c.connected());
    EXPECT_EQ(c.request(get()).second.rfind("tls unverified someone", 0), 0u);
  }
}

TEST_F(TlsServerTest, PlainHttpToATlsPortGetsNoAnswer) {
  start(tls_options());
  RawClient c(port_);
  ASSERT_TRUE(c.send(get()));
  EXPECT_FALSE(c.read_response());
}

TEST_F(TlsServerTest, StreamsWorkOverTls) {
  prefixes_.clear();
  prefixes_.emplace_back("/logs", [this](const Request&, std::shared_ptr<Exchange> ex) {
    ex->start_stream(200, "text/plain");
    later([ex] {
      ex->write("over tls\n");
      ex->end_stream();
    });
  });
  start(tls_options());
  knode::testing::TlsClient c(port_);
  ASSERT_TRUE(c.send("GET /logs HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::string all = c.read_all();
  EXPECT_NE(all.find("9\r\nover tls\n\r\n0\r\n\r\n"), std::string::npos) << all;
}

TEST_F(TlsServerTest, AKeyThatIsNotTheCertificatesFailsListen) {
  ServerOptions o;
  auto other = knode::testing::issue(ca_, "x", {}, true, false);
  o.tls = TlsOptions{serving_.cert_pem, other.key_pem, ""};
  server_ = std::make_unique<HttpServer>(io_, o);
  auto st = server_->listen("127.0.0.1", 0);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("TLS private key"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("mismatch"), std::string::npos) << st.message();
  o.tls = TlsOptions{"not a certificate", serving_.key_pem, ""};
  HttpServer bad(io_, o);
  st = bad.listen("127.0.0.1", 0);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("TLS serving certificate"), std::string::npos) << st.message();
}

// A rotated serving certificate: connections made after set_certificate get the new one,
// the open one keeps the old; a pair that does not match is refused and changes nothing.
TEST_F(TlsServerTest, SetCertificateServesTheNewOneToNewConnections) {
  start(tls_options());
  knode::testing::TlsClient before(port_);
  ASSERT_TRUE(before.connected());
  EXPECT_EQ(before.server_common_name(), "n1");
  auto renewed = knode::testing::issue(ca_, "n1-renewed", {}, /*server=*/true, /*client=*/false, {"127.0.0.1"});
  auto other = knode::testing::issue(ca_, "x", {}, true, false);
  auto bad = server_->set_certificate(renewed.cert_pem, other.key_pem);
  ASSERT_FALSE(bad.ok());
  {
    knode::testing::TlsClient c(port_);
    ASSERT_TRUE(c.connected());
    EXPECT_EQ(c.server_common_name(), "n1") << "a refused pair changes nothing";
  }
  // One PEM text holding both, as the kubelet keeps them.
  ASSERT_TRUE(server_->set_certificate(renewed.cert_pem + renewed.key_pem, renewed.cert_pem + renewed.key_pem).ok());
  knode::testing::TlsClient after(port_);
  ASSERT_TRUE(after.connected());
  EXPECT_EQ(after.server_common_name(), "n1-renewed");
  EXPECT_EQ(after.request(get()).first, 200);
  EXPECT_EQ(before.request(get()), (std::pair<int, std::string>{200, "tls anonymous"})) << "the open one goes on";
}

TEST(HttpQuery, ValuesAreDecodedInOrder) {
  Request r;
  r.query = "command=sh&command=-c&command=echo+a%26b&tty=1&empty=&bad=%zz";
  EXPECT_EQ(r.query_values("command"), (std::vector<std::string>{"sh", "-c", "echo a&b"}));
  EXPECT_EQ(r.query_value("tty"), "1");
  EXPECT_EQ(r.query_value("empty"), "");
  EXPECT_EQ(r.query_value("bad"), "%zz");
  EXPECT_FALSE(r.query_value("missing"));
  EXPECT_EQ(url_decode("a%2Fb+c"), "a/b+c");
}

}  // namespace
}  // namespace knode::http
