#include "common/limits.h"

#include <gtest/gtest.h>

namespace chat {
namespace {

TEST(LimitErrorTest, NamesTheLimitAndItsOption) {
  absl::Status status = LimitError("too many Watch streams from 10.0.0.7", 16,
                                   "max-streams-per-client");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(),
            "too many Watch streams from 10.0.0.7 (limit 16, "
            "--max-streams-per-client)");
}

TEST(ClientHostTest, DropsThePortOfEveryForm) {
  EXPECT_EQ(ClientHost("ipv4:10.0.0.7:5123"), "10.0.0.7");
  EXPECT_EQ(ClientHost("ipv6:[::1]:5123"), "::1");
  EXPECT_EQ(ClientHost("ipv6:%5B::1%5D:5123"), "::1");
  EXPECT_EQ(ClientHost("unix:/tmp/socket"), "unix:/tmp/socket");
  EXPECT_EQ(ClientHost("inproc"), "inproc");
}

}  // namespace
}  // namespace chat
