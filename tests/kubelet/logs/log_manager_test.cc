// Container logs on a real filesystem (a temporary root) with the fake runtime: log
// directories, /var/log/containers symlinks, rotation with gzip and reopen, clean.
#include "logs/log_manager.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fakes/fake_clock.h"
#include "fakes/fake_runtime.h"
#include "labels.h"
#include "support/temp_dir.h"

using namespace knode::kubelet;
using knode::Status;
using knode::testing::FakeClock;
using knode::testing::FakeRuntime;
using knode::testing::TempDir;
namespace rt = knode::runtime;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kImage = "registry.local/app:1";

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void append(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::app | std::ios::binary) << text;
}

// The content of a gzip file, and whether it really is one (magic bytes and a stream
// zlib had to inflate, not a plain file it passed through).
std::string gunzip(const std::string& path, bool* is_gzip) {
  std::string raw = read(path);
  *is_gzip = raw.size() > 2 && static_cast<unsigned char>(raw[0]) == 0x1f &&
             static_cast<unsigned char>(raw[1]) == 0x8b;
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return "";
  std::string out;
  char buf[4096];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  *is_gzip = *is_gzip && n == 0 && gzdirect(f) == 0;
  gzclose(f);
  return out;
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class LogManagerTest : public ::testing::Test {
 protected:
  LogManagerTest() : rt_(clock_), logs_(rt_, clock_, options(100)) {
    // Rotated names carry local time; read it as UTC, as the clock's start is given.
    setenv("TZ", "UTC", 1);
    tzset();
    rt_.add_image(kImage, /*present=*/true);
    // As containerd does on reopen: a new, empty live log.
    rt_.on_reopen_log([](const std::string&, const std::string& path) { append(path, ""); });
  }
  LogManagerOptions options(int64_t max_size) {
    LogManagerOptions o;
    o.root = tmp_.path();
    o.policy.max_size = max_size;
    o.policy.max_files = 5;
    return o;
  }

  // A container of pod shop/web; its runtime has written `output` to its log.
  std::string start(const std::string& name, uint32_t attempt, const std::string& output,
                    bool ours = true, bool run = true) {
    rt::PodSandboxConfig& sb = sandbox_;
    if (sandbox_id_.empty()) {
      sb.metadata = {"web", "uid-web", "shop", 0};
      sb.log_directory = logs_.pod_log_directory("shop", "web", "uid-web");
      sb.labels = {{kPodNameLabel, "web"}, {kPodNamespaceLabel, "shop"}, {kPodUidLabel, "uid-web"}};
      sandbox_id_ = *rt_.run_pod_sandbox(sb);
    }
    auto dir = logs_.ensure_container_log_directory("shop", "web", "uid-web", name);
    EXPECT_TRUE(dir.ok()) << dir.error();
    rt::ContainerConfig c;
    c.metadata = {name, attempt};
    c.image.image = kImage;
    c.log_path = container_log_path(name, static_cast<int32_t>(attempt));
    if (ours) {
      c.labels = sb.labels;
      c.labels[kContainerNameLabel] = name;
    }
    auto id = rt_.create_container(sandbox_id_, c, sb);
    EXPECT_TRUE(id.ok()) << id.error();
    if (run) {
      EXPECT_TRUE(rt_.start_container(*id).ok());
      append(log_of(*id), output);
    }
    return *id;
  }
  std::string log_of(const std::string& id) { return rt_.container_status(id)->log_path; }
  std::string link_of(const std::string& name, const std::string& id) {
    return tmp_.path() + container_log_symlink("web", "shop", name, id);
  }

  TempDir tmp_;
  FakeClock clock_;
  FakeRuntime rt_;
  LogManager logs_;
  rt::PodSandboxConfig sandbox_;
  std::string sandbox_id_;
};

}  // namespace

TEST_F(LogManagerTest, DirectoriesAreUpstreamsUnderTheRoot) {
  const mode_t old = umask(0);
  auto dir = logs_.ensure_container_log_directory("shop", "web", "uid-web", "app");
  umask(old);
  ASSERT_TRUE(dir.ok()) << dir.error();
  const std::string pod_dir = tmp_.path() + "/var/log/pods/shop_web_uid-web";
  EXPECT_EQ(logs_.pod_log_directory("shop", "web", "uid-web"), pod_dir);
  EXPECT_EQ(*dir, pod_dir + "/app");
  EXPECT_EQ(logs_.pods_directory(), tmp_.path() + "/var/log/pods");
  EXPECT_EQ(logs_.containers_directory(), tmp_.path() + "/var/log/containers");
  for (const auto& d : {pod_dir, *dir}) {
    struct stat st {};
    ASSERT_EQ(stat(d.c_str(), &st), 0) << d;
    EXPECT_EQ(st.st_mode & 07777, 0755u) << d;
  }
  EXPECT_TRUE(logs_.ensure_container_log_directory("shop", "web", "uid-web", "app").ok());

  LogManager on_node(rt_, clock_);
  EXPECT_EQ(on_node.pod_log_directory("shop", "web", "uid-web"), "/var/log/pods/shop_web_uid-web");
  EXPECT_EQ(on_node.containers_directory(), "/var/log/containers");
}

TEST_F(LogManagerTest, BelowMaxSizeNothingRotates) {
  std::string id = start("app", 0, std::string(99, 'x'));
  ASSERT_TRUE(logs_.run_once().ok());
  EXPECT_EQ(rt_.count("ReopenContainerLog"), 0);
  EXPECT_EQ(names_in(fs::path(log_of(id)).parent_path()), (std::vector<std::string>{"0.log"}));
}

TEST_F(LogManagerTest, AtMaxSizeTheLogIsRenamedAndReopened) {
  std::string id = start("app", 0, std::string(100, 'x'));
  ASSERT_TRUE(logs_.run_once().ok());
  EXPECT_EQ(rt_.calls().back(), (FakeRuntime::Call{"ReopenContainerLog", id}));
  const std::string log = log_of(id);
  EXPECT_EQ(names_in(fs::path(log).parent_path()),
            (std::vector<std::string>{"0.log", "0.log.20240102-030405"}));
  EXPECT_EQ(read(log + ".20240102-030405"), std::string(100, 'x'));
  EXPECT_EQ(fs::file_size(log), 0u);  // the runtime's new live log
}

TEST_F(LogManagerTest, KeepsMaxFilesGzippingAllButTheNewestRotated) {
  std::string id = start("app", 0, "");
  const std::string log = log_of(id);
  for (int i = 1; i <= 6; ++i) {
    clock_.advance(1s);
    append(log, "rotation " + std::to_string(i) + " " + std::string(90, '.') + "\n");
    ASSERT_TRUE(logs_.run_once().ok()) << i;
  }
  EXPECT_EQ(rt_.count("ReopenContainerLog"), 6);
  // The live log, the last rotated one as it is, and three gzipped; the two oldest went.
  EXPECT_EQ(
      names_in(fs::path(log).parent_path()),
      (std::vector<std::string>{"0.log", "0.log.20240102-030408.gz", "0.log.20240102-030409.gz",
                                "0.log.20240102-030410.gz", "0.log.20240102-030411"}));
  EXPECT_EQ(read(log + ".20240102-030411").substr(0, 11), "rotation 6 ");
  for (int i = 3; i <= 5; ++i) {
    bool is_gzip = false;
    char stamp[16];
    std::snprintf(stamp, sizeof(stamp), "0304%02d", 5 + i);
    std::string text = gunzip(log + ".20240102-" + stamp + ".gz", &is_gzip);
    EXPECT_TRUE(is_gzip) << i;
    EXPECT_EQ(text, "rotation " + std::to_string(i) + " " + std::string(90, '.') + "\n");
  }
}

TEST_F(LogManagerTest, AFailedReopenPutsTheLogBack) {
  std::string id = start("app", 0, std::string(100, 'x'));
  rt_.fail_next("ReopenContainerLog", Status::Error("CRI ReopenContainerLog: Unknown: busy", EIO));
  Status s = logs_.run_once();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("CRI ReopenContainerLog: Unknown: busy"), std::string::npos);
  const std::string log = log_of(id);
  EXPECT_EQ(names_in(fs::path(log).parent_path()), (std::vector<std::string>{"0.log"}));
  EXPECT_EQ(read(log), std::string(100, 'x'));

  ASSERT_TRUE(logs_.run_once().ok());
  EXPECT_TRUE(fs::exists(log + ".20240102-030405"));
}

TEST_F(LogManagerTest, AMissingLiveLogIsReopened) {
  std::string id = start("app", 0, "hello\n");
  fs::remove(log_of(id));
  ASSERT_TRUE(logs_.run_once().ok());
  EXPECT_EQ(rt_.count("ReopenContainerLog"), 1);
  EXPECT_TRUE(fs::exists(log_of(id)));
}

TEST_F(LogManagerTest, RunningContainersGetTheirSymlink) {
  std::string id = start("app", 0, "hello\n");
  const std::string link = link_of("app", id);
  EXPECT_FALSE(fs::exists(fs::symlink_status(link)));
  ASSERT_TRUE(logs_.run_once().ok());
  ASSERT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), fs::path(log_of(id)));
  EXPECT_EQ(read(link), "hello\n");
  // Again: nothing changes.
  ASSERT_TRUE(logs_.run_once().ok());
  EXPECT_EQ(fs::read_symlink(link), fs::path(log_of(id)));
}

TEST_F(LogManagerTest, LinkingWaitsForTheLogFile) {
  std::string id = start("app", 0, "", true, /*run=*/false);
  const std::string log = log_of(id);
  const int asked = rt_.count("ContainerStatus");
  ASSERT_TRUE(logs_.link_container_log("shop", "web", "app", id, log).ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(link_of("app", id))));
  append(log, "up\n");
  ASSERT_TRUE(logs_.link_container_log("shop", "web", "app", id, log).ok());
  ASSERT_TRUE(fs::is_symlink(link_of("app", id)));
  EXPECT_EQ(fs::read_symlink(link_of("app", id)), fs::path(log));
  // From what the kubelet knows: the runtime is not asked.
  EXPECT_EQ(rt_.count("ContainerStatus"), asked);
}

TEST_F(LogManagerTest, DanglingSymlinksOfContainersThatAreGoneOrExitedAreRemoved) {
  std::string exited = start("app", 0, "bye\n");
  ASSERT_TRUE(logs_.link_container_log("shop", "web", "app", exited, log_of(exited)).ok());
  rt_.exit_container(exited, 0);
  fs::remove(log_of(exited));
  // Created, not started yet: its link may dangle until the runtime writes.
  std::string created = start("init", 0, "", true, /*run=*/false);
  const std::string dir = logs_.containers_directory();
  fs::create_symlink(log_of(created), link_of("init", created));
  fs::create_symlink(tmp_.path() + "/nowhere.log", dir + "/web_shop_app-0123456789ab.log");
  fs::create_symlink(tmp_.path() + "/nowhere.log", dir + "/notes.txt");
  append(tmp_.path() + "/there.log", "x");
  fs::create_symlink(tmp_.path() + "/there.log", dir + "/other_ns_c-fedcba987654.log");

  ASSERT_TRUE(logs_.run_once().ok());
  EXPECT_EQ(names_in(dir),
            (std::vector<std::string>{"notes.txt", "other_ns_c-fedcba987654.log",
                                      fs::path(link_of("init", created)).filename().string()}));
}

TEST_F(LogManagerTest, CleanRemovesOneContainersLogsAndSymlink) {
  std::string c1 = start("app", 1, "one\n");
  std::string c10 = start("app", 10, "ten\n");
  ASSERT_TRUE(logs_.run_once().ok());
  const std::string log1 = log_of(c1);
  append(log1 + ".20240102-030405.gz", "z");
  append(log1 + ".20240102-030406", "r");
  rt_.exit_container(c1, 0);

  ASSERT_TRUE(logs_.clean(c1).ok());
  EXPECT_EQ(names_in(fs::path(log1).parent_path()), (std::vector<std::string>{"10.log"}));
  EXPECT_FALSE(fs::exists(fs::symlink_status(link_of("app", c1))));
  EXPECT_TRUE(fs::is_symlink(link_of("app", c10)));
  // Nothing left to clean is fine.
  EXPECT_TRUE(logs_.clean(c1).ok());
  EXPECT_FALSE(logs_.clean("ctr-none").ok());
}

TEST_F(LogManagerTest, ContainersTheKubeletDidNotCreateAreLeftAlone) {
  std::string id = start("debug", 0, std::string(500, 'x'), /*ours=*/false);
  ASSERT_TRUE(logs_.run_once().ok());
  EXPECT_EQ(rt_.count("ReopenContainerLog"), 0);
  EXPECT_EQ(fs::file_size(log_of(id)), 500u);
}

TEST_F(LogManagerTest, TheDefaultPolicyRotatesAt10Mi) {
  LogManagerOptions o;
  o.root = tmp_.path();
  LogManager defaults(rt_, clock_, o);
  EXPECT_EQ(o.policy.max_size, 10 * 1024 * 1024);
  EXPECT_EQ(o.policy.max_files, 5);
  std::string id = start("app", 0, "");
  fs::resize_file(log_of(id), 10 * 1024 * 1024 - 1);
  ASSERT_TRUE(defaults.run_once().ok());
  EXPECT_EQ(rt_.count("ReopenContainerLog"), 0);
  fs::resize_file(log_of(id), 10 * 1024 * 1024);
  ASSERT_TRUE(defaults.run_once().ok());
  EXPECT_EQ(rt_.count("ReopenContainerLog"), 1);
  EXPECT_EQ(fs::file_size(log_of(id) + ".20240102-030405"), 10u * 1024 * 1024);
}

TEST(LogManagerGzip, CompressesKeepingTheModeAndRemovesTheOriginal) {
  TempDir tmp;
  const std::string file = tmp.path() + "/0.log.20240102-030405";
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + "\n";
  append(file, text);
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);

  ASSERT_TRUE(gzip_file(file).ok());
  EXPECT_FALSE(fs::exists(file));
  EXPECT_FALSE(fs::exists(file + ".tmp"));
  bool is_gzip = false;
  EXPECT_EQ(gunzip(file + ".gz", &is_gzip), text);
  EXPECT_TRUE(is_gzip);
  EXPECT_LT(fs::file_size(file + ".gz"), text.size());
  EXPECT_EQ(fs::status(file + ".gz").permissions(),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_FALSE(gzip_file(file).ok());  // gone now
}

TEST(LogManagerPolicy, Validation) {
  EXPECT_TRUE(validate(LogRotationPolicy{}).ok());
  EXPECT_FALSE(validate(LogRotationPolicy{0, 5}).ok());
  EXPECT_EQ(validate(LogRotationPolicy{1024, 1}).message(),
            "invalid containerLogMaxFiles 1, must be > 1");
}
