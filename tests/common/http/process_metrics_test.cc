#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "knode/metrics.h"

namespace knode::metrics {
namespace {

std::map<std::string, double> scrape(const std::string& root) {
  std::vector<MetricFamily> families;
  process_collector(root)(families);
  std::map<std::string, double> out;
  for (const auto& f : families) {
    EXPECT_EQ(f.samples.size(), 1u) << f.name;
    out[f.name] = f.samples.at(0).value;
  }
  return out;
}

TEST(ProcessMetrics, LiveProcessValuesArePlausible) {
  auto m = scrape("/proc");
  ASSERT_EQ(m.size(), 6u);
  EXPECT_GT(m["process_resident_memory_bytes"], 1024 * 1024);
  EXPECT_GE(m["process_virtual_memory_bytes"], m["process_resident_memory_bytes"]);
  EXPECT_GE(m["process_cpu_seconds_total"], 0);
  EXPECT_GE(m["process_open_fds"], 3);  // stdin, stdout, stderr at least
  EXPECT_GE(m["process_max_fds"], m["process_open_fds"]);
  const double now = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(m["process_start_time_seconds"], now + 1);
  EXPECT_GT(m["process_start_time_seconds"], now - 24 * 3600);
}

TEST(ProcessMetrics, RenderedWithTypes) {
  Registry r;
  register_process_metrics(r);
  auto text = r.render();
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes "),
            std::string::npos);
  EXPECT_NE(text.find("\nprocess_start_time_seconds "), std::string::npos);
  EXPECT_NE(text.find("\nprocess_max_fds "), std::string::npos);
}

class FakeProc : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/knode-proc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    std::filesystem::create_directories(root_ / "self" / "fd");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    std::ofstream(root_ / rel) << text;
  }
  std::filesystem::path root_;
};

TEST_F(FakeProc, ValuesComeFromTheFiles) {
  // comm with a space and a ')' to prove fields are counted from the last ')'.
  // Fields 3..24: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
  // utime(14)=250 stime(15)=50 cutime cstime priority nice threads itreal
  // starttime(22)=1000 vsize(23)=123456789 rss(24)=300
  write("self/stat",
        "42 (kno de) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1000 123456789 300 "
        "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n");
  write("stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n");
  write("self/limits",
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max open files            4096                 524288               files     \n");
  for (const char* fd : {"0", "1", "2", "7"}) write(std::string("self/fd/") + fd, "");

  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto m = scrape(root_);
  EXPECT_DOUBLE_EQ(m["process_cpu_seconds_total"], 300 / ticks);
  EXPECT_DOUBLE_EQ(m["process_start_time_seconds"], 1700000000 + 1000 / ticks);
  EXPECT_DOUBLE_EQ(m["process_virtual_memory_bytes"], 123456789);
  EXPECT_DOUBLE_EQ(m["process_resident_memory_bytes"], 300 * page);
  EXPECT_DOUBLE_EQ(m["process_open_fds"], 4);
  EXPECT_DOUBLE_EQ(m["process_max_fds"], 4096);
}

TEST_F(FakeProc, MissingFilesDropOnlyTheirMetrics) {
  write("self/limits", "Max open files            unlimited            unlimited            files\n");
  auto m = scrape(root_);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.count("process_open_fds"), 1u);
  EXPECT_EQ(m["process_open_fds"], 0);
}

}  // namespace
}  // namespace knode::metrics
