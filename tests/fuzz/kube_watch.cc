// Fuzzes what the informers do with the API server's answers (common/kube): a watch
// response body cut into lines by kube::LineSplitter (RestClient::stream_lines' framing),
// in pieces of any size; each line read by kube::parse_watch_line (Informer::watch's
// reading: ADDED/MODIFIED/DELETED/BOOKMARK/ERROR, the object decoded as the informer's
// kind) and applied to a kube::ReflectorCache; and the same bytes read as a list page by
// kube::parse_list_page (Informer::list's reading), then ReflectorCache::replace. Nothing
// here may throw: an exception in the informer ends the daemon.
//
// Input: one byte for the kind (api::Kind), one for the size of the pieces the body
// arrives in (1-256), then the body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "knode/api/codec.h"
#include "knode/kube/client.h"
#include "knode/kube/informer.h"

namespace api = knode::api;
namespace kube = knode::kube;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  knode::fuzz::Reader in(data, size);
  const auto kind = static_cast<api::Kind>(in.u8() % api::kKindCount);
  const size_t piece = static_cast<size_t>(in.u8()) + 1;
  const std::string_view body = in.rest();

  kube::ReflectorCache cache;
  auto on_line = [&](std::string_view line) {
    kube::WatchLine w = kube::parse_watch_line(line, kind);
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
  kube::LineSplitter lines(1 << 16);
  bool more = true;
  for (size_t at = 0; more && at < body.size(); at += piece) {
    more = lines.feed(body.substr(at, piece), on_line) == kube::LineSplitter::Fed::kMore;
  }
  if (more) lines.finish(on_line);

  if (auto page = kube::parse_list_page(body, kind); page.ok()) {
    for (const auto& o : page->items) {
      if (!o || api::kind_of(*o) != kind) knode::fuzz::fail("a list item of another kind");
    }
    kube::ReflectorCache listed;
    auto items = page->items;
    (void)listed.replace(std::move(page->items));
    (void)listed.replace(std::move(items));  // a relist with nothing changed
  }
  return 0;
}
