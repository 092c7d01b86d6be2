// WatchOutageLog on a fake clock: which lines an outage of a watch makes.

#include "registry/etcd/watch_outage_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"

namespace chat::registry::etcd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(WatchOutageLogTest, AnOutageSaysItsFirstFailureEveryTenSecondsAndItsEnd) {
  FakeClock clock;
  std::vector<std::string> lines;
  WatchOutageLog log("watch", Millis(200), clock,
                     [&](const std::string& line) { lines.push_back(line); });
  log.Ended();
  const absl::Status down = absl::UnavailableError("no member");
  for (int i = 0; i < 60; ++i) {  // 12 s of tries, one each 200 ms.
    log.OpenFailed(down);
    clock.Advance(Millis(200));
  }
  log.Opened("etcd2:2379", 42);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr("watch failed to open (trying again every "
                                  "200ms): UNAVAILABLE: no member"));
  EXPECT_THAT(lines[1], HasSubstr("watch still failing to open (51 attempts "
                                  "in 10s)"));
  EXPECT_THAT(lines[2], HasSubstr("watch open again on etcd2:2379 from "
                                  "revision 42, 12s after the last one ended "
                                  "(60 failed attempts)"));
}

TEST(WatchOutageLogTest, AWatchOpenedWithoutAnOutageSaysNothing) {
  FakeClock clock;
  std::vector<std::string> lines;
  WatchOutageLog log("watch of mail", Millis(1000), clock,
                     [&](const std::string& line) { lines.push_back(line); });
  log.Opened("etcd1:2379", 1);
  EXPECT_TRUE(lines.empty());
  // One that ended and opened again at once: back, with no failure.
  log.Ended();
  clock.Advance(Millis(1000));
  log.Opened("etcd1:2379", 7);
  EXPECT_THAT(lines, ElementsAre(HasSubstr(
                         "watch of mail open again on etcd1:2379 from "
                         "revision 7, 1s after the last one ended (0 failed "
                         "attempts)")));
}

}  // namespace
}  // namespace chat::registry::etcd
