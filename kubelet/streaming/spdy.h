// SPDY/3.1 as Kubernetes speaks it on upgraded connections (kubectl exec, attach and
// port-forward, between the API server and a kubelet): the frames, the zlib-compressed
// name/value blocks with the protocol's dictionary, and the server side of one
// connection.
//
// What the peers use (moby/spdystream, the Go library behind client-go and the API
// server): SYN_STREAM from the client opens a stream, which the server answers with
// SYN_REPLY; DATA carries bytes, its FIN flag ends one direction; RST_STREAM ends a
// stream at once; PING is echoed; GOAWAY ends the connection. Flow control
// (WINDOW_UPDATE, SETTINGS) is ignored by spdystream and by this code.
#pragma once

#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "knode/status.h"

namespace knode::streaming::spdy {

inline constexpr uint16_t kVersion = 3;
inline constexpr uint8_t kFlagFin = 0x01;
inline constexpr uint32_t kMaxFrameLength = 0xffffff;  // 24-bit length
// Bytes per DATA frame this side sends (spdystream's limit too).
inline constexpr size_t kMaxDataPayload = 32 * 1024;

enum class Type : uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

// RST_STREAM status codes.
inline constexpr uint32_t kProtocolError = 1;
inline constexpr uint32_t kCancel = 5;

// Header names are lower case on the wire; values of one name are joined by NUL.
using Headers = std::vector<std::pair<std::string, std::string>>;
// The first value of `name` (compared without case), or empty.
std::string header_value(const Headers& headers, std::string_view name);

// The SPDY/3 header compression dictionary (1,423 bytes).
std::string_view dictionary();

// One direction's zlib stream: every name/value block of a connection is compressed
// as a continuation of the previous ones (sync flush after each).
class HeaderCompressor {
 public:
  HeaderCompressor();
  ~HeaderCompressor();
  HeaderCompressor(const HeaderCompressor&) = delete;
  HeaderCompressor& operator=(const HeaderCompressor&) = delete;
  Result<std::string> compress(const Headers& headers);

 private:
  z_stream z_{};
  bool ok_ = false;
};

class HeaderDecompressor {
 public:
  HeaderDecompressor();
  ~HeaderDecompressor();
  HeaderDecompressor(const HeaderDecompressor&) = delete;
  HeaderDecompressor& operator=(const HeaderDecompressor&) = delete;
  // EPROTO for a block that does not decompress or parse; at most 1 MiB of headers.
  Result<Headers> decompress(std::string_view block);

 private:
  z_stream z_{};
  bool ok_ = false;
};

struct Frame {
  bool control = false;
  Type type = Type::kSynStream;  // control frames
  uint8_t flags = 0;
  uint32_t stream_id = 0;        // data frames; for control frames the first word, when it is one
  std::string payload;           // data: the bytes; control: the frame's body
};

// Parses the frame at the front of `buf` and removes it: nullopt while incomplete;
// EPROTO for a control frame of another version, EMSGSIZE for one longer than `max`.
Result<std::optional<Frame>> take_frame(std::string& buf, uint32_t max = 1u << 20);

// Encoders. Header blocks come from a HeaderCompressor.
std::string data_frame(uint32_t stream_id, uint8_t flags, std::string_view data);
std::string syn_stream_frame(uint32_t stream_id, uint8_t flags, std::string_view header_block);
std::string syn_reply_frame(uint32_t stream_id, uint8_t flags, std::string_view header_block);
std::string rst_stream_frame(uint32_t stream_id, uint32_t status);
std::string ping_frame(uint32_t id);
std::string goaway_frame(uint32_t last_good_stream_id, uint32_t status);

// The server side of one upgraded connection (after the 101 was written). serve() reads
// on the calling thread until the peer goes; the other calls may come from any thread.
class ServerConnection {
 public:
  struct Handlers {
    // A stream the client opened, after its SYN_REPLY went out.
    std::function<void(uint32_t id, const Headers& headers)> on_stream;
    // Bytes the client sent on a stream; fin: its direction ended (data may be empty).
    std::function<void(uint32_t id, std::string_view data, bool fin)> on_data;
    // The client reset a stream.
    std::function<void(uint32_t id)> on_reset;
  };

  // The caller closes fd after the connection object is gone.
  explicit ServerConnection(int fd, std::string already_read = {});
  ~ServerConnection();
  ServerConnection(const ServerConnection&) = delete;
  ServerConnection& operator=(const ServerConnection&) = delete;

  // Returns when the client closed the connection, sent GOAWAY or broke the protocol,
  // or close() was called. OK for an orderly end.
  Status serve(const Handlers& handlers);

  // Sends bytes on a stream in frames of at most kMaxDataPayload; false once the
  // connection is gone.
  bool write(uint32_t stream_id, std::string_view data);
  // Ends this side of a stream (DATA with FIN).
  bool finish(uint32_t stream_id);
  bool reset(uint32_t stream_id, uint32_t status);
  // Stops sending (GOAWAY, then the socket's write side is shut): the client sees the
  // end of everything written before.
  void shutdown_write();
  // Ends serve() from another thread.
  void close();
  // Whether the client hung up (closed or reset its side), without reading.
  bool peer_closed() const;

 private:
  bool send(const std::string& bytes);

  int fd_;
  std::string in_;
  std::mutex write_mu_;
  bool write_closed_ = false;  // guarded by write_mu_
  HeaderCompressor compressor_;  // guarded by write_mu_
  HeaderDecompressor decompressor_;  // serve()'s
  std::atomic<uint32_t> last_stream_{0};  // written by serve()
};

}  // namespace knode::streaming::spdy
