#include "streaming/spdy.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "knode/log.h"
#include "knode/ascii.h"

namespace knode::streaming::spdy {
namespace {

void put32(std::string& out, uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

uint32_t get32(std::string_view s, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 24 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3]));
}

std::string control_head(Type type, uint8_t flags, uint32_t length) {
  std::string out;
  out.reserve(8 + length);
  out += static_cast<char>(0x80 | (kVersion >> 8));
  out += static_cast<char>(kVersion & 0xff);
  out += static_cast<char>(static_cast<uint16_t>(type) >> 8);
  out += static_cast<char>(static_cast<uint16_t>(type) & 0xff);
  put32(out, static_cast<uint32_t>(flags) << 24 | (length & kMaxFrameLength));
  return out;
}

std::string build_dictionary() {
  // The SPDY/3 draft's dictionary: these words, each behind its length as 4 bytes, then
  // the text below as it is.
  static constexpr std::array<std::string_view, 65> kWords = {
      "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
      "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
      "cache-control", "connection", "content-base", "content-encoding", "content-language",
      "content-length", "content-location", "content-md5", "content-range", "content-type",
      "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
      "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
      "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
      "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
      "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK",
      "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"};
  static constexpr std::string_view kTail =
      "100101201202205206300302303304305306307402405406407408409410411412413414415416417502"
      "504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad "
      "Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not "
      "Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec "
      "00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,"
      "image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
      "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
  std::string d;
  for (auto w : kWords) {
    put32(d, static_cast<uint32_t>(w.size()));
    d += w;
  }
  d += kTail;
  return d;
}

}  // namespace

std::string_view dictionary() {
  static const std::string d = build_dictionary();
  return d;
}

std::string header_value(const Headers& headers, std::string_view name) {
  const std::string want = ascii_lower(name);
  for (const auto& [k, v] : headers) {
    if (ascii_lower(k) == want) return v.substr(0, v.find('\0'));
  }
  return "";
}

// ---- header compression ----

HeaderCompressor::HeaderCompressor() {
  if (deflateInit(&z_, Z_DEFAULT_COMPRESSION) != Z_OK) return;
  const auto d = dictionary();
  ok_ = deflateSetDictionary(&z_, reinterpret_cast<const Bytef*>(d.data()),
                             static_cast<uInt>(d.size())) == Z_OK;
}

HeaderCompressor::~HeaderCompressor() { deflateEnd(&z_); }

Result<std::string> HeaderCompressor::compress(const Headers& headers) {
  if (!ok_) return Status::Error("spdy: zlib's deflate did not start", EIO);
  std::string block;
  put32(block, static_cast<uint32_t>(headers.size()));
  for (const auto& [k, v] : headers) {
    put32(block, static_cast<uint32_t>(k.size()));
    block += ascii_lower(k);
    put32(block, static_cast<uint32_t>(v.size()));
    block += v;
  }
  std::string out;
  z_.next_in = reinterpret_cast<Bytef*>(block.data());
  z_.avail_in = static_cast<uInt>(block.size());
  char buf[4096];
  do {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = sizeof buf;
    if (int rc = deflate(&z_, Z_SYNC_FLUSH); rc != Z_OK && rc != Z_BUF_ERROR) {
      ok_ = false;
      return Status::Error("spdy: deflate failed (" + std::to_string(rc) + ")", EIO);
    }
    out.append(buf, sizeof buf - z_.avail_out);
  } while (z_.avail_out == 0);
  return out;
}

HeaderDecompressor::HeaderDecompressor() { ok_ = inflateInit(&z_) == Z_OK; }

HeaderDecompressor::~HeaderDecompressor() { inflateEnd(&z_); }

Result<Headers> HeaderDecompressor::decompress(std::string_view block) {
  constexpr size_t kMax = 1u << 20;
  if (!ok_) return Status::Error("spdy: the header stream is broken", EPROTO);
  std::string raw;
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z_.avail_in = static_cast<uInt>(block.size());
  char buf[4096];
  for (;;) {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = sizeof buf;
    int rc = inflate(&z_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      const auto d = dictionary();
      rc = inflateSetDictionary(&z_, reinterpret_cast<const Bytef*>(d.data()),
                                static_cast<uInt>(d.size()));
      if (rc == Z_OK) continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) {
      ok_ = false;
      return Status::Error("spdy: a header block does not decompress (zlib " + std::to_string(rc) + ")",
                           EPROTO);
    }
    raw.append(buf, sizeof buf - z_.avail_out);
    if (raw.size() > kMax) {
      ok_ = false;
      return Status::Error("spdy: a header block over 1 MiB", EPROTO);
    }
    // Done when the input is used up and inflate had room to spare (nothing held back).
    if (z_.avail_out != 0 && (z_.avail_in == 0 || rc == Z_BUF_ERROR)) break;
  }
  const auto bad = [] { return Status::Error("spdy: a malformed name/value block", EPROTO); };
  if (raw.size() < 4) return bad();
  const uint32_t n = get32(raw, 0);
  size_t at = 4;
  Headers out;
  for (uint32_t i = 0; i < n; ++i) {
    std::string parts[2];
    for (auto& part : parts) {
      if (at + 4 > raw.size()) return bad();
      const uint32_t len = get32(raw, at);
      at += 4;
      if (len > raw.size() - at) return bad();
      part = raw.substr(at, len);
      at += len;
    }
    if (parts[0].empty()) return bad();
    out.emplace_back(std::move(parts[0]), std::move(parts[1]));
  }
  return out;
}

// ---- frames ----

Result<std::optional<Frame>> take_frame(std::string& buf, uint32_t max) {
  if (buf.size() < 8) return std::optional<Frame>();
  const uint32_t w0 = get32(buf, 0);
  const uint32_t w1 = get32(buf, 4);
  const uint32_t length = w1 & kMaxFrameLength;
  if (length > max)
    return Status::Error("spdy: a frame of " + std::to_string(length) + " bytes", EMSGSIZE);
  if (buf.size() < 8 + length) return std::optional<Frame>();
  Frame f;
  f.flags = static_cast<uint8_t>(w1 >> 24);
  if (w0 & 0x80000000u) {
    f.control = true;
    const uint16_t version = static_cast<uint16_t>((w0 >> 16) & 0x7fff);
    if (version != kVersion)
      return Status::Error("spdy: a control frame of version " + std::to_string(version), EPROTO);
    f.type = static_cast<Type>(w0 & 0xffff);
  } else {
    f.stream_id = w0 & 0x7fffffffu;
  }
  f.payload = buf.substr(8, length);
  buf.erase(0, 8 + length);
  if (f.control && f.payload.size() >= 4) f.stream_id = get32(f.payload, 0) & 0x7fffffffu;
  return std::optional<Frame>(std::move(f));
}

std::string data_frame(uint32_t stream_id, uint8_t flags, std::string_view data) {
  std::string out;
  out.reserve(8 + data.size());
  put32(out, stream_id & 0x7fffffffu);
  put32(out, static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(data.size()));
  out += data;
  return out;
}

std::string syn_stream_frame(uint32_t stream_id, uint8_t flags, std::string_view header_block) {
  std::string out = control_head(Type::kSynStream, flags, static_cast<uint32_t>(10 + header_block.size()));
  put32(out, stream_id & 0x7fffffffu);
  put32(out, 0);  // associated stream
  out += '\0';    // priority 0
  out += '\0';    // slot
  out += header_block;
  return out;
}

std::string syn_reply_frame(uint32_t stream_id, uint8_t flags, std::string_view header_block) {
  std::string out = control_head(Type::kSynReply, flags, static_cast<uint32_t>(4 + header_block.size()));
  put32(out, stream_id & 0x7fffffffu);
  out += header_block;
  return out;
}

std::string rst_stream_frame(uint32_t stream_id, uint32_t status) {
  std::string out = control_head(Type::kRstStream, 0, 8);
  put32(out, stream_id & 0x7fffffffu);
  put32(out, status);
  return out;
}

std::string ping_frame(uint32_t id) {
  std::string out = control_head(Type::kPing, 0, 4);
  put32(out, id);
  return out;
}

std::string goaway_frame(uint32_t last_good_stream_id, uint32_t status) {
  std::string out = control_head(Type::kGoAway, 0, 8);
  put32(out, last_good_stream_id & 0x7fffffffu);
  put32(out, status);
  return out;
}

// ---- the server side of a connection ----

ServerConnection::ServerConnection(int fd, std::string already_read) : fd_(fd), in_(std::move(already_read)) {}

ServerConnection::~ServerConnection() = default;

bool ServerConnection::send(const std::string& bytes) {
  // Callers hold write_mu_.
  if (write_closed_) return false;
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      write_closed_ = true;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

bool ServerConnection::write(uint32_t stream_id, std::string_view data) {
  do {
    const auto piece = data.substr(0, kMaxDataPayload);
    data.remove_prefix(piece.size());
    std::lock_guard lock(write_mu_);
    if (!send(data_frame(stream_id, 0, piece))) return false;
  } while (!data.empty());
  return true;
}

bool ServerConnection::finish(uint32_t stream_id) {
  std::lock_guard lock(write_mu_);
  return send(data_frame(stream_id, kFlagFin, ""));
}

bool ServerConnection::reset(uint32_t stream_id, uint32_t status) {
  std::lock_guard lock(write_mu_);
  return send(rst_stream_frame(stream_id, status));
}

void ServerConnection::shutdown_write() {
  std::lock_guard lock(write_mu_);
  if (write_closed_) return;
  (void)send(goaway_frame(last_stream_.load(), 0));
  write_closed_ = true;
  ::shutdown(fd_, SHUT_WR);
}

void ServerConnection::close() { ::shutdown(fd_, SHUT_RDWR); }

bool ServerConnection::peer_closed() const {
  pollfd p{fd_, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

Status ServerConnection::serve(const Handlers& h) {
  for (;;) {
    for (;;) {
      auto taken = take_frame(in_);
      if (!taken.ok()) return taken.status();
      if (!taken->has_value()) break;
      Frame& f = **taken;
      if (!f.control) {
        if (h.on_data) h.on_data(f.stream_id, f.payload, (f.flags & kFlagFin) != 0);
        continue;
      }
      switch (f.type) {
        case Type::kSynStream: {
          if (f.payload.size() < 10) return Status::Error("spdy: a short SYN_STREAM", EPROTO);
          auto headers = decompressor_.decompress(std::string_view(f.payload).substr(10));
          if (!headers.ok()) return headers.status();
          last_stream_ = std::max(last_stream_.load(), f.stream_id);
          {
            std::lock_guard lock(write_mu_);
            auto block = compressor_.compress({});
            if (!block.ok()) return block.status();
            if (!send(syn_reply_frame(f.stream_id, 0, *block))) return Status::Ok();
          }
          if (h.on_stream) h.on_stream(f.stream_id, *headers);
          // A stream opened and closed at once (no data from the client).
          if ((f.flags & kFlagFin) != 0 && h.on_data) h.on_data(f.stream_id, "", true);
          break;
        }
        case Type::kHeaders:
          // Further headers for a stream: decompressed to keep the zlib stream in step.
          if (f.payload.size() >= 4) {
            auto headers = decompressor_.decompress(std::string_view(f.payload).substr(4));
            if (!headers.ok()) return headers.status();
          }
          if ((f.flags & kFlagFin) != 0 && h.on_data) h.on_data(f.stream_id, "", true);
          break;
        case Type::kRstStream:
          if (h.on_reset) h.on_reset(f.stream_id);
          break;
        case Type::kPing: {
          if (f.payload.size() != 4) return Status::Error("spdy: a PING of the wrong size", EPROTO);
          std::lock_guard lock(write_mu_);
          (void)send(ping_frame(get32(f.payload, 0)));
          break;
        }
        case Type::kGoAway:
          return Status::Ok();
        default:  // SETTINGS, WINDOW_UPDATE, SYN_REPLY, unknown: nothing to do
          break;
      }
    }
    char buf[32 * 1024];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return Status::Ok();
    if (n < 0) return errno == ECONNRESET || errno == EPIPE ? Status::Ok() : Status::FromErrno("spdy: read", errno);
    in_.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace knode::streaming::spdy
