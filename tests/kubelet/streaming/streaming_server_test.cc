// knode's streaming server (kubelet/streaming/) on loopback with a scripted backend: the
// SPDY framing and header compression, then whole sessions as a client speaks them
// (upgrade, protocol negotiation, streams, the status on the error stream), tokens used
// once, port-forward pairs, and a client that goes away in the middle. The same server
// against client-go's SPDY executor is in the cluster tier (kubelet_api_test.py on the
// docker backend).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "gtest/gtest.h"
#include "streaming/server.h"
#include "streaming/spdy.h"

namespace knode::streaming {
namespace {

using namespace std::chrono_literals;

TEST(Spdy, TheDictionaryIsTheProtocols) {
  // Its length and Adler-32 checksum: the dictionary id a zlib stream names.
  const auto d = spdy::dictionary();
  EXPECT_EQ(d.size(), 1423u);
  EXPECT_EQ(adler32(adler32(0, nullptr, 0), reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size())),
            0xe3c6a7c2u);
}

TEST(Spdy, HeaderBlocksShareOneCompressionStreamPerDirection) {
  spdy::HeaderCompressor c;
  spdy::HeaderDecompressor d;
  for (int i = 0; i < 3; ++i) {
    spdy::Headers h = {{"streamType", "data"}, {"port", std::to_string(8080 + i)}, {"requestID", std::to_string(i)}};
    auto block = c.compress(h);
    ASSERT_TRUE(block.ok()) << block.status().message();
    auto back = d.decompress(*block);
    ASSERT_TRUE(back.ok()) << back.status().message();
    ASSERT_EQ(back->size(), 3u);
    EXPECT_EQ((*back)[0].first, "streamtype");  // names go lower case
    EXPECT_EQ(spdy::header_value(*back, "StreamType"), "data");
    EXPECT_EQ(spdy::header_value(*back, "port"), std::to_string(8080 + i));
  }
  // A block larger than the decompressor's buffer, then a small one after it.
  const std::string big(20000, 'x');
  auto block = c.compress({{"big", big}});
  ASSERT_TRUE(block.ok());
  auto back = d.decompress(*block);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(spdy::header_value(*back, "big"), big);
  block = c.compress({{"small", "1"}});
  back = d.decompress(*block);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(spdy::header_value(*back, "small"), "1");
  // A block that is not part of the stream breaks it.
  spdy::HeaderDecompressor fresh;
  spdy::HeaderCompressor c2;
  (void)c2.compress({{"a", "b"}});
  auto second = c2.compress({{"a", "b"}});
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(fresh.decompress(*second).ok());
}

TEST(Spdy, FramesComeWholeOrNotAtAll) {
  std::string wire = spdy::data_frame(5, spdy::kFlagFin, "hello") + spdy::ping_frame(7);
  std::string buf = wire.substr(0, 10);
  auto f = spdy::take_frame(buf);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
  buf = wire;
  f = spdy::take_frame(buf);
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_FALSE((*f)->control);
  EXPECT_EQ((*f)->stream_id, 5u);
  EXPECT_EQ((*f)->flags, spdy::kFlagFin);
  EXPECT_EQ((*f)->payload, "hello");
  f = spdy::take_frame(buf);
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_TRUE((*f)->control);
  EXPECT_EQ((*f)->type, spdy::Type::kPing);
  EXPECT_EQ((*f)->stream_id, 7u);
  EXPECT_TRUE(buf.empty());
  // Another version's control frame is a protocol error.
  std::string v2 = spdy::ping_frame(1);
  v2[1] = 2;
  EXPECT_EQ(spdy::take_frame(v2).status().error_number(), EPROTO);
}

// ---- a scripted backend ----

// What a session's client sent, gathered under a lock. Shared with the pipe's
// callbacks, which may still be running when the backend's call returns.
struct Input {
  std::mutex mu;
  std::condition_variable cv;
  std::string in;
  bool ended = false, gone = false;

  static std::shared_ptr<Input> listen(Pipe& pipe) {
    auto st = std::make_shared<Input>();
    pipe.on_input(
        [st](std::string_view d) {
          std::lock_guard lock(st->mu);
          st->in += d;
        },
        [st] {
          std::lock_guard lock(st->mu);
          st->ended = true;
          st->cv.notify_all();
        });
    return st;
  }
};

class FakeBackend : public Backend {
 public:
  // exec: stdout gets the input upper-cased, stderr "err:<cmd[0]>", exit code cmd[1].
  Result<int> exec(const runtime::ExecRequest& r, Pipe& pipe) override {
    running = true;
    if (r.cmd[0] == "stuck") {
      // Its input blocks, as a runtime's socket that nobody reads; it and the session
      // end only when the client goes.
      auto st = std::make_shared<Input>();
      pipe.on_input(
          [st](std::string_view) {
            std::unique_lock lock(st->mu);
            st->cv.wait_for(lock, 20s, [&] { return st->gone; });
          },
          [] {});
      pipe.on_gone([this, st] {
        std::lock_guard lock(st->mu);
        st->gone = true;
        saw_gone = true;
        st->cv.notify_all();
      });
      std::unique_lock lock(st->mu);
      st->cv.wait_for(lock, 20s, [&] { return st->gone; });
      return 0;
    }
    auto st = Input::listen(pipe);
    pipe.on_resize([this, st](TerminalSize s) {
      std::lock_guard lock(st->mu);
      sizes.push_back(std::to_string(s.width) + "x" + std::to_string(s.height));
      st->cv.notify_all();
    });
    pipe.on_gone([this, st] {
      std::lock_guard lock(st->mu);
      st->gone = true;
      saw_gone = true;
      st->cv.notify_all();
    });
    std::unique_lock lock(st->mu);
    if (r.cmd[0] == "wait-for-resize") {
      st->cv.wait_for(lock, 5s, [&] { return !sizes.empty(); });
      lock.unlock();
      pipe.write(1, sizes.empty() ? "none" : sizes.front());
      return 0;
    }
    st->cv.wait_for(lock, 10s, [&] { return st->ended || st->gone; });
    if (st->gone) return 0;
    std::string up = st->in;
    for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    lock.unlock();
    pipe.write(1, up);
    pipe.write(2, "err:" + r.cmd[0]);
    return std::stoi(r.cmd.at(1));
  }
  Status attach(const runtime::AttachRequest&, Pipe& pipe) override {
    pipe.write(1, "attached");
    return Status::Ok();
  }
  // port-forward: answers "<port>:" + what came, once the client's side ended; port 1 is
  // refused.
  Status port_forward(const std::string& sandbox, int32_t port, Pipe& pipe) override {
    if (port == 1) return Status::Error("connection refused", ECONNREFUSED);
    auto st = Input::listen(pipe);
    std::unique_lock lock(st->mu);
    st->cv.wait_for(lock, 10s, [&] { return st->ended; });
    pipe.write(1, sandbox + "/" + std::to_string(port) + ":" + st->in);
    return Status::Ok();
  }

  std::vector<std::string> sizes;
  std::atomic<bool> running{false}, saw_gone{false};
};

// ---- a minimal client ----

struct Client {
  int fd = -1;
  std::string in;
  spdy::HeaderCompressor comp;
  spdy::HeaderDecompressor decomp;
  std::map<uint32_t, std::string> data;  // what came per stream
  std::map<uint32_t, bool> fin, replied;
  bool closed = false;

  ~Client() {
    if (fd >= 0) ::close(fd);
  }

  static std::unique_ptr<Client> dial(uint16_t port) {
    auto c = std::make_unique<Client>();
    c->fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(c->fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{10, 0};
    ::setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return c;
  }

  void send(const std::string& bytes) { ASSERT_EQ(::send(c_fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size())); }
  int c_fd() const { return fd; }

  // The answer's head to an upgrade request for `url`'s path.
  std::string upgrade(const std::string& url, const std::vector<std::string>& protocols,
                      const std::string& upgrade_to = "SPDY/3.1") {
    const std::string path = url.substr(url.find('/', std::string("http://").size()));
    std::string req = "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: " + upgrade_to + "\r\n";
    for (const auto& p : protocols) req += "X-Stream-Protocol-Version: " + p + "\r\n";
    req += "Content-Length: 0\r\n\r\n";
    send(req);
    while (in.find("\r\n\r\n") == std::string::npos) {
      if (!read_more()) break;
    }
    const size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos) return in;
    std::string head = in.substr(0, end + 4);
    in.erase(0, end + 4);
    return head;
  }

  bool read_more() {
    char buf[8192];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      closed = true;
      return false;
    }
    in.append(buf, static_cast<size_t>(n));
    return true;
  }

  void open(uint32_t id, const spdy::Headers& h) {
    auto block = comp.compress(h);
    ASSERT_TRUE(block.ok());
    send(spdy::syn_stream_frame(id, 0, *block));
  }

  // Reads frames until pred() or the connection ends.
  template <typename Pred>
  bool until(Pred pred) {
    for (;;) {
      for (;;) {
        auto f = spdy::take_frame(in);
        if (!f.ok()) return false;
        if (!f->has_value()) break;
        auto& fr = **f;
        if (!fr.control) {
          data[fr.stream_id] += fr.payload;
          if (fr.flags & spdy::kFlagFin) fin[fr.stream_id] = true;
        } else if (fr.type == spdy::Type::kSynReply) {
          auto h = decomp.decompress(std::string_view(fr.payload).substr(4));
          EXPECT_TRUE(h.ok());
          replied[fr.stream_id] = true;
        }
      }
      if (pred()) return true;
      if (!read_more()) return pred();
    }
  }
};

class StreamingServerTest : public ::testing::Test {
 protected:
  // Within 5 s: the backend's gone callback ran and the session ended.
  void expect_the_backend_saw_the_client_go() {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!backend.saw_gone && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(backend.saw_gone);
    while (server->active_sessions() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    EXPECT_EQ(server->active_sessions(), 0u);
  }

  void SetUp() override {
    auto s = Server::start(backend);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server = std::move(*s);
  }
  FakeBackend backend;
  std::unique_ptr<Server> server;
};

TEST_F(StreamingServerTest, ExecCarriesStdinStdoutStderrAndTheExitCodeAsAV4Status) {
  auto url = server->exec_url({"ctr1", {"cmd", "3"}, false, true, true, true});
  ASSERT_TRUE(url.ok());
  EXPECT_TRUE(url->starts_with("http://127.0.0.1:" + std::to_string(server->port()) + "/exec/")) << *url;
  auto c = Client::dial(server->port());
  // The client's first protocol the server speaks wins (v5 is WebSocket-only).
  const std::string head = c->upgrade(*url, {"v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"});
  ASSERT_TRUE(head.starts_with("HTTP/1.1 101")) << head;
  EXPECT_NE(head.find("X-Stream-Protocol-Version: v4.channel.k8s.io"), std::string::npos) << head;
  EXPECT_NE(head.find("Upgrade: SPDY/3.1"), std::string::npos) << head;
  c->open(1, {{"streamType", "error"}});
  c->open(3, {{"streamType", "stdin"}});
  c->open(5, {{"streamType", "stdout"}});
  c->open(7, {{"streamType", "stderr"}});
  ASSERT_TRUE(c->until([&] { return c->replied.size() == 4; }));
  c->send(spdy::data_frame(3, 0, "hello "));
  c->send(spdy::data_frame(3, spdy::kFlagFin, "world"));
  ASSERT_TRUE(c->until([&] { return c->fin[1] && c->fin[5] && c->fin[7]; }));
  EXPECT_EQ(c->data[5], "HELLO WORLD");
  EXPECT_EQ(c->data[7], "err:cmd");
  auto status = nlohmann::json::parse(c->data[1]);
  EXPECT_EQ(status["status"], "Failure") << c->data[1];
  EXPECT_EQ(status["reason"], "NonZeroExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["reason"], "ExitCode");
  EXPECT_EQ(status["details"]["causes"][0]["message"], "3");
  // Then the server ends the connection.
  EXPECT_TRUE(c->until([&] { return c->closed; }));
}

TEST_F(StreamingServerTest, ASuccessfulExecSaysSuccessAndOlderProtocolsSayNothing) {
  auto url = server->exec_url({"ctr1", {"cmd", "0"}, false, true, true, false});
  ASSERT_TRUE(url.ok());
  auto c = Client::dial(server->port());
  ASSERT_TRUE(c->upgrade(*url, {"v4.channel.k8s.io"}).starts_with("HTTP/1.1 101"));
  c->open(1, {{"streamType", "error"}});
  c->open(3, {{"streamType", "stdin"}});
  c->open(5, {{"streamType", "stdout"}});
  c->send(spdy::data_frame(3, spdy::kFlagFin, "x"));
  ASSERT_TRUE(c->until([&] { return c->fin[1] && c->fin[5]; }));
  EXPECT_EQ(c->data[5], "X");
  EXPECT_EQ(nlohmann::json::parse(c->data[1])["status"], "Success");

  // v2: the error stream has text, and only for a failure.
  url = server->exec_url({"ctr1", {"cmd", "0"}, false, true, true, false});
  auto c2 = Client::dial(server->port());
  const std::string head = c2->upgrade(*url, {"v2.channel.k8s.io"});
  EXPECT_NE(head.find("X-Stream-Protocol-Version: v2.channel.k8s.io"), std::string::npos) << head;
  c2->open(1, {{"streamType", "error"}});
  c2->open(3, {{"streamType", "stdin"}});
  c2->open(5, {{"streamType", "stdout"}});
  c2->send(spdy::data_frame(3, spdy::kFlagFin, "y"));
  ASSERT_TRUE(c2->until([&] { return c2->fin[1] && c2->fin[5]; }));
  EXPECT_EQ(c2->data[1], "");
}

TEST_F(StreamingServerTest, ATerminalsSizeReachesTheBackend) {
  auto url = server->exec_url({"ctr1", {"wait-for-resize"}, true, false, true, false});
  ASSERT_TRUE(url.ok());
  auto c = Client::dial(server->port());
  ASSERT_TRUE(c->upgrade(*url, {"v4.channel.k8s.io"}).starts_with("HTTP/1.1 101"));
  c->open(1, {{"streamType", "error"}});
  c->open(3, {{"streamType", "stdout"}});
  c->open(5, {{"streamType", "resize"}});
  c->send(spdy::data_frame(5, 0, "{\"Width\":\"80\",\"Height\":null}"));  // ignored
  c->send(spdy::data_frame(5, 0, "{\"Width\":132,\"Hei"));
  c->send(spdy::data_frame(5, 0, "ght\":43}\n"));
  ASSERT_TRUE(c->until([&] { return c->fin[1] && c->fin[3]; }));
  EXPECT_EQ(c->data[3], "132x43");
}

TEST_F(StreamingServerTest, TokensAreUsedOnceAndTheKindMustMatch) {
  auto url = server->attach_url({"ctr1", false, false, true, false});
  ASSERT_TRUE(url.ok());
  {
    // Named as an exec session: not found, and the token is spent.
    std::string wrong = *url;
    wrong.replace(wrong.find("/attach/"), 8, "/exec/");
    auto c = Client::dial(server->port());
    EXPECT_TRUE(c->upgrade(wrong, {"v4.channel.k8s.io"}).starts_with("HTTP/1.1 404")) << wrong;
  }
  auto url2 = server->attach_url({"ctr1", false, false, true, false});
  {
    auto c = Client::dial(server->port());
    ASSERT_TRUE(c->upgrade(*url2, {"v4.channel.k8s.io"}).starts_with("HTTP/1.1 101"));
    c->open(1, {{"streamType", "error"}});
    c->open(3, {{"streamType", "stdout"}});
    ASSERT_TRUE(c->until([&] { return c->fin[1] && c->fin[3]; }));
    EXPECT_EQ(c->data[3], "attached");
  }
  auto c = Client::dial(server->port());
  EXPECT_TRUE(c->upgrade(*url2, {"v4.channel.k8s.io"}).starts_with("HTTP/1.1 404"));
}

TEST_F(StreamingServerTest, UnknownProtocolsAndWebSocketsAreRefused) {
  auto url = server->exec_url({"ctr1", {"cmd", "0"}, false, false, true, false});
  auto c = Client::dial(server->port());
  const std::string head = c->upgrade(*url, {"v9.channel.k8s.io"});
  EXPECT_TRUE(head.starts_with("HTTP/1.1 403")) << head;
  EXPECT_NE(head.find("X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io"), std::string::npos) << head;
  url = server->exec_url({"ctr1", {"cmd", "0"}, false, false, true, false});
  auto c2 = Client::dial(server->port());
  EXPECT_TRUE(c2->upgrade(*url, {"v4.channel.k8s.io"}, "websocket").starts_with("HTTP/1.1 400"));
}

TEST_F(StreamingServerTest, PortForwardPairsStreamsByRequestIdAndReportsErrorsOnTheErrorStream) {
  auto url = server->port_forward_url("sandbox-a");
  ASSERT_TRUE(url.ok());
  auto c = Client::dial(server->port());
  const std::string head = c->upgrade(*url, {"portforward.k8s.io"});
  ASSERT_TRUE(head.starts_with("HTTP/1.1 101")) << head;
  // Two requests at once, their streams interleaved; a third to a refused port.
  c->open(1, {{"streamType", "error"}, {"port", "8080"}, {"requestID", "0"}});
  c->open(3, {{"streamType", "error"}, {"port", "9090"}, {"requestID", "1"}});
  c->open(5, {{"streamType", "data"}, {"port", "9090"}, {"requestID", "1"}});
  c->open(7, {{"streamType", "data"}, {"port", "8080"}, {"requestID", "0"}});
  c->open(9, {{"streamType", "error"}, {"port", "1"}, {"requestID", "2"}});
  c->open(11, {{"streamType", "data"}, {"port", "1"}, {"requestID", "2"}});
  c->send(spdy::data_frame(7, spdy::kFlagFin, "to-8080"));
  c->send(spdy::data_frame(5, spdy::kFlagFin, "to-9090"));
  ASSERT_TRUE(c->until([&] { return c->fin[5] && c->fin[7] && c->fin[9] && c->fin[11]; }));
  EXPECT_EQ(c->data[7], "sandbox-a/8080:to-8080");
  EXPECT_EQ(c->data[5], "sandbox-a/9090:to-9090");
  EXPECT_EQ(c->data[1], "");
  EXPECT_NE(c->data[9].find("error forwarding port 1 to pod sandbox-a"), std::string::npos) << c->data[9];
  EXPECT_NE(c->data[9].find("connection refused"), std::string::npos) << c->data[9];
  // The connection stays for more requests until the client closes it.
  c->open(13, {{"streamType", "error"}, {"port", "7070"}, {"requestID", "3"}});
  c->open(15, {{"streamType", "data"}, {"port", "7070"}, {"requestID", "3"}});
  c->send(spdy::data_frame(15, spdy::kFlagFin, "again"));
  ASSERT_TRUE(c->until([&] { return c->fin[15]; }));
  EXPECT_EQ(c->data[15], "sandbox-a/7070:again");
  // Pings are answered.
  c->send(spdy::ping_frame(41));
}

TEST_F(StreamingServerTest, AClientThatGoesAwayEndsTheBackendsSession) {
  auto url = server->exec_url({"ctr1", {"cmd", "0"}, false, true, true, false});
  {
    auto c = Client::dial(server->port());
    ASSERT_TRUE(c->upgrade(*url, {"v4.channel.k8s.io"}).starts_with("HTTP/1.1 101"));
    c->open(1, {{"streamType", "error"}});
    c->open(3, {{"streamType", "stdin"}});
    c->open(5, {{"streamType", "stdout"}});
    ASSERT_TRUE(c->until([&] { return c->replied.size() == 3; }));
    c->send(spdy::data_frame(3, 0, "half"));
    const auto running_by = std::chrono::steady_clock::now() + 5s;
    while (!backend.running && std::chrono::steady_clock::now() < running_by) std::this_thread::sleep_for(1ms);
    ASSERT_TRUE(backend.running);
  }  // closed without ending stdin, while the backend runs
  expect_the_backend_saw_the_client_go();
}

TEST_F(StreamingServerTest, AClientThatLeavesIsSeenEvenWhileTheBackendTakesNoInput) {
  auto url = server->exec_url({"ctr1", {"stuck"}, false, true, true, false});
  auto c = Client::dial(server->port());
  ASSERT_TRUE(c->upgrade(*url, {"v4.channel.k8s.io"}).starts_with("HTTP/1.1 101"));
  c->open(1, {{"streamType", "error"}});
  c->open(3, {{"streamType", "stdin"}});
  c->open(5, {{"streamType", "stdout"}});
  // 16 MiB of stdin that nothing takes: the server stops reading at its limit, and the
  // client's sends block; then the client goes.
  std::thread sender([&] {
    const std::string piece(32 * 1024, 'z');
    for (int i = 0; i < 512; ++i) {
      const std::string f = spdy::data_frame(3, 0, piece);
      if (::send(c->fd, f.data(), f.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(f.size())) break;
    }
  });
  const auto running_by = std::chrono::steady_clock::now() + 5s;
  while (!backend.running && std::chrono::steady_clock::now() < running_by) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(200ms);  // let the queue fill
  // As a client process that ends: its socket closed with what it did not read (the
  // replies), which resets the connection. (A FIN alone would wait behind the data the
  // server's full window holds back, for upstream's server as for this one.)
  ::shutdown(c->fd, SHUT_WR);
  sender.join();
  ::close(c->fd);
  c->fd = -1;
  expect_the_backend_saw_the_client_go();
}

TEST_F(StreamingServerTest, AClientThatNeverOpensItsStreamsIsCutOff) {
  server.reset();
  auto s = Server::start(backend, {"127.0.0.1", 1min, 300ms});
  ASSERT_TRUE(s.ok());
  server = std::move(*s);
  auto url = server->exec_url({"ctr1", {"cmd", "0"}, false, true, true, false});
  auto c = Client::dial(server->port());
  ASSERT_TRUE(c->upgrade(*url, {"v4.channel.k8s.io"}).starts_with("HTTP/1.1 101"));
  c->open(1, {{"streamType", "error"}});
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c->until([&] { return c->closed; }));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_TRUE(c->data.empty());
}

}  // namespace
}  // namespace knode::streaming
