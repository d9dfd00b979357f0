#include "docker/stream.h"

#include <cerrno>

namespace knode::docker {

namespace {
constexpr size_t kFrameHead = 8;
}  // namespace

Status StreamDemuxer::feed(std::string_view data, const OnFrame& on_frame) {
  buf_.append(data);
  size_t pos = 0;
  Status result;
  while (buf_.size() - pos >= kFrameHead) {
    const auto* h = reinterpret_cast<const unsigned char*>(buf_.data() + pos);
    if (h[0] > 3 || h[1] != 0 || h[2] != 0 || h[3] != 0) {
      result = Status::Error("docker: not a multiplexed stream (frame head " +
                                 std::to_string(h[0]) + " " + std::to_string(h[1]) + ")",
                             EIO);
      break;
    }
    const size_t size = (size_t{h[4]} << 24) | (size_t{h[5]} << 16) | (size_t{h[6]} << 8) | h[7];
    if (buf_.size() - pos - kFrameHead < size) break;
    const std::string_view payload(buf_.data() + pos + kFrameHead, size);
    pos += kFrameHead + size;
    if (!on_frame(static_cast<StreamType>(h[0]), payload)) break;
  }
  buf_.erase(0, pos);
  return result;
}

Status JsonMessages::feed(std::string_view data, const OnMessage& on_message) {
  buf_.append(data);
  size_t start = 0;
  for (size_t nl = buf_.find('\n'); nl != std::string::npos; nl = buf_.find('\n', start)) {
    std::string_view line(buf_.data() + start, nl - start);
    start = nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    auto doc = nlohmann::json::parse(line, nullptr, false);
    if (doc.is_discarded()) {
      buf_.erase(0, start);
      return Status::Error("docker: malformed JSON message: " + std::string(line.substr(0, 200)),
                           EIO);
    }
    if (Status s = on_message(doc); !s.ok()) {
      buf_.erase(0, start);
      return s;
    }
  }
  buf_.erase(0, start);
  return Status::Ok();
}

std::string progress_error(const nlohmann::json& message) {
  if (!message.is_object()) return "";
  auto it = message.find("error");
  if (it != message.end() && it->is_string() && !it->get<std::string>().empty()) {
    return it->get<std::string>();
  }
  auto detail = message.find("errorDetail");
  if (detail != message.end() && detail->is_object()) {
    auto m = detail->find("message");
    if (m != detail->end() && m->is_string()) return m->get<std::string>();
  }
  return "";
}

}  // namespace knode::docker
