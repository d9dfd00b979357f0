// A server on 127.0.0.1:<free port> whose io_context runs on a background thread.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>

#include "knode/http/server.h"

namespace knode::http::testing {

class ServerFixture : public ::testing::Test {
 protected:
  // Listens and starts the loop; register handlers before calling it.
  void start(const ServerOptions& options = {}) {
    server_ = std::make_unique<HttpServer>(io_, options);
    for (auto& [path, h] : pending_) server_->handle(path, h);
    auto st = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(st.ok()) << st.message();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
    thread_ = std::thread([this] { io_.run(); });
  }
  void handle(std::string path, Handler h) { pending_.emplace_back(std::move(path), std::move(h)); }

  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  boost::asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::vector<std::pair<std::string, Handler>> pending_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace knode::http::testing
