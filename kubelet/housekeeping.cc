#include "housekeeping.h"

#include <boost/asio/post.hpp>

#include "knode/log.h"

namespace knode::kubelet {

Housekeeping::Housekeeping(boost::asio::io_context& io, boost::asio::any_io_executor pool, LogManager& logs,
                           ContainerGc& containers, ImageGcManager& images, std::function<bool()> sources_ready)
    : io_(io), pool_(std::move(pool)), logs_(logs), containers_(containers), images_(images),
      sources_ready_(std::move(sources_ready)) {
  auto loop = [&](std::chrono::steady_clock::duration period, std::function<void()> work) {
    loops_.push_back(Loop{std::make_unique<boost::asio::steady_timer>(io_), period, std::move(work)});
  };
  loop(kLogMonitorPeriod, [this] {
    if (Status s = logs_.run_once(); !s.ok()) KLOG(WARNING, "container log housekeeping").kv("err", s.message());
  });
  loop(kContainerGcPeriod, [this] {
    if (Status s = containers_.garbage_collect(sources_ready_()); !s.ok()) {
      KLOG(WARNING, "container garbage collection").kv("err", s.message());
    }
  });
  loop(kImageGcPeriod, [this] {
    if (Status s = images_.detect_images(); !s.ok()) {
      KLOG(WARNING, "image detection").kv("err", s.message());
      return;
    }
    auto r = images_.garbage_collect();
    if (!r.status.ok()) KLOG(WARNING, "image garbage collection").kv("err", r.status.message());
    if (r.event) KLOG(WARNING, "image garbage collection").kv("reason", r.event->reason).kv("message", r.event->message);
    if (!r.removed.empty()) KLOG(INFO, "images removed").kv("images", r.removed.size()).kv("freedBytes", r.freed_bytes);
  });
}

void Housekeeping::start() {
  for (auto& l : loops_) arm(l);
}

void Housekeeping::stop() {
  stopped_ = true;
  for (auto& l : loops_) l.timer->cancel();
}

void Housekeeping::arm(Loop& loop) {
  if (stopped_) return;
  loop.timer->expires_after(loop.period);
  loop.timer->async_wait([this, &loop](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    if (loop.running) return arm(loop);
    loop.running = true;
    boost::asio::post(pool_, [this, &loop] {
      loop.work();
      boost::asio::post(io_, [this, &loop] {
        loop.running = false;
        arm(loop);
      });
    });
  });
}

}  // namespace knode::kubelet
