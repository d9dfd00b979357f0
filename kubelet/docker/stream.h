// The framings dockerd's streaming answers use, as pure decoders fed piece by piece:
//
// - the multiplexed stream of a container without a TTY (logs, exec, attach): frames of
//   an 8-byte head [stream, 0, 0, 0, size as 4 bytes big-endian] and `size` bytes, where
//   stream is 0 stdin, 1 stdout, 2 stderr, 3 an error of the daemon's;
// - JSON messages one after another (pull progress: objects separated by "\r\n"), where
//   an {"error": ...} object is how a pull that already answered 200 fails.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "knode/status.h"

namespace knode::docker {

enum class StreamType : uint8_t { kStdin = 0, kStdout = 1, kStderr = 2, kSystemErr = 3 };

class StreamDemuxer {
 public:
  // Called per complete frame; returning false stops the feed.
  using OnFrame = std::function<bool(StreamType, std::string_view payload)>;

  // Feeds bytes; frames split across feeds are joined. EIO on a head that is not a
  // multiplexed stream's (the caller then knows it talked to a TTY container).
  Status feed(std::string_view data, const OnFrame& on_frame);
  // Bytes of an incomplete frame held back (a stream that ends here was cut short).
  size_t pending() const { return buf_.size(); }

 private:
  std::string buf_;
};

// Splits JSON messages that arrive concatenated, separated by whitespace.
class JsonMessages {
 public:
  using OnMessage = std::function<Status(const nlohmann::json&)>;
  // A message split across feeds is held until it is complete; malformed JSON is EIO.
  Status feed(std::string_view data, const OnMessage& on_message);

 private:
  std::string buf_;
};

// The error a pull progress message carries ({"error": "...", "errorDetail": {...}}), or
// empty.
std::string progress_error(const nlohmann::json& message);

}  // namespace knode::docker
