// ChallengeBook: single use, bound to a name, expiring on the injected
// clock, bounded.

#include "registry/server/challenges.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;

TEST(ChallengeBookTest, AChallengeIsRandomAndServesOnce) {
  FakeClock clock;
  ChallengeBook book(clock);
  const std::string challenge = book.Issue("bob");
  EXPECT_EQ(challenge.size(), kChallengeBytes);
  EXPECT_NE(book.Issue("bob"), challenge);
  EXPECT_THAT(book.Consume("BOB", challenge), IsOk());
  EXPECT_THAT(book.Consume("bob", challenge),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(book.Consume("bob", std::string(32, 'x')),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(ChallengeBookTest, AChallengeIsForItsNameOnly) {
  FakeClock clock;
  ChallengeBook book(clock);
  const std::string challenge = book.Issue("bob");
  EXPECT_THAT(book.Consume("mallory", challenge),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // Tried once with the wrong name, it is gone.
  EXPECT_THAT(book.Consume("bob", challenge),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(ChallengeBookTest, AChallengeExpiresAfterItsLifetime) {
  FakeClock clock;
  ChallengeBook book(clock);
  EXPECT_EQ(book.lifetime(), Millis(60000));
  const std::string kept = book.Issue("bob");
  const std::string late = book.Issue("bob");
  clock.Advance(Millis(59999));
  EXPECT_THAT(book.Consume("bob", kept), IsOk());
  clock.Advance(Millis(1));
  EXPECT_THAT(book.Consume("bob", late),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // Expired ones are forgotten as new ones come.
  book.Issue("bob");
  EXPECT_EQ(book.size(), 1u);
}

TEST(ChallengeBookTest, TheOldestAreDroppedWhenFull) {
  FakeClock clock;
  ChallengeBook book(clock, ChallengeBook::Options{Millis(60000), 3});
  std::vector<std::string> issued;
  for (int i = 0; i < 5; ++i)
    issued.push_back(book.Issue(absl::StrCat("n", i)));
  EXPECT_EQ(book.size(), 3u);
  EXPECT_THAT(book.Consume("n0", issued[0]),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(book.Consume("n1", issued[1]),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(book.Consume("n2", issued[2]), IsOk());
  EXPECT_THAT(book.Consume("n4", issued[4]), IsOk());
  EXPECT_THAT(book.Consume("n3", issued[3]), IsOk());
  EXPECT_EQ(book.size(), 0u);
}

}  // namespace
}  // namespace chat::registry
