// RateLimitedLog: a flood of one kind of line costs a handful of lines and a
// count, on a FakeClock; other kinds are not held back by it. A rotating log
// file stays bounded, and log lines go where they are redirected.

#include "common/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace chat {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class RateLimitedLogTest : public ::testing::Test {
 protected:
  RateLimitedLog::Options Options() {
    RateLimitedLog::Options options;
    options.interval = Millis(10000);
    options.burst = 3;
    options.max_keys = 4;
    return options;
  }

  FakeClock clock_;
  std::vector<std::string> lines_;
  RateLimitedLog log_{Options(), clock_, [this](const std::string& line) {
                        lines_.push_back(line);
                      }};
};

TEST_F(RateLimitedLogTest, TenThousandRepeatsCostAHandfulOfLinesAndACount) {
  for (int i = 0; i < 10000; ++i) log_.Log("parse.cc:12", "bad UTF-8");
  EXPECT_THAT(lines_, SizeIs(3));
  EXPECT_EQ(log_.suppressed(), 9997);
  clock_.Advance(Millis(10000));
  log_.Log("parse.cc:12", "bad UTF-8");
  ASSERT_THAT(lines_, SizeIs(5));
  EXPECT_THAT(lines_[3], HasSubstr("bad UTF-8 (and 9997 more like it in the "
                                   "last 10s, not logged)"));
  EXPECT_EQ(lines_[4], "bad UTF-8");
}

TEST_F(RateLimitedLogTest, FlushReportsTheCountWithoutANewLine) {
  for (int i = 0; i < 5; ++i) log_.Log("tcp.cc:9", "Too many open files");
  clock_.Advance(Millis(2000));
  log_.Flush();
  ASSERT_THAT(lines_, SizeIs(4));
  EXPECT_THAT(lines_[3], HasSubstr("(and 2 more like it in the last 2s"));
  log_.Flush();  // Nothing new: nothing written.
  EXPECT_THAT(lines_, SizeIs(4));
  // The flush started a new interval: a new burst passes.
  log_.Log("tcp.cc:9", "Too many open files");
  EXPECT_THAT(lines_, SizeIs(5));
}

TEST_F(RateLimitedLogTest, OneFloodDoesNotSilenceOtherLines) {
  for (int i = 0; i < 100; ++i) log_.Log("a", "flood");
  log_.Log("b", "something else");
  EXPECT_THAT(lines_, ElementsAre("flood", "flood", "flood", "something else"));
}

TEST_F(RateLimitedLogTest, ManyKindsShareOneBucketBeyondMaxKeys) {
  for (int i = 0; i < 1000; ++i) {
    log_.Log("key" + std::to_string(i), "line " + std::to_string(i));
  }
  // 4 keys of their own (3 lines each at most), the rest in one bucket.
  EXPECT_LE(lines_.size(), 4u + 3u);
  EXPECT_EQ(log_.suppressed() + static_cast<int64_t>(lines_.size()), 1000);
}

TEST(RotatingLogFileTest, NeverGrowsMuchPastItsSizeAndStaysPrivate) {
  chat::testing::TempDir dir;
  const std::string path = dir.File("alice.log");
  auto log = RotatingLogFile::Open(path, 1000);
  ASSERT_TRUE(log.ok()) << log.status();
  const std::string line(99, 'x');
  for (int i = 0; i < 100; ++i) (*log)->Write(line + "\n");
  EXPECT_LE(std::filesystem::file_size(path), 1000u);
  EXPECT_LE(std::filesystem::file_size(path + ".1"), 1000u);
  EXPECT_FALSE(std::filesystem::exists(path + ".2"));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(RotatingLogFile::Open(dir.File("no/such/dir.log"), 10).ok());
}

// A rotation whose new file cannot be made (here: its directory has gone,
// which fails for root too) drops lines until the file can be made again,
// then logs on.
TEST(RotatingLogFileTest, LogsAgainOnceAFailedRotationCanOpenTheFile) {
  chat::testing::TempDir dir;
  const std::filesystem::path sub = dir.File("logs");
  std::filesystem::create_directory(sub);
  const std::string path = (sub / "alice.log").string();
  auto log = RotatingLogFile::Open(path, 100);
  ASSERT_TRUE(log.ok()) << log.status();
  (*log)->Write(std::string(80, 'a') + "\n");
  std::filesystem::remove_all(sub);
  (*log)->Write(std::string(80, 'b') + "\n");  // Rotates, cannot reopen.
  (*log)->Write("lost\n");
  EXPECT_FALSE(std::filesystem::exists(path));
  std::filesystem::create_directory(sub);
  (*log)->Write("back\n");
  ASSERT_TRUE(std::filesystem::exists(path));
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "back\n");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// What chat-peer does so that no log line lands on the chat screen.
TEST(RedirectLogLinesTest, LogLinesGoWhereTheyAreSent) {
  class Keeping final : public LogDestination {
   public:
    void Write(const std::string& line) override { lines.push_back(line); }
    std::vector<std::string> lines;
  } keeping;
  RedirectLogLines(&keeping);
  LogLine("peer", "grpc E Handshake failed");
  RedirectLogLines(nullptr);
  ASSERT_THAT(keeping.lines, SizeIs(1));
  EXPECT_THAT(keeping.lines[0], HasSubstr(" peer: grpc E Handshake failed\n"));
}

}  // namespace
}  // namespace chat
