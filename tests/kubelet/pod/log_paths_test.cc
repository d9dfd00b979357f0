#include "pod/log_paths.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

using namespace knode::kubelet;

namespace {

const std::string kDir = "/var/log/pods/shop_web_u-1/app";
const std::string kLog = kDir + "/0.log";

// 2024-01-02T03:04:05Z; the tests read local time as UTC.
std::chrono::system_clock::time_point rotation_time() {
  setenv("TZ", "UTC", 1);
  tzset();
  return std::chrono::system_clock::time_point(std::chrono::seconds(1704164645));
}

std::vector<std::string> in_dir(std::initializer_list<const char*> names) {
  std::vector<std::string> out;
  for (const char* n : names) out.push_back(kDir + "/" + n);
  return out;
}

}  // namespace

TEST(LogPaths, PodDirectoryAndContainerFile) {
  EXPECT_EQ(pod_log_directory("shop", "web", "u-1"), "/var/log/pods/shop_web_u-1");
  EXPECT_EQ(container_log_path("app", 3), "app/3.log");
  EXPECT_EQ(container_log_file("shop", "web", "u-1", "app", 0), kLog);
}

TEST(LogPaths, ContainersSymlinkIsCutToTheFilesystemLimit) {
  EXPECT_EQ(container_log_symlink("web", "shop", "app", "3f2a"),
            "/var/log/containers/web_shop_app-3f2a.log");
  std::string id(300, 'f');
  std::string link = container_log_symlink("web", "shop", "app", id);
  std::string file = link.substr(std::string("/var/log/containers/").size());
  EXPECT_EQ(file.size(), 255u);
  EXPECT_EQ(file.substr(file.size() - 4), ".log");
  EXPECT_EQ(file.rfind("web_shop_app-ffff", 0), 0u);
}

TEST(LogRotation, NothingBelowTheMaximumSize) {
  LogRotationPolicy policy;
  EXPECT_EQ(policy.max_size, 10 * 1024 * 1024);
  EXPECT_EQ(policy.max_files, 5);
  auto plan =
      plan_log_rotation(kLog, policy.max_size - 1, in_dir({"0.log"}), policy, rotation_time());
  EXPECT_FALSE(plan.rotate);
  EXPECT_TRUE(plan.remove.empty());
}

TEST(LogRotation, FirstRotationRenamesWithATimestamp) {
  auto plan = plan_log_rotation(kLog, 10 * 1024 * 1024, in_dir({"0.log"}), {}, rotation_time());
  EXPECT_TRUE(plan.rotate);
  EXPECT_TRUE(plan.remove.empty());
  EXPECT_TRUE(plan.compress.empty());
  EXPECT_EQ(plan.rotated_to, kLog + ".20240102-030405");
}

TEST(LogRotation, CompressesTheLastRotatedFileAndKeepsMaxFilesMinusTwo) {
  auto siblings = in_dir({"0.log", "0.log.20240101-000000.gz", "0.log.20240101-010000.gz",
                          "0.log.20240101-020000.gz", "0.log.20240101-030000", "1.log"});
  auto plan = plan_log_rotation(kLog, 20 << 20, siblings, {}, rotation_time());
  // Four rotated files, room for three: the oldest goes; the plain one is compressed.
  EXPECT_EQ(plan.remove, in_dir({"0.log.20240101-000000.gz"}));
  EXPECT_EQ(plan.compress, in_dir({"0.log.20240101-030000"}));
  EXPECT_EQ(plan.rotated_to, kLog + ".20240102-030405");
}

TEST(LogRotation, LeftoversOfAnInterruptedRotationAreRemovedFirst) {
  auto siblings = in_dir({"0.log", "0.log.20240101-000000", "0.log.20240101-000000.gz",
                          "0.log.20240101-010000.tmp", "0.log.20240101-010000"});
  auto plan = plan_log_rotation(kLog, 20 << 20, siblings, {}, rotation_time());
  // The plain file whose .gz exists, and the .tmp; the rest fits.
  EXPECT_EQ(plan.remove, in_dir({"0.log.20240101-000000", "0.log.20240101-010000.tmp"}));
  EXPECT_EQ(plan.compress, in_dir({"0.log.20240101-010000"}));
}

TEST(LogRotation, TwoFilesKeepNoRotatedOne) {
  LogRotationPolicy policy;
  policy.max_files = 2;
  auto siblings = in_dir({"0.log", "0.log.20240101-000000.gz", "0.log.20240101-010000"});
  auto plan = plan_log_rotation(kLog, 20 << 20, siblings, policy, rotation_time());
  EXPECT_EQ(plan.remove, in_dir({"0.log.20240101-000000.gz", "0.log.20240101-010000"}));
  EXPECT_TRUE(plan.compress.empty());
}
