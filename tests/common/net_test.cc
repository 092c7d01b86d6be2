#include "common/net.h"

#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;

TEST(SplitHostPortTest, SplitsAtTheLastColon) {
  auto split = SplitHostPort("[::1]:50050");
  ASSERT_THAT(split, IsOk());
  EXPECT_EQ(split->first, "[::1]");
  EXPECT_EQ(split->second, "50050");
  EXPECT_THAT(SplitHostPort("nohost"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SplitHostPort("host:"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(LocalAddressTowardTest, LoopbackIsReachedFromLoopback) {
  auto local = LocalAddressToward("127.0.0.1:50050");
  ASSERT_THAT(local, IsOk());
  EXPECT_EQ(*local, "127.0.0.1");
}

TEST(LocalAddressTowardTest, UnresolvableHostIsUnavailable) {
  EXPECT_THAT(LocalAddressToward("no-such-host.invalid:1"),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace chat
