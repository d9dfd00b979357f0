// Reading CRI log files as `kubectl logs` asks: tail, limit, since, timestamps, streams,
// partial lines, and following a file that grows, rotates and whose container stops.
#include "logs/log_reader.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "support/temp_dir.h"

using namespace knode::kubelet;
using knode::testing::TempDir;
using namespace std::chrono_literals;

namespace {

void append(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::app | std::ios::binary) << text;
}

// Seconds 1..n of 2024-01-02T03:04:0N, alternating stdout and stderr.
std::string sample(int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) {
    out += "2024-01-02T03:04:0" + std::to_string(i) + ".5Z " + (i % 2 ? "stdout" : "stderr") +
           " F line " + std::to_string(i) + "\n";
  }
  return out;
}

// 2024-01-02T03:04:0s in nanoseconds since the epoch.
int64_t at(int s) { return (1704164640LL + s) * 1000000000LL; }

std::string read(const std::string& path, LogReadOptions o, knode::Status* st = nullptr) {
  std::string out;
  auto s = read_container_log(path, o, [&](std::string_view p) {
    out += p;
    return true;
  });
  if (st) *st = s;
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

class LogReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/0.log";
    append(path_, sample(5));
  }
  TempDir dir_;
  std::string path_;
};

TEST_F(LogReaderTest, WholeLogIsTheContentOfEveryLine) {
  EXPECT_EQ(read(path_, {}), "line 1\nline 2\nline 3\nline 4\nline 5\n");
}

TEST_F(LogReaderTest, TailLinesIsTheLastLinesOfTheFile) {
  LogReadOptions o;
  o.tail_lines = 2;
  EXPECT_EQ(read(path_, o), "line 4\nline 5\n");
  o.tail_lines = 0;
  EXPECT_EQ(read(path_, o), "");
  o.tail_lines = 99;
  EXPECT_EQ(read(path_, o), "line 1\nline 2\nline 3\nline 4\nline 5\n");
}

TEST_F(LogReaderTest, TailOfAFileLongerThanOneBlock) {
  std::string big = dir_.path() + "/big.log";
  for (int i = 0; i < 500; ++i)
    append(big, "2024-01-02T03:04:05Z stdout F n" + std::to_string(i) + "\n");
  LogReadOptions o;
  o.tail_lines = 3;
  EXPECT_EQ(read(big, o), "n497\nn498\nn499\n");
  o.tail_lines = 200;
  std::string all = read(big, o);
  EXPECT_EQ(all.substr(0, 5), "n300\n");
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 200);
}

TEST_F(LogReaderTest, LimitBytesCutsTheOutput) {
  LogReadOptions o;
  o.limit_bytes = 10;
  EXPECT_EQ(read(path_, o), "line 1\nlin");
}

TEST_F(LogReaderTest, TimestampsPrefixEachLineWithNineFractionDigits) {
  LogReadOptions o;
  o.timestamps = true;
  o.tail_lines = 1;
  EXPECT_EQ(read(path_, o), "2024-01-02T03:04:05.500000000Z line 5\n");
  std::string zoned = dir_.path() + "/zoned.log";
  append(zoned,
         "2024-01-02T05:04:05.123+02:00 stdout F east\n2024-01-02T03:04:05+00:00 stdout F utc\n");
  EXPECT_EQ(read(zoned, o), "2024-01-02T03:04:05.000000000Z utc\n");
  o.tail_lines.reset();
  EXPECT_EQ(read(zoned, o),
            "2024-01-02T05:04:05.123000000+02:00 east\n2024-01-02T03:04:05.000000000Z utc\n");
}

TEST_F(LogReaderTest, SinceSkipsEarlierLinesWhateverTheirZone) {
  LogReadOptions o;
  o.since_unix_nanos = at(4);  // 03:04:04, before 03:04:04.5
  EXPECT_EQ(read(path_, o), "line 4\nline 5\n");
  std::string zoned = dir_.path() + "/zoned.log";
  append(zoned,
         "2024-01-02T05:04:03+02:00 stdout F before\n2024-01-02T05:04:05+02:00 stdout F after\n");
  EXPECT_EQ(read(zoned, o), "after\n");
}

TEST_F(LogReaderTest, StreamsCanBeChosen) {
  LogReadOptions o;
  o.stderr_ = false;
  EXPECT_EQ(read(path_, o), "line 1\nline 3\nline 5\n");
  o.stderr_ = true;
  o.stdout_ = false;
  EXPECT_EQ(read(path_, o), "line 2\nline 4\n");
}

TEST_F(LogReaderTest, PartialLinesJoinAndTakeOneTimestamp) {
  std::string p = dir_.path() + "/partial.log";
  append(p,
         "2024-01-02T03:04:01Z stdout P hel\n"
         "2024-01-02T03:04:02Z stdout P lo \n"
         "2024-01-02T03:04:03Z stdout F world\n"
         "not a cri line\n"
         "2024-01-02T03:04:04Z stdout F:x next\n");
  EXPECT_EQ(read(p, {}), "hello world\nnext\n");
  LogReadOptions o;
  o.timestamps = true;
  EXPECT_EQ(read(p, o),
            "2024-01-02T03:04:01.000000000Z hello world\n2024-01-02T03:04:04.000000000Z next\n");
}

TEST_F(LogReaderTest, ALastLineWithoutItsNewlineIsReadAsItIs) {
  append(path_, "2024-01-02T03:04:09Z stdout F no newline");
  EXPECT_EQ(read(path_, {}), "line 1\nline 2\nline 3\nline 4\nline 5\nno newline");
  // As upstream's: tailLines counts the lines that ended, and stops after that many.
  LogReadOptions o;
  o.tail_lines = 1;
  EXPECT_EQ(read(path_, o), "line 5\n");
}

TEST_F(LogReaderTest, AMissingFileIsAnErrorNamingIt) {
  std::string out;
  auto st = read_container_log(dir_.path() + "/nope.log", {}, [&](std::string_view p) {
    out += p;
    return true;
  });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("nope.log"), std::string::npos) << st.message();
}

TEST_F(LogReaderTest, SymlinksAreFollowed) {
  std::string link = dir_.path() + "/link.log";
  std::filesystem::create_symlink(path_, link);
  LogReadOptions o;
  o.tail_lines = 1;
  EXPECT_EQ(read(link, o), "line 5\n");
}

TEST_F(LogReaderTest, ASinkSayingStopEndsTheRead) {
  int calls = 0;
  auto st = read_container_log(path_, {}, [&](std::string_view) {
    ++calls;
    return false;
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(calls, 1);
}

// Follows on a thread; the test waits for what it expects to arrive.
class Follower {
 public:
  Follower(const std::string& path, LogReadOptions o, std::function<knode::Result<bool>()> running)
      : stop_(::eventfd(0, EFD_CLOEXEC)) {
    follow_.container_running = std::move(running);
    follow_.stop_fd = stop_;
    follow_.force_check = 50ms;
    o.follow = true;
    thread_ = std::thread([this, path, o] {
      auto st = read_container_log(
          path, o,
          [this](std::string_view p) {
            std::lock_guard lock(mu_);
            out_ += p;
            cv_.notify_all();
            return true;
          },
          &follow_);
      std::lock_guard lock(mu_);
      status_ = st;
      done_ = true;
      cv_.notify_all();
    });
  }
  ~Follower() {
    stop();
    thread_.join();
    ::close(stop_);
  }
  bool wait_for(const std::string& text) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return out_.find(text) != std::string::npos; });
  }
  bool wait_done() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return done_; });
  }
  void stop() {
    uint64_t one = 1;
    (void)::write(stop_, &one, sizeof one);
  }
  std::string out() {
    std::lock_guard lock(mu_);
    return out_;
  }
  knode::Status status() {
    std::lock_guard lock(mu_);
    return status_;
  }

 private:
  int stop_;
  LogFollow follow_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string out_;
  bool done_ = false;
  knode::Status status_ = knode::Status::Ok();
  std::thread thread_;
};

TEST_F(LogReaderTest, FollowSendsNewLinesUntilTheContainerStops) {
  std::atomic<bool> running{true};
  LogReadOptions o;
  o.tail_lines = 1;
  Follower f(path_, o, [&]() -> knode::Result<bool> { return running.load(); });
  ASSERT_TRUE(f.wait_for("line 5\n"));
  append(path_, "2024-01-02T03:04:10Z stdout F later\n");
  ASSERT_TRUE(f.wait_for("later\n")) << f.out();
  // A line arrives in two writes: nothing until it is complete.
  append(path_, "2024-01-02T03:04:11Z stdout F hal");
  append(path_, "f\n");
  ASSERT_TRUE(f.wait_for("half\n")) << f.out();
  // The container stops after its last words: they are still read, then the read ends.
  append(path_, "2024-01-02T03:04:12Z stdout F last words\n");
  running = false;
  ASSERT_TRUE(f.wait_done());
  EXPECT_TRUE(f.status().ok()) << f.status().message();
  EXPECT_EQ(f.out(), "line 5\nlater\nhalf\nlast words\n");
}

TEST_F(LogReaderTest, FollowReadsTheRotatedLogToItsEndThenTheNewOne) {
  Follower f(path_, {}, []() -> knode::Result<bool> { return true; });
  ASSERT_TRUE(f.wait_for("line 5\n"));
  const std::string rotated = path_ + ".20240102-030410";
  std::filesystem::rename(path_, rotated);
  append(rotated, "2024-01-02T03:04:19Z stdout F late in the old file\n");
  append(path_, "2024-01-02T03:04:20Z stdout F after rotation\n");
  ASSERT_TRUE(f.wait_for("after rotation\n")) << f.out();
  f.stop();
  ASSERT_TRUE(f.wait_done());
  EXPECT_EQ(f.out(),
            "line 1\nline 2\nline 3\nline 4\nline 5\nlate in the old file\nafter rotation\n");
}

TEST_F(LogReaderTest, FollowEndsWhenTheReaderIsStoppedOrTheRuntimeFails) {
  {
    Follower f(path_, {}, []() -> knode::Result<bool> { return true; });
    ASSERT_TRUE(f.wait_for("line 5\n"));
    f.stop();
    ASSERT_TRUE(f.wait_done());
    EXPECT_TRUE(f.status().ok());
  }
  {
    Follower f(path_, {}, []() -> knode::Result<bool> {
      return knode::Status::Error("CRI ContainerStatus c1: down", ECONNREFUSED);
    });
    ASSERT_TRUE(f.wait_done());
    EXPECT_EQ(f.status().error_number(), ECONNREFUSED);
    EXPECT_EQ(f.out(), "line 1\nline 2\nline 3\nline 4\nline 5\n");
  }
}

TEST(CriLogLine, ParsesTheFormat) {
  CriLogLine m;
  ASSERT_TRUE(parse_cri_log_line("2016-10-06T00:17:09.669794202Z stderr P partial\n", &m));
  EXPECT_TRUE(m.stderr_);
  EXPECT_TRUE(m.partial);
  EXPECT_EQ(m.content, "partial");
  EXPECT_EQ(m.timestamp, "2016-10-06T00:17:09.669794202Z");
  EXPECT_EQ(m.unix_nanos, 1475713029669794202LL);
  EXPECT_FALSE(parse_cri_log_line("2016-10-06T00:17:09Z stdin F x\n", &m));
  EXPECT_FALSE(parse_cri_log_line("2016-10-06 00:17:09Z stdout F x\n", &m));
  EXPECT_FALSE(parse_cri_log_line("2016-10-06T00:17:09Z stdout\n", &m));
  EXPECT_FALSE(parse_cri_log_line("2016-13-06T00:17:09Z stdout F x\n", &m));
}

}  // namespace
