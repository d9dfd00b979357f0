// Pure tests of the x_tables table decoder (detail::decode_table): what the kernel's
// IPT_SO_GET_ENTRIES answer must look like before any entry of it is read.
#include <netinet/in.h>  // before the linux/ headers
#include <gtest/gtest.h>
#include <linux/netfilter_ipv4/ip_tables.h>

#include <cstring>
#include <string>
#include <vector>

#include "iptables/blob.h"
#include "iptables/entry.h"

namespace knode::iptables::detail {
namespace {

// A filter table as iptables-legacy writes it: INPUT, FORWARD and OUTPUT with only their
// policies, a user chain KUBE-X (head, RETURN footer), the final ERROR entry.
struct Blob {
  ipt_getinfo info{};
  std::vector<uint64_t> words;  // 8-byte aligned, as the kernel's entries are
  uint32_t size = 0;

  char* base() { return reinterpret_cast<char*>(words.data()); }
  ipt_entry* at(uint32_t off) { return entry_at(base(), off); }

  uint32_t put_standard(int verdict) {
    const uint32_t off = grow(kStandardEntrySize);
    ipt_entry* e = at(off);
    e->target_offset = sizeof(ipt_entry);
    e->next_offset = kStandardEntrySize;
    xt_entry_target* t = target_of(e);
    t->u.user.target_size = kStandardTargetSize;
    verdict_of(t) = verdict;
    return off;
  }
  uint32_t put_error(const char* name) {
    const uint32_t off = grow(kErrorEntrySize);
    ipt_entry* e = at(off);
    e->target_offset = sizeof(ipt_entry);
    e->next_offset = kErrorEntrySize;
    auto* t = reinterpret_cast<xt_error_target*>(target_of(e));
    t->target.u.user.target_size = kErrorTargetSize;
    std::strcpy(t->target.u.user.name, XT_ERROR_TARGET);
    std::strncpy(t->errorname, name, sizeof t->errorname - 1);
    return off;
  }
  uint32_t grow(size_t n) {
    const uint32_t off = size;
    size += static_cast<uint32_t>(n);
    words.resize((size + 7) / 8 + 1);  // one spare word: a test may move the end
    std::memset(base() + off, 0, n);
    return off;
  }

  Result<TableImage> decode() {
    info.size = size;
    return decode_table(info, words.data(), size);
  }
};

constexpr int kAccept = -NF_ACCEPT - 1;

struct FilterBlob : Blob {
  uint32_t head = 0, footer = 0, end = 0;
  FilterBlob() {
    std::strcpy(info.name, "filter");
    for (int hook : {NF_INET_LOCAL_IN, NF_INET_FORWARD, NF_INET_LOCAL_OUT}) {
      info.valid_hooks |= 1u << hook;
      info.hook_entry[hook] = info.underflow[hook] = put_standard(kAccept);
    }
    head = put_error("KUBE-X");
    footer = put_standard(XT_RETURN);
    end = put_error(XT_ERROR_TARGET);
    info.num_entries = 6;
  }
};

TEST(IptablesBlob, WellFormedTableIsIndexed) {
  FilterBlob b;
  auto img = b.decode();
  ASSERT_TRUE(img.ok()) << img.error();
  EXPECT_EQ(img->name(), "filter");
  ASSERT_EQ(img->chains().size(), 4u);
  EXPECT_EQ(img->chains()[0].name, "INPUT");
  EXPECT_EQ(img->policy(0), kAccept);
  EXPECT_EQ(img->chains()[3].name, "KUBE-X");
  EXPECT_EQ(img->chains()[3].footer, b.footer);
  EXPECT_EQ(img->size(), b.size);
}

TEST(IptablesBlob, SizeMustMatchTheInfo) {
  FilterBlob b;
  b.info.size = b.size;
  EXPECT_FALSE(decode_table(b.info, b.words.data(), b.size - 8).ok());
}

// The user chain's footer looks ahead at the next entry's target: that entry must be
// checked first (a target_offset far past the buffer was followed).
TEST(IptablesBlob, HugeTargetOffsetAfterAFooterIsRefused) {
  FilterBlob b;
  b.at(b.end)->target_offset = 0xfff0;
  EXPECT_FALSE(b.decode().ok());
}

TEST(IptablesBlob, TargetOffsetInsideTheEntryHeaderIsRefused) {
  FilterBlob b;
  b.at(b.footer)->target_offset = 8;
  EXPECT_FALSE(b.decode().ok());
}

TEST(IptablesBlob, TargetLargerThanItsEntryIsRefused) {
  FilterBlob b;
  target_of(b.at(b.end))->u.target_size = 0x4000;
  EXPECT_FALSE(b.decode().ok());
  FilterBlob c;
  target_of(c.at(c.end))->u.target_size = 8;  // smaller than its own header
  EXPECT_FALSE(c.decode().ok());
}

TEST(IptablesBlob, UnterminatedChainNameIsRefused) {
  FilterBlob b;
  auto* t = reinterpret_cast<xt_error_target*>(target_of(b.at(b.head)));
  std::memset(t->errorname, 'A', sizeof t->errorname);
  EXPECT_FALSE(b.decode().ok());
}

TEST(IptablesBlob, MisalignedOrZeroNextOffsetIsRefused) {
  FilterBlob b;
  b.at(b.end)->next_offset = kErrorEntrySize + 4;
  b.size += 4;
  EXPECT_FALSE(b.decode().ok());
  FilterBlob z;
  z.at(z.footer)->next_offset = 0;
  EXPECT_FALSE(z.decode().ok());
}

TEST(IptablesBlob, EntryCutByTheBufferIsRefused) {
  FilterBlob b;
  b.size -= 8;  // the last entry's target runs past the answer
  EXPECT_FALSE(b.decode().ok());
  FilterBlob c;
  c.size = c.end + 16;  // not even an ipt_entry header left
  EXPECT_FALSE(c.decode().ok());
}

TEST(IptablesBlob, MatchesThatDoNotTileUpToTheTargetAreRefused) {
  FilterBlob b;
  // A rule in KUBE-X: one match of 40 bytes claiming 200.
  Blob r;
  const uint32_t off = r.grow(sizeof(ipt_entry) + 40 + kStandardTargetSize);
  ipt_entry* e = r.at(off);
  e->target_offset = sizeof(ipt_entry) + 40;
  e->next_offset = sizeof(ipt_entry) + 40 + kStandardTargetSize;
  reinterpret_cast<xt_entry_match*>(e->elems)->u.match_size = 200;
  target_of(e)->u.target_size = kStandardTargetSize;
  verdict_of(target_of(e)) = kAccept;
  // Splice it in after the head: footer and end move along.
  std::vector<char> bytes(b.base(), b.base() + b.size);
  bytes.insert(bytes.begin() + b.footer, r.base(), r.base() + r.size);
  b.words.assign((bytes.size() + 7) / 8, 0);
  std::memcpy(b.base(), bytes.data(), bytes.size());
  b.size = static_cast<uint32_t>(bytes.size());
  EXPECT_FALSE(b.decode().ok());
  reinterpret_cast<xt_entry_match*>(b.at(b.footer)->elems)->u.match_size = 40;
  auto img = b.decode();
  ASSERT_TRUE(img.ok()) << img.error();
  EXPECT_EQ(img->chains()[3].num_rules, 1u);
}

TEST(IptablesBlob, UserChainWithoutFooterIsRefused) {
  FilterBlob b;
  verdict_of(target_of(b.at(b.footer))) = kAccept;  // a rule, not a RETURN footer
  EXPECT_FALSE(b.decode().ok());
}

TEST(IptablesBlob, BuiltinPolicyThatIsNoVerdictIsRefused) {
  FilterBlob b;
  std::strcpy(target_of(b.at(0))->u.user.name, "MARK");
  EXPECT_FALSE(b.decode().ok());
}

// Kept entries as runs: a run that continues the last one in both tables merges into it,
// one that jumps in either starts another; entries in no run are new.
TEST(IptablesBlob, EntryMapMergesRunsAndAnswersPerEntry) {
  EntryMap m;
  m.entries = 20;
  m.add(0, 0, 3);
  m.add(3, 3, 2);   // continues both: merged
  m.add(5, 9, 2);   // old entries 5..8 were removed
  m.add(7, 11, 0);  // nothing
  m.add(10, 11, 1); // new entries 7..9 before it
  m.add(11, 12, 1); // continues: merged
  ASSERT_EQ(m.runs.size(), 3u);
  EXPECT_EQ(m.runs[0].count, 5u);
  EXPECT_EQ(m.runs[2].count, 2u);
  const int64_t want[] = {0, 1, 2, 3, 4, 9, 10, -1, -1, -1, 11, 12, -1};
  for (uint32_t to = 0; to < std::size(want); ++to) EXPECT_EQ(m.from_of(to), want[to]) << "entry " << to;
  EXPECT_EQ(m.from_of(19), -1);
}

}  // namespace
}  // namespace knode::iptables::detail
