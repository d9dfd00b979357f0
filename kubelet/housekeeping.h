// The kubelet's periodic work besides the pods: container logs (every 10 s), dead
// containers and sandboxes (every minute) and unused images (every 5 minutes), each run
// off the event loop and never two at once of a kind.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <vector>

#include "gc/container_gc.h"
#include "gc/image_gc.h"
#include "logs/log_manager.h"

namespace knode::kubelet {

class Housekeeping {
 public:
  Housekeeping(boost::asio::io_context& io, boost::asio::any_io_executor pool, LogManager& logs, ContainerGc& containers,
               ImageGcManager& images, std::function<bool()> sources_ready);
  void start();
  void stop();

 private:
  struct Loop {
    std::unique_ptr<boost::asio::steady_timer> timer;
    std::chrono::steady_clock::duration period;
    std::function<void()> work;  // runs on the pool
    bool running = false;
  };
  void arm(Loop& loop);

  boost::asio::io_context& io_;
  boost::asio::any_io_executor pool_;
  LogManager& logs_;
  ContainerGc& containers_;
  ImageGcManager& images_;
  std::function<bool()> sources_ready_;
  std::vector<Loop> loops_;
  bool stopped_ = false;
};

}  // namespace knode::kubelet
