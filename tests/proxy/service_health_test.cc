#include "service_health.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <thread>

#include "fakes/fake_clock.h"
#include "support/raw_client.h"

namespace knode::proxy {
namespace {

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

ServicePort port(const std::string& name, uint16_t hc, std::vector<std::string> local_ips, bool local_policy = true) {
  ServicePort sp;
  sp.name = name;
  sp.external_policy_local = local_policy;
  sp.health_check_node_port = hc;
  for (const auto& ip : local_ips) {
    Endpoint e;
    e.ip = *net::IPAddress::Parse(ip);
    e.port = 8080;
    e.local = true;
    sp.local_endpoints.push_back(e);
  }
  return sp;
}

TEST(ServiceHealthTest, PortsOfLocalPolicyServicesCountDistinctLocalEndpoints) {
  ProxyState s;
  s.services = {port("default/web:http", 30100, {"10.244.0.5", "10.244.0.6"}),
                port("default/web:https", 30100, {"10.244.0.5", "10.244.0.6"}),
                port("default/cluster-policy:http", 30200, {"10.244.0.7"}, false),
                port("kube-system/none:http", 30300, {})};
  auto ports = health_check_ports(s);
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(ports[30100], (ServiceHealthInfo{"default", "web", 2}));
  EXPECT_EQ(ports[30300], (ServiceHealthInfo{"kube-system", "none", 0}));
}

class ServiceHealthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    on_loop([this] { server_.stop(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }
  template <typename F>
  void on_loop(F f) {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
  std::optional<knode::http::testing::RawResponse> get(uint16_t p, const std::string& path) {
    knode::http::testing::RawClient c(p);
    if (!c.send("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n")) return std::nullopt;
    return c.read_response();
  }

  knode::testing::FakeClock clock_;
  ProxyHealth health_{clock_, std::chrono::seconds(60)};
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ = boost::asio::make_work_guard(io_);
  ServiceHealthServer server_{io_, health_, "127.0.0.1"};
  std::thread thread_;
};

TEST_F(ServiceHealthServerTest, AnswersOnAnyPathFollowsTheStateAndClosesWhenTheServiceGoes) {
  const uint16_t p = free_port();
  ProxyState s;
  s.services = {port("default/web:http", p, {"10.244.0.5", "10.244.0.6"})};
  on_loop([&] { server_.update(s); });
  auto r = get(p, "/anything");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_EQ(r->header("x-load-balancing-endpoint-weight"), "2");
  EXPECT_EQ(r->body, R"({"localEndpoints":2,"service":{"name":"web","namespace":"default"},"serviceProxyHealthy":true})");
  // No local endpoints left: 503.
  s.services = {port("default/web:http", p, {})};
  on_loop([&] { server_.update(s); });
  r = get(p, "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("x-load-balancing-endpoint-weight"), "0");
  // The Service went: the port closes.
  on_loop([&] { server_.update(ProxyState{}); });
  EXPECT_EQ(server_.listening(), 0u);
  knode::http::testing::RawClient c(p);
  EXPECT_FALSE(c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n") && c.read_response());
}

}  // namespace
}  // namespace knode::proxy
