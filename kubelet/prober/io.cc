#include "prober/io.h"

#include <netdb.h>
#include <sys/socket.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "prober/text.h"

namespace knode::kubelet::prober {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

IoSession::IoSession(std::optional<SteadyTime> deadline, std::stop_token stop)
    : deadline_(deadline), stop_(std::move(stop)) {
  on_stop_.emplace(stop_, std::function<void()>([this] {
                     cancelled_.store(true);
                     io_.stop();
                   }));
}

void IoSession::arm(beast::tcp_stream& stream) const {
  if (deadline_) {
    stream.expires_at(*deadline_);
  } else {
    stream.expires_never();
  }
}

std::string io_error_text(const boost::system::error_code& ec) {
  if (ec == beast::error::timeout) return "i/o timeout";
  if (ec == asio::error::eof) return "EOF";
  if (ec == asio::error::operation_aborted) return "operation was canceled";
  if (ec.category() == boost::system::system_category()) return errno_text(ec.value());
  return ec.message();
}

namespace {

struct Lookup {
  std::mutex mu;
  std::condition_variable_any cv;
  bool done = false;
  int rc = 0;
  std::vector<asio::ip::address> addresses;
};

// getaddrinfo has no timeout of its own: it runs on a detached thread that outlives an
// abandoned lookup, and the caller waits only as long as its deadline allows.
Result<std::vector<asio::ip::address>> lookup(IoSession& session, const std::string& host) {
  auto state = std::make_shared<Lookup>();
  std::thread([state, host] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
    std::vector<asio::ip::address> found;
    for (addrinfo* ai = res; rc == 0 && ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
        asio::ip::address_v4::bytes_type b;
        std::memcpy(b.data(), &sin->sin_addr, b.size());
        found.emplace_back(asio::ip::address_v4(b));
      } else if (ai->ai_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
        asio::ip::address_v6::bytes_type b;
        std::memcpy(b.data(), &sin6->sin6_addr, b.size());
        found.emplace_back(asio::ip::address_v6(b, sin6->sin6_scope_id));
      }
    }
    if (res != nullptr) ::freeaddrinfo(res);
    std::lock_guard lock(state->mu);
    state->rc = rc;
    state->addresses = std::move(found);
    state->done = true;
    state->cv.notify_all();
  }).detach();

  const std::string prefix = "dial tcp: lookup " + host + ": ";
  std::unique_lock lock(state->mu);
  std::stop_token stop = session.stop_token();
  const auto ready = [&] { return state->done; };
  bool finished = session.deadline() ? state->cv.wait_until(lock, stop, *session.deadline(), ready)
                                     : state->cv.wait(lock, stop, ready);
  if (!finished) {
    if (stop.stop_requested()) return Status::Error(prefix + "operation was canceled", ECANCELED);
    return Status::Error(prefix + "i/o timeout", ETIMEDOUT);
  }
  if (state->rc != 0) {
    const bool no_host = state->rc == EAI_NONAME || state->rc == EAI_NODATA;
    return Status::Error(prefix + (no_host ? "no such host" : ::gai_strerror(state->rc)), ENOENT);
  }
  if (state->addresses.empty()) return Status::Error(prefix + "no such host", ENOENT);
  return std::move(state->addresses);
}

}  // namespace

Status dial(IoSession& session, beast::tcp_stream& stream, const std::string& host, int port) {
  std::vector<asio::ip::address> addresses;
  boost::system::error_code parse_ec;
  const auto literal = asio::ip::make_address(host, parse_ec);
  if (!parse_ec) {
    addresses.push_back(literal);
  } else {
    auto found = lookup(session, host);
    if (!found.ok()) return found.status();
    addresses = std::move(*found);
  }

  // Go's dialer tries each address in turn and reports the first error.
  std::optional<Status> first_error;
  for (const auto& address : addresses) {
    const tcp::endpoint ep(address, static_cast<uint16_t>(port));
    const std::string what = "dial tcp " + join_host_port(address.to_string(), port) + ": ";
    boost::system::error_code ec;
    stream.socket().close(ec);
    stream.socket().open(ep.protocol(), ec);
    if (!ec) stream.socket().set_option(asio::socket_base::linger(true, 1), ec);
    if (ec) {
      if (!first_error)
        first_error = Status::Error(what + "socket: " + errno_text(ec.value()), ec.value());
      continue;
    }
    session.arm(stream);
    ec = session.run([&](auto handler) { stream.async_connect(ep, std::move(handler)); });
    if (!ec) return Status::Ok();
    if (ec == beast::error::timeout) {
      return first_error ? *first_error : Status::Error(what + "i/o timeout", ETIMEDOUT);
    }
    if (ec == asio::error::operation_aborted) {
      return Status::Error(what + "operation was canceled", ECANCELED);
    }
    if (!first_error) {
      const int err = ec.category() == boost::system::system_category() ? ec.value() : EIO;
      first_error = Status::Error(what + "connect: " + io_error_text(ec), err);
    }
  }
  return first_error ? *first_error : Status::Error("dial tcp: no address for " + host, ENOENT);
}

}  // namespace knode::kubelet::prober
