#include "volume/host_path.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "volume_test_support.h"

namespace knode::kubelet::volume {
namespace {

using testing::exists;
using testing::mode_of;
using testing::TempDir;

Status check(const std::string& path, const std::string& type) {
  api::HostPathVolumeSource src;
  src.path = path;
  src.type = type;
  return check_host_path(src);
}

class HostPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() + "/dir";
    file_ = tmp_.path() + "/file";
    sock_ = tmp_.path() + "/sock";
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0);
    testing::write_file(file_, "x");
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(sock_.size(), sizeof addr.sun_path);
    std::strcpy(addr.sun_path, sock_.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }

  TempDir tmp_;
  std::string dir_, file_, sock_;
};

TEST_F(HostPathTest, UnsetTypeChecksNothing) {
  EXPECT_TRUE(check(tmp_.path() + "/missing", "").ok());
  EXPECT_FALSE(exists(tmp_.path() + "/missing"));
}

TEST_F(HostPathTest, EachTypeAcceptsItsKind) {
  EXPECT_TRUE(check(dir_, "Directory").ok());
  EXPECT_TRUE(check(dir_, "DirectoryOrCreate").ok());
  EXPECT_TRUE(check(file_, "File").ok());
  EXPECT_TRUE(check(file_, "FileOrCreate").ok());
  EXPECT_TRUE(check(sock_, "Socket").ok());
  EXPECT_TRUE(check("/dev/null", "CharDevice").ok());
}

TEST_F(HostPathTest, BlockDeviceAcceptsOne) {
  std::string dev;
  for (const char* candidate :
       {"/dev/loop0", "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/ram0"}) {
    struct stat st {};
    if (::stat(candidate, &st) == 0 && S_ISBLK(st.st_mode)) {
      dev = candidate;
      break;
    }
  }
  if (dev.empty()) GTEST_SKIP() << "no block device on this machine to check against";
  EXPECT_TRUE(check(dev, "BlockDevice").ok());
}

TEST_F(HostPathTest, WrongKindsFailWithUpstreamMessages) {
  struct Case {
    std::string path, type, message;
  };
  std::string missing = tmp_.path() + "/missing";
  for (const auto& c : std::vector<Case>{
           {file_, "Directory", "hostPath type check failed: " + file_ + " is not a directory"},
           {missing, "Directory", "hostPath type check failed: " + missing + " is not a directory"},
           {file_, "DirectoryOrCreate",
            "hostPath type check failed: " + file_ + " is not a directory"},
           {dir_, "File", "hostPath type check failed: " + dir_ + " is not a file"},
           {missing, "File", "hostPath type check failed: " + missing + " is not a file"},
           {dir_, "FileOrCreate", "hostPath type check failed: " + dir_ + " is not a file"},
           {file_, "Socket", "hostPath type check failed: " + file_ + " is not a socket file"},
           {file_, "CharDevice",
            "hostPath type check failed: " + file_ + " is not a character device"},
           {"/dev/null", "BlockDevice",
            "hostPath type check failed: /dev/null is not a block device"},
           {dir_, "Pipe", "Pipe is an invalid volume type"},
       }) {
    Status s = check(c.path, c.type);
    ASSERT_FALSE(s.ok()) << c.type << " " << c.path;
    EXPECT_EQ(s.message(), c.message);
  }
  EXPECT_FALSE(exists(missing)) << "checks create nothing";
}

TEST_F(HostPathTest, DirectoryOrCreateMakesTheDirectoryAndParents) {
  std::string path = tmp_.path() + "/a/b/c";
  ASSERT_TRUE(check(path, "DirectoryOrCreate").ok());
  EXPECT_EQ(mode_of(path), 0755);
  EXPECT_EQ(mode_of(tmp_.path() + "/a"), 0755);
  EXPECT_TRUE(check(path, "Directory").ok());
}

TEST_F(HostPathTest, FileOrCreateMakesAnEmptyFileButNotItsParent) {
  std::string path = tmp_.path() + "/new";
  ASSERT_TRUE(check(path, "FileOrCreate").ok());
  EXPECT_EQ(mode_of(path), 0644);
  EXPECT_EQ(testing::read_file(path), "");

  std::string orphan = tmp_.path() + "/nodir/new";
  Status s = check(orphan, "FileOrCreate");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error_number(), ENOENT);
  EXPECT_NE(s.message().find(orphan), std::string::npos) << s.message();
}

TEST_F(HostPathTest, SymlinksAreFollowedAsUpstreamStatDoes) {
  std::string link = tmp_.path() + "/link";
  ASSERT_EQ(::symlink(dir_.c_str(), link.c_str()), 0);
  EXPECT_TRUE(check(link, "Directory").ok());
}

TEST_F(HostPathTest, RejectsBackstepsAndRelativePaths) {
  Status s = check("/var/../etc", "");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "invalid HostPath `/var/../etc`: must not contain '..'");
  s = check("var/log", "");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "invalid HostPath `var/log`: must be an absolute path");
}

}  // namespace
}  // namespace knode::kubelet::volume
