// Fuzzes dockerd's streaming framings (kubelet/docker/stream.h, cri_log.h): the
// multiplexed stdout/stderr stream (docker::StreamDemuxer: 8-byte heads, frames split
// across reads), concatenated JSON messages of a pull (docker::JsonMessages, with
// progress_error on each), and the logs endpoint turned into CRI log lines
// (docker::CriLogConverter for a container with and without a TTY, parse_log_message,
// parse_time / format_time, cri_log_line, last_cri_time on what it wrote).
//
// Input: one byte for the size of the reads the answer arrives in (1-256), one for the
// `after` cut (0: none; else that many seconds after 2026-01-01), then the answer's
// bytes. Errors travel as Status: nothing is caught here.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "docker/cri_log.h"  // kubelet/ (private to knode_docker)
#include "docker/stream.h"
#include "fuzz_util.h"

namespace {

namespace docker = knode::docker;

template <typename Feed>
void in_pieces(std::string_view body, size_t piece, Feed&& feed) {
  for (size_t at = 0; at < body.size(); at += piece) {
    if (!feed(body.substr(at, piece))) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  knode::fuzz::Reader in(data, size);
  const size_t piece = static_cast<size_t>(in.u8()) + 1;
  const uint8_t after_byte = in.u8();
  const std::string_view body = in.rest();
  const knode::runtime::UnixNanos after =
      after_byte == 0 ? 0 : (1767225600LL + after_byte) * 1000000000LL;

  docker::StreamDemuxer demux;
  in_pieces(body, piece, [&](std::string_view p) {
    return demux.feed(p, [](docker::StreamType t, std::string_view payload) {
             auto e = docker::parse_log_message(t, payload);
             if (e.ok()) (void)docker::cri_log_line(*e);
             return true;
           }).ok();
  });
  (void)demux.pending();

  docker::JsonMessages messages;
  in_pieces(body, piece, [&](std::string_view p) {
    return messages.feed(p, [](const nlohmann::json& m) {
             (void)docker::progress_error(m);
             return knode::Status::Ok();
           }).ok();
  });

  for (bool tty : {false, true}) {
    docker::CriLogConverter conv(tty, after);
    std::string written;
    auto on_line = [&written](const docker::LogEntry&, const std::string& line) {
      if (line.empty() || line.back() != '\n') knode::fuzz::fail("a CRI log line without its newline", line);
      if (written.size() < (1u << 20)) written += line;
      return knode::Status::Ok();
    };
    bool ok = true;
    in_pieces(body, piece, [&](std::string_view p) { return ok = conv.feed(p, on_line).ok(); });
    if (ok) (void)conv.finish(on_line);
    (void)conv.last_time();
    (void)docker::last_cri_time(written);
  }

  const std::string_view first_line = body.substr(0, body.find('\n'));
  auto t = docker::parse_time(first_line);
  if (t.ok()) {
    const std::string text = docker::format_time(*t);
    auto again = docker::parse_time(text);
    if (!again.ok() || *again != *t) knode::fuzz::fail("parse_time(format_time(t)) != t", text);
    (void)docker::since_param(*t);
  }
  return 0;
}
