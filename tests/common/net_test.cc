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

TEST(DefaultAdvertisedAddressTest, ListenHostWhenItNamesOneInterface) {
  EXPECT_EQ(DefaultAdvertisedAddress("127.0.0.1:0", 4242), "127.0.0.1:4242");
  EXPECT_EQ(DefaultAdvertisedAddress("[::1]:0", 4242), "[::1]:4242");
  EXPECT_EQ(DefaultAdvertisedAddress("greeter.lan:50051", 50051),
            "greeter.lan:50051");
}

TEST(DefaultAdvertisedAddressTest, EmptyForWildcardHosts) {
  EXPECT_EQ(DefaultAdvertisedAddress("0.0.0.0:50051", 50051), "");
  EXPECT_EQ(DefaultAdvertisedAddress("[::]:50051", 50051), "");
  EXPECT_EQ(DefaultAdvertisedAddress(":50051", 50051), "");
}

}  // namespace
}  // namespace chat
