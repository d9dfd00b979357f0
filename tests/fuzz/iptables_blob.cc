// Fuzzes the x_tables table decoder: iptables::detail::decode_table, what read_table does
// with the kernel's answers to IPT_SO_GET_INFO and IPT_SO_GET_ENTRIES (an ipt_getinfo:
// valid hooks, hook entry and underflow offsets, entry count and size; then `size` bytes
// of ipt_entry records): it checks every entry and indexes the chains: built-in chains by
// hook, user chains by their ERROR heads, footers, and every jump checked against a chain
// start. Then what the reconciler does with an image:
// TableImage::find/chain_at_body/policy/normalized_body, and detail::apply_edits with a
// few edits made from the image itself (replace a chain's rules, create a chain, remove a
// user chain), then normalized_body again.
//
// Input: valid_hooks, hook_entry[5], underflow[5], num_entries (u32 little-endian each,
// 48 bytes, the fields of struct ipt_getinfo after its name), then the entries; info.size
// is the number of entry bytes the input holds, as the kernel's answer would say.
//
// The kernel only ever returns entries at 8-byte aligned offsets; decode_table refuses
// any other layout before reading the entry, so such inputs are fed too (they copy into
// an aligned buffer first, as the kernel's answer lands in one).
#include <netinet/in.h>  // before the linux/ headers, as blob.cc has it
#include <linux/netfilter_ipv4/ip_tables.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "iptables/blob.h"  // dataplane/ (private to knode_iptables)
#include "knode/dataplane/iptables/rule.h"

namespace {

using knode::iptables::detail::ImageEdits;
using knode::iptables::detail::TableImage;

void inspect(const TableImage& img) {
  std::string body;
  (void)img.num_rules();
  for (size_t i = 0; i < img.chains().size(); ++i) {
    const auto& c = img.chains()[i];
    if (img.find(c.name) < 0) knode::fuzz::fail("a chain of the image is not found by name", c.name);
    (void)img.chain_at_body(c.body);
    if (c.hook >= 0) (void)img.policy(i);
    img.normalized_body(i, &body);
  }
}

std::string encoded(const knode::iptables::Rule& r) {
  std::string out;
  if (r.validate().ok()) r.encode_to(out);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  knode::fuzz::Reader in(data, size);
  ipt_getinfo info;
  std::memset(&info, 0, sizeof info);
  info.valid_hooks = in.u32le();
  for (auto& h : info.hook_entry) h = in.u32le();
  for (auto& u : info.underflow) u = in.u32le();
  info.num_entries = in.u32le();
  std::strncpy(info.name, "nat", sizeof info.name - 1);
  const std::string_view entries = in.rest();
  info.size = static_cast<uint32_t>(entries.size());

  auto img = knode::iptables::detail::decode_table(info, entries.data(), entries.size());
  if (!img.ok()) return 0;
  if (img->size() != entries.size()) knode::fuzz::fail("the image's size is not the table's");
  inspect(*img);

  // Edits as the reconciler makes them, from the image's own chains.
  const auto& chains = img->chains();
  if (chains.empty()) return 0;
  using knode::iptables::Jump;
  using knode::iptables::Rule;
  using knode::iptables::Verdict;
  ImageEdits edits;
  Rule accept;
  accept.target = Verdict::kAccept;
  Rule jump_last;
  jump_last.target = Jump{chains.back().hook < 0 ? chains.back().name : std::string("FUZZ-NEW")};
  ImageEdits::Replace rep;
  rep.chain = static_cast<uint32_t>(data[0] % chains.size());
  rep.bytes = encoded(accept) + encoded(jump_last);
  rep.num_rules = 2;
  edits.replace.push_back(std::move(rep));
  ImageEdits::Create cre;
  cre.name = "FUZZ-NEW";
  if (img->find(cre.name) < 0) {
    Rule ret;
    ret.target = Verdict::kReturn;
    cre.bytes = std::make_unique<std::string>(encoded(ret));
    cre.num_rules = 1;
    edits.create.push_back(std::move(cre));
  }
  const uint32_t victim = size > 1 ? data[1] % chains.size() : 0;
  if (chains[victim].hook < 0 && victim != edits.replace[0].chain && victim + 1 != chains.size()) {
    edits.remove.push_back(victim);
  }
  TableImage edited = std::move(*img);
  knode::iptables::detail::EntryMap moved;
  if (knode::iptables::detail::apply_edits(edited, std::move(edits), &moved).ok()) {
    if (moved.entries != edited.num_entries()) {
      knode::fuzz::fail("the entry map does not cover the edited table's entries");
    }
    uint32_t end = 0;
    for (const auto& r : moved.runs) {
      if (r.count == 0 || r.to < end || r.to + r.count > moved.entries) {
        knode::fuzz::fail("the entry map's runs are not ascending within the edited table");
      }
      end = r.to + r.count;
    }
    inspect(edited);
  }
  return 0;
}
