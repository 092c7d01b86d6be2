// The arithmetic and option lists of chat-bench; the load itself is covered
// by the chat_bench_smoke test.

#include "tests/bench/stats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "tests/bench/bench.h"
#include "tests/testing/status_matchers.h"

namespace chat::bench {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;

TEST(BenchPercentileTest, NearestRank) {
  std::vector<int64_t> values;
  for (int i = 1; i <= 100; ++i) values.push_back(i);
  EXPECT_EQ(Percentile(values, 0.50), 50);
  EXPECT_EQ(Percentile(values, 0.90), 90);
  EXPECT_EQ(Percentile(values, 0.99), 99);
  EXPECT_EQ(Percentile(values, 1.0), 100);
}

TEST(BenchPercentileTest, SmallAndEmpty) {
  EXPECT_EQ(Percentile({}, 0.5), 0);
  EXPECT_EQ(Percentile({7}, 0.99), 7);
  LatencySummary summary = Summarize({1, 2, 3});
  EXPECT_EQ(summary.p50_us, 2);
  EXPECT_EQ(summary.p99_us, 3);
  EXPECT_EQ(summary.max_us, 3);
}

TEST(BenchSpreadTest, MinMedianMax) {
  Spread odd = SpreadOf({3, 1, 2});
  EXPECT_EQ(odd.min, 1);
  EXPECT_EQ(odd.median, 2);
  EXPECT_EQ(odd.max, 3);
  EXPECT_EQ(SpreadOf({4, 1, 2, 3}).median, 2.5);
  EXPECT_EQ(SpreadOf({}).max, 0);
}

TEST(BenchParseTest, Scenarios) {
  auto all = ParseScenarios("all");
  ASSERT_THAT(all, IsOk());
  std::vector<std::string> expected = {
      "greet",          "resolve",     "register",  "register-floor",
      "register-cycle", "register-v1", "keepalive", "send",
      "send-durable",   "send-floor",  "mixed",     "group-send"};
#ifdef CHAT_BENCH_ETCD
  expected.push_back("etcd-put");
  expected.push_back("etcd-range");
#endif
  EXPECT_EQ(*all, expected);
  auto some = ParseScenarios("send,resolve,send");
  ASSERT_THAT(some, IsOk());
  EXPECT_THAT(*some, ElementsAre("send", "resolve"));
  EXPECT_THAT(ParseScenarios("resolve,nope"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseScenarios(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BenchParseTest, IntLists) {
  auto counts = ParseIntList("1,64", 1, 1024);
  ASSERT_THAT(counts, IsOk());
  EXPECT_THAT(*counts, ElementsAre(1, 64));
  EXPECT_THAT(ParseIntList("0", 1, 1024),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseIntList("1,,2", 1, 1024),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseIntList("x", 1, 1024),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BenchResultJsonTest, OneLineWithErrorCodes) {
  ScenarioResult result;
  result.scenario = "resolve";
  result.calls = 10;
  result.errors = 2;
  result.error_counts = {{"UNAVAILABLE", 2}};
  EXPECT_THAT(ResultJson(result),
              ::testing::HasSubstr("\"error_codes\":{\"UNAVAILABLE\":2}"));
  EXPECT_THAT(ResultJson(result), ::testing::Not(::testing::HasSubstr("\n")));
}

}  // namespace
}  // namespace chat::bench
