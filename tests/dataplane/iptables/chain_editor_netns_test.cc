// The chain editor in a private netns: idempotent edits, commits only on change, the
// xtables lock with its time-out, and others' rules left alone.
#include "knode/dataplane/iptables/chain_editor.h"

#include <gtest/gtest.h>
#include <sys/file.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "support/netns_util.h"

namespace knode::iptables {
namespace {

using testing::saved;

Rule rule(const std::string& text) {
  auto r = parse_rule(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.error();
  return r.ok() ? *r : Rule{};
}

bool has_line(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

TEST(ChainEditor, EditsAreIdempotentAndCommitOnlyOnChange) {
  KNODE_REQUIRE_NETNS();
  testing::reset_tables();
  // Someone else's rule in a built-in chain must survive.
  ASSERT_EQ(testing::run("iptables-legacy -t nat -A POSTROUTING -s 192.0.2.0/24 -j MASQUERADE"), "");
  std::vector<Rule> body = {rule("-d 10.88.0.0/16 -j RETURN"), rule("-j MASQUERADE")};
  auto edit = [&](ChainEditor& t) {
    if (Status s = t.ensure_chain("KNODE-T"); !s) return s;
    if (Status s = t.set_chain("KNODE-T", body); !s) return s;
    return t.ensure_rule("POSTROUTING", rule("-s 10.88.0.0/16 -j KNODE-T"), ChainEditor::kFirst);
  };
  ASSERT_TRUE(edit_table("nat", edit).ok());
  auto lines = saved("nat");
  EXPECT_TRUE(has_line(lines, "-A KNODE-T -d 10.88.0.0/16 -j RETURN")) << ::testing::PrintToString(lines);
  EXPECT_TRUE(has_line(lines, "-A KNODE-T -j MASQUERADE"));
  EXPECT_TRUE(has_line(lines, "-A POSTROUTING -s 192.0.2.0/24 -j MASQUERADE"));
  // The insert-first rule went before the foreign one.
  auto ours = std::find(lines.begin(), lines.end(), "-A POSTROUTING -s 10.88.0.0/16 -j KNODE-T");
  auto theirs = std::find(lines.begin(), lines.end(), "-A POSTROUTING -s 192.0.2.0/24 -j MASQUERADE");
  ASSERT_NE(ours, lines.end());
  EXPECT_LT(ours, theirs);

  // The same edit again changes nothing: no commit, so the table stays byte for byte.
  bool changed = true;
  ASSERT_TRUE(edit_table("nat", [&](ChainEditor& t) {
                Status s = edit(t);
                changed = t.changed();
                return s;
              }).ok());
  EXPECT_FALSE(changed);
  EXPECT_EQ(saved("nat"), lines);
}

TEST(ChainEditor, RemoveAndDropLeaveNothingOfOurs) {
  KNODE_REQUIRE_NETNS();
  testing::reset_tables();
  const Rule jump = rule("-j KNODE-T");
  ASSERT_TRUE(edit_table("nat", [&](ChainEditor& t) {
                if (Status s = t.set_chain("KNODE-T", {rule("-j RETURN")}); !s) return s;
                if (Status s = t.ensure_rule("OUTPUT", jump); !s) return s;
                return t.ensure_rule("OUTPUT", jump);  // once only
              }).ok());
  auto lines = saved("nat");
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "-A OUTPUT -j KNODE-T"), 1);
  ASSERT_TRUE(edit_table("nat", [&](ChainEditor& t) {
                EXPECT_TRUE(t.contains("OUTPUT", jump));
                EXPECT_TRUE(t.holds_exactly("KNODE-T", {rule("-j RETURN")}));
                EXPECT_FALSE(t.holds_exactly("KNODE-T", {rule("-j ACCEPT")}));
                if (Status s = t.remove_rule("OUTPUT", jump); !s) return s;
                if (Status s = t.drop_chain("KNODE-T"); !s) return s;
                return t.drop_chain("KNODE-ABSENT");  // nothing to do
              }).ok());
  EXPECT_EQ(saved("nat").size(), 4u);  // the four built-in chains, empty
}

TEST(ChainEditor, AnEditThatFailsCommitsNothing) {
  KNODE_REQUIRE_NETNS();
  testing::reset_tables();
  Status s = edit_table("nat", [&](ChainEditor& t) {
    if (Status e = t.ensure_chain("KNODE-T"); !e) return e;
    return Status::Error("the caller gave up", EINVAL);
  });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "the caller gave up");
  EXPECT_EQ(saved("nat").size(), 4u);
}

TEST(ChainEditor, WaitsForTheXtablesLockThenSaysWhoHoldsIt) {
  KNODE_REQUIRE_NETNS();
  int fd = ::open("/run/xtables.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  auto t0 = std::chrono::steady_clock::now();
  Status s = edit_table("nat", [](ChainEditor& t) { return t.ensure_chain("KNODE-T"); }, /*lock_wait_ms=*/300);
  auto waited = std::chrono::steady_clock::now() - t0;
  ::close(fd);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error_number(), EWOULDBLOCK);
  EXPECT_NE(s.message().find("held by another program"), std::string::npos) << s.message();
  EXPECT_GE(waited, std::chrono::milliseconds(300));
  EXPECT_LT(waited, std::chrono::seconds(3));
}

}  // namespace
}  // namespace knode::iptables
