#include "volume/atomic_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "volume_test_support.h"

namespace knode::kubelet::volume {
namespace {

using testing::entries;
using testing::exists;
using testing::is_symlink;
using testing::link_target;
using testing::mode_of;
using testing::read_file;
using testing::TempDir;

class AtomicWriterTest : public ::testing::Test {
 protected:
  std::string at(const std::string& rel) const { return tmp_.path() + "/" + rel; }
  Result<bool> write(const Payload& p) { return AtomicWriter(tmp_.path(), "test volume").write(p); }
  std::string data_dir() const { return link_target(at("..data")); }

  TempDir tmp_;
};

TEST_F(AtomicWriterTest, WritesTimestampedDataBehindDataLink) {
  auto r = write({{"app.conf", {"a=1\n", 0644}}, {"keys/tls.key", {"secret", 0400}}});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(*r);

  std::string ts = data_dir();
  ASSERT_EQ(ts.rfind("..", 0), 0u) << ts;
  EXPECT_TRUE(ts[2] >= '0' && ts[2] <= '9') << ts;  // ..YYYY_MM_DD_HH_MM_SS.<random>
  EXPECT_EQ(mode_of(at(ts)), 0755);
  EXPECT_EQ(link_target(at("app.conf")), "..data/app.conf");
  EXPECT_EQ(link_target(at("keys")), "..data/keys");
  EXPECT_EQ(read_file(at("app.conf")), "a=1\n");
  EXPECT_EQ(read_file(at("keys/tls.key")), "secret");
  EXPECT_EQ(mode_of(at(ts + "/app.conf")), 0644);
  EXPECT_EQ(mode_of(at(ts + "/keys/tls.key")), 0400);
  EXPECT_EQ(entries(tmp_.path()), (std::set<std::string>{"..data", ts, "app.conf", "keys"}));
}

TEST_F(AtomicWriterTest, ModesIgnoreTheUmask) {
  mode_t old = ::umask(077);
  auto r = write({{"a", {"x", 0664}}});
  ::umask(old);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(mode_of(at("a")), 0664);
  EXPECT_EQ(mode_of(at(data_dir())), 0755);
}

TEST_F(AtomicWriterTest, UnchangedPayloadIsNotRewritten) {
  ASSERT_TRUE(write({{"a", {"1", 0644}}}).ok());
  std::string first = data_dir();
  auto r = write({{"a", {"1", 0644}}});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(*r);
  EXPECT_EQ(data_dir(), first);
}

TEST_F(AtomicWriterTest, UpdateSwapsTheDataDirectoryAtOnce) {
  ASSERT_TRUE(write({{"a", {"old a", 0644}}, {"b", {"old b", 0644}}}).ok());
  std::string old_ts = data_dir();
  // A reader that opened the file before the update.
  int held = ::open(at("a").c_str(), O_RDONLY);
  ASSERT_GE(held, 0);

  auto r = write({{"a", {"new a", 0644}}, {"b", {"new b", 0644}}});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(*r);

  std::string new_ts = data_dir();
  EXPECT_NE(new_ts, old_ts);
  EXPECT_FALSE(exists(at(old_ts))) << "the previous data directory is removed";
  EXPECT_EQ(read_file(at("a")), "new a");
  EXPECT_EQ(read_file(at("b")), "new b");
  char buf[16] = {};
  ASSERT_EQ(::read(held, buf, sizeof buf - 1), 5);
  EXPECT_STREQ(buf, "old a") << "an open file keeps its content";
  ::close(held);
  EXPECT_EQ(entries(tmp_.path()), (std::set<std::string>{"..data", new_ts, "a", "b"}));
}

TEST_F(AtomicWriterTest, DroppedPathsDisappear) {
  ASSERT_TRUE(write({{"a", {"1", 0644}}, {"b", {"2", 0644}}, {"d/c", {"3", 0644}}}).ok());
  auto r = write({{"a", {"1", 0644}}});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(*r) << "removing a path is an update";
  EXPECT_FALSE(exists(at("b")));
  EXPECT_FALSE(exists(at("d")));
  EXPECT_EQ(read_file(at("a")), "1");
}

TEST_F(AtomicWriterTest, EmptyPayloadLeavesOnlyTheDataDirectory) {
  auto r = write({});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(entries(tmp_.path()), (std::set<std::string>{"..data", data_dir()}));
}

TEST_F(AtomicWriterTest, RestoresAMissingVisibleLinkWithoutRewriting) {
  ASSERT_TRUE(write({{"a", {"1", 0644}}}).ok());
  std::string ts = data_dir();
  ASSERT_EQ(::unlink(at("a").c_str()), 0);
  auto r = write({{"a", {"1", 0644}}});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(*r);
  EXPECT_EQ(data_dir(), ts);
  EXPECT_TRUE(is_symlink(at("a")));
  EXPECT_EQ(read_file(at("a")), "1");
}

TEST_F(AtomicWriterTest, RecoversFromAnUpdateThatDiedHalfWay) {
  ASSERT_TRUE(write({{"a", {"1", 0644}}}).ok());
  // What a crash between mkdtemp and rename leaves: a data directory nothing points at and
  // a ..data_tmp link.
  ASSERT_EQ(::mkdir(at("..2020_01_01_00_00_00.abcdef").c_str(), 0755), 0);
  ASSERT_EQ(::symlink("..2020_01_01_00_00_00.abcdef", at("..data_tmp").c_str()), 0);
  auto r = write({{"a", {"2", 0644}}});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(read_file(at("a")), "2");
  EXPECT_EQ(entries(tmp_.path()), (std::set<std::string>{"..data", data_dir(), "a"}));
}

TEST_F(AtomicWriterTest, RejectsInvalidPathsWithUpstreamMessages) {
  struct Case {
    std::string path, message;
  };
  for (const auto& c : std::vector<Case>{
           {"", "invalid path: must not be empty: \"\""},
           {"/etc/passwd", "invalid path: must be relative path: /etc/passwd"},
           {"a/../../b", "invalid path: must not contain '..': a/../../b"},
           {"..data", "invalid path: must not start with '..': ..data"},
           {std::string(256, 'x'),
            "invalid path: filenames must be less than or equal to 255 characters"},
       }) {
    auto r = write({{c.path, {"x", 0644}}});
    ASSERT_FALSE(r.ok()) << c.path;
    EXPECT_EQ(r.error(), "test volume: invalid payload: " + c.message);
  }
  EXPECT_TRUE(entries(tmp_.path()).empty()) << "nothing is written for an invalid payload";
}

}  // namespace
}  // namespace knode::kubelet::volume
