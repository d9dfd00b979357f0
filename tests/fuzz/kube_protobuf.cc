// Fuzzes the informers' reading of the API server's protobuf answers (common/kube): a
// watch response body cut into length-prefixed frames by kube::FrameSplitter (the framing
// of application/vnd.kubernetes.protobuf;stream=watch), in pieces of any size; each frame
// read by kube::parse_watch_frame (a meta.v1.WatchEvent, its object's envelope, the object
// through the wire reader into JSON and the codec) and applied to a kube::ReflectorCache;
// and the same bytes read as a list page by kube::parse_list_page_protobuf, then
// ReflectorCache::replace. Nothing here may throw or overrun: the bytes are the server's.
//
// Input: one byte for the kind (Pod, Service, EndpointSlice, Node, ConfigMap, Secret), one
// for the size of the pieces the body arrives in (1-256), then the body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "knode/api/codec.h"
#include "knode/kube/client.h"
#include "knode/kube/informer.h"
#include "knode/kube/protobuf.h"

namespace api = knode::api;
namespace kube = knode::kube;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  knode::fuzz::Reader in(data, size);
  static constexpr api::Kind kKinds[] = {api::Kind::kPod,  api::Kind::kService,   api::Kind::kEndpointSlice,
                                         api::Kind::kNode, api::Kind::kConfigMap, api::Kind::kSecret};
  const api::Kind kind = kKinds[in.u8() % 6];
  const size_t piece = static_cast<size_t>(in.u8()) + 1;
  const std::string_view body = in.rest();

  kube::ReflectorCache cache;
  auto on_frame = [&](std::string_view frame) {
    kube::WatchLine w = kube::parse_watch_frame(frame, kind);
    switch (w.type) {
      case kube::WatchLine::Type::kEvent:
        if (!w.object || api::kind_of(*w.object) != kind) knode::fuzz::fail("an event of another kind");
        (void)cache.apply(w.event, std::move(w.object));
        return true;
      case kube::WatchLine::Type::kBookmark:
      case kube::WatchLine::Type::kBadObject:
        return true;
      case kube::WatchLine::Type::kError:
      case kube::WatchLine::Type::kMalformed:
        return false;
    }
    return false;
  };
  kube::FrameSplitter frames(1 << 16);
  bool more = true;
  for (size_t at = 0; more && at < body.size(); at += piece) {
    more = frames.feed(body.substr(at, piece), on_frame) == kube::FrameSplitter::Fed::kMore;
  }

  if (auto page = kube::parse_list_page_protobuf(body, kind); page.ok()) {
    for (const auto& o : page->items) {
      if (!o || api::kind_of(*o) != kind) knode::fuzz::fail("a list item of another kind");
    }
    kube::ReflectorCache listed;
    auto items = page->items;
    (void)listed.replace(std::move(page->items));
    (void)listed.replace(std::move(items));
  }
  // The body as one object's bytes, and as an error Status.
  (void)kube::protobuf::object_json(body, kind);
  (void)kube::protobuf::status_json(body);
  return 0;
}
