// Fuzzes nft's userdata notes as knode reads them back from the kernel
// (NFTA_*_USERDATA: one byte type, one byte length, the value): nftables::udata::each,
// comment_of (tables, chains, rules), parse_set_note (a set's key/data byte orders,
// typeof expressions, comment) and parse_element_note. Then the promise the reconciler
// relies on when it compares what it reads with what it wants: a note read back and
// written again with set_note / element_note / comment_note reads the same, but for
// comments cut to udata::kMaxCommentLength (define KNODE_FUZZ_NO_ROUNDTRIP to skip that
// check).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "nftables/udata.h"  // dataplane/ (private to knode_nftables)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace udata = knode::nftables::udata;
  const std::string_view note = knode::fuzz::as_view(data, size);
  size_t n = 0;
  (void)udata::each(note, [&](uint8_t, std::string_view v) {
    n += v.size();
    (void)udata::string_of(v);
    (void)udata::u32_of(v);
  });
  const std::string comment = udata::comment_of(note);
  const knode::nftables::SetUserdata set = udata::parse_set_note(note);
  knode::nftables::Element elem;
  udata::parse_element_note(note, &elem);
#ifndef KNODE_FUZZ_NO_ROUNDTRIP
  // The writers cut comments to udata::kMaxCommentLength (as nft does): what reads back is
  // the comment so cut, everything else as read.
  knode::nftables::SetUserdata set_cut = set;
  set_cut.comment = udata::clamp_comment(set.comment);
  if (!(udata::parse_set_note(udata::set_note(set)) == set_cut)) {
    knode::fuzz::fail("parse_set_note(set_note(u)) != u", set.comment);
  }
  knode::nftables::Element again;
  udata::parse_element_note(udata::element_note(elem), &again);
  if (again.comment != udata::clamp_comment(elem.comment) || again.udata_flags != elem.udata_flags) {
    knode::fuzz::fail("parse_element_note(element_note(e)) != e", elem.comment);
  }
  if (udata::comment_of(udata::comment_note(comment)) != udata::clamp_comment(comment)) {
    knode::fuzz::fail("comment_of(comment_note(c)) != c", comment);
  }
  if (udata::clamp_comment(comment).size() > udata::kMaxCommentLength) {
    knode::fuzz::fail("clamp_comment(c) is longer than kMaxCommentLength", comment);
  }
#endif
  return 0;
}
