// Fuzzes host-local's on-disk store as another plugin (or an older knode, or a crash
// half-way) may have left it: cni::IpamStore reading <dir>/<ip> reservation files
// ("<containerID>\r\n<ifname>", or just the ID) and last_reserved_ip.<N>, then
// cni::ipam_free_count (STATUS), cni::ipam_allocate (ADD: round-robin after the last
// reserved address) and IpamStore::release_owner (DEL) over them.
//
// Everything happens in a private directory made with mkdtemp under /tmp for each run and
// removed after it; nothing else is written and no network state is touched.
// Input: NUL-separated fields: last_reserved_ip.0, last_reserved_ip.1, then pairs of
// (file name, content) for reservation files. File names keep only [0-9A-Fa-f.:] (an IP
// in any spelling; no '/' can reach the path), at most 45 bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "knode/cni/config.h"
#include "knode/cni/ipam.h"
#include "knode/cni/ipam_store.h"

namespace {

std::string clean_name(const std::string& s) {
  std::string out;
  for (char c : s) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' || c == ':') {
      out += c;
    }
    if (out.size() == 45) break;
  }
  if (out == "." || out == "..") out.clear();
  return out;
}

bool in_set(const knode::cni::RangeSet& set, const knode::net::IPAddress& ip) {
  for (const auto& r : set) {
    if (r.subnet.contains(ip)) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace knode::cni;
  knode::fuzz::TempDir dir;
  // Two small range sets (v4 /29 from .2, v6 /125), so wrap-around and exhaustion happen.
  const std::string conf_text =
      R"({"cniVersion":"1.1.0","name":"fuzznet","type":"knode-cni","ipam":{"type":"host-local","dataDir":")" +
      dir.path() +
      R"(","ranges":[[{"subnet":"10.22.0.0/29","rangeStart":"10.22.0.2"}],[{"subnet":"fd00::/125"}]],)"
      R"("routes":[{"dst":"0.0.0.0/0"}]}})";
  auto conf = parse_netconf(conf_text);
  if (!conf.ok()) knode::fuzz::fail("the harness's own netconf does not parse", conf.error());

  const auto fields = knode::fuzz::split(knode::fuzz::as_view(data, size), '\0');
  {
    auto store = IpamStore::Open(conf->ipam.data_dir, conf->name);
    if (!store.ok()) knode::fuzz::fail("cannot open the store in the private directory", store.error());
    const std::string& d = store->dir();
    if (fields.size() > 0) knode::fuzz::write_file(d + "/last_reserved_ip.0", fields[0]);
    if (fields.size() > 1) knode::fuzz::write_file(d + "/last_reserved_ip.1", fields[1]);
    for (size_t i = 2; i + 1 < fields.size() && i < 2 + 2 * 32; i += 2) {
      std::string name = clean_name(fields[i]);
      if (name.empty()) continue;
      knode::fuzz::write_file(d + "/" + name, fields[i + 1]);
    }

    const auto before = store->allocations();
    for (size_t set = 0; set < 3; ++set) (void)store->last_reserved(set);
    Attachment someone{"c1", "eth0"};
    if (!before.empty()) someone = before.begin()->second;
    (void)store->find(someone);
    for (const auto& [ip, owner] : before) (void)store->is_reserved(ip);
    for (const auto& set : conf->ipam.ranges) (void)ipam_free_count(*store, set, 64);

    const Attachment me{"fuzz-container", "eth0"};
    auto alloc = ipam_allocate(*store, conf->ipam, me);
    if (alloc.ok()) {
      if (alloc->ips.size() != conf->ipam.ranges.size()) knode::fuzz::fail("one address per range set expected");
      for (size_t i = 0; i < alloc->ips.size(); ++i) {
        const auto& ip = alloc->ips[i].address.ip;
        if (!in_set(conf->ipam.ranges[i], ip)) knode::fuzz::fail("allocated outside its range set", ip.str());
        if (alloc->ips[i].gateway && *alloc->ips[i].gateway == ip) knode::fuzz::fail("allocated the gateway", ip.str());
        if (find_range(conf->ipam, ip) == nullptr) knode::fuzz::fail("find_range misses an allocated address", ip.str());
      }
    }
    (void)store->release_owner(me);
    (void)store->release_owner(someone);
  }  // the store (and its lock) goes before the directory
  return 0;
}
