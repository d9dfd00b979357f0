#include <boost/beast/core/tcp_stream.hpp>

#include "prober/io.h"
#include "prober/probes.h"

namespace knode::kubelet::prober {

ProbeOutcome tcp_probe(const std::string& host, int port, std::chrono::seconds timeout) {
  ProbeOutcome out;
  IoSession session(std::chrono::steady_clock::now() + timeout);
  boost::beast::tcp_stream stream(session.io());
  Status dialed = dial(session, stream, host, port);
  if (dialed.ok()) {
    out.result = ProbeResult::kSuccess;
  } else {
    out.result = ProbeResult::kFailure;
    out.output = dialed.message();
  }
  boost::system::error_code ignored;
  stream.socket().close(ignored);
  return out;
}

}  // namespace knode::kubelet::prober
