// The freshness rule of registration proofs, as pure functions: no store,
// no SQLite; what every backend's Register decides through DecideRegister.

#include "registry/store/store_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1798761600);
const int64_t kNowMs = absl::ToUnixMillis(kNow);

PublicKey Key(uint8_t seed) {
  PublicKey key;
  key.bytes.fill(seed);
  return key;
}

RegisterRequest Proven(const PublicKey& key, int64_t proof_unix_ms) {
  RegisterRequest request{"bob", "h:1", Millis(0), "", key};
  request.proof_unix_ms = proof_unix_ms;
  return request;
}

BindingRecord BindingOfKey(const PublicKey& key, int64_t last_proof_unix_ms) {
  BindingRecord binding;
  binding.name = "bob";
  binding.key = key;
  binding.last_proof_unix_ms = last_proof_unix_ms;
  return binding;
}

TEST(ProofFreshnessTest, NoProofTimeIsNotJudged) {
  RegisterRequest request{"bob", "h:1", Millis(0), "", Key(1)};
  EXPECT_THAT(
      CheckProofFreshness(request, BindingOfKey(Key(1), kNowMs), {}, kNow),
      IsOk());
}

TEST(ProofFreshnessTest, TheSkewWindowIsInclusiveEitherWay) {
  LeasePolicy policy;
  policy.proof_skew = absl::Seconds(30);
  EXPECT_THAT(CheckProofFreshness(Proven(Key(1), kNowMs - 30000), std::nullopt,
                                  policy, kNow),
              IsOk());
  EXPECT_THAT(CheckProofFreshness(Proven(Key(1), kNowMs + 30000), std::nullopt,
                                  policy, kNow),
              IsOk());
  EXPECT_THAT(CheckProofFreshness(Proven(Key(1), kNowMs - 30001), std::nullopt,
                                  policy, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr("30.001s behind the registry's clock"),
                             HasSubstr("at most 30s either way"))));
  EXPECT_THAT(CheckProofFreshness(Proven(Key(1), kNowMs + 90000), std::nullopt,
                                  policy, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("1m30s ahead of the registry's clock")));
}

TEST(ProofFreshnessTest, AProofMustBeLaterThanTheLastOfItsKey) {
  const BindingRecord binding = BindingOfKey(Key(1), kNowMs - 10);
  EXPECT_THAT(
      CheckProofFreshness(Proven(Key(1), kNowMs - 9), binding, {}, kNow),
      IsOk());
  EXPECT_THAT(
      CheckProofFreshness(Proven(Key(1), kNowMs - 10), binding, {}, kNow),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("(0 ms older)")));
  EXPECT_THAT(
      CheckProofFreshness(Proven(Key(1), kNowMs - 11), binding, {}, kNow),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("(1 ms older)")));
  // Another key's last proof is not this key's: its clock is its own.
  EXPECT_THAT(
      CheckProofFreshness(Proven(Key(2), kNowMs - 11), binding, {}, kNow),
      IsOk());
}

TEST(ProofFreshnessTest, DecideRegisterRecordsTheProofTime) {
  NameState state;
  state.binding = BindingOfKey(Key(1), kNowMs - 5000);
  state.binding->reserved_until = kNow + absl::Hours(1);
  const MonoTime now{};
  auto decided = DecideRegister(Proven(Key(1), kNowMs), state, {}, {}, {}, now,
                                kNow, [] { return std::string("lease"); });
  ASSERT_THAT(decided, IsOk());
  ASSERT_TRUE(decided->binding.has_value());
  EXPECT_EQ(decided->binding->last_proof_unix_ms, kNowMs);
  EXPECT_EQ(decided->binding->reserved_until, absl::InfiniteFuture());
  // A replay is refused before anything else is decided.
  EXPECT_THAT(DecideRegister(Proven(Key(1), kNowMs - 5000), state, {}, {}, {},
                             now, kNow, [] { return std::string("lease"); }),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // Without a proof time (a challenge proof) the last one stands.
  RegisterRequest v1{"bob", "h:1", Millis(0), "", Key(1)};
  decided = DecideRegister(v1, state, {}, {}, {}, now, kNow,
                           [] { return std::string("lease"); });
  ASSERT_THAT(decided, IsOk());
  EXPECT_EQ(decided->binding->last_proof_unix_ms, kNowMs - 5000);
}

TEST(ProofFreshnessTest, ReleaseLeavesATombstoneOnlyWithinTheSkew) {
  LeasePolicy policy;
  policy.proof_skew = absl::Minutes(5);
  const BindingRecord binding = BindingOfKey(Key(1), kNowMs - 1000);
  std::optional<BindingRecord> tombstone =
      BindingAfterRelease(binding, policy, kNow);
  ASSERT_TRUE(tombstone.has_value());
  EXPECT_EQ(tombstone->last_proof_unix_ms, binding.last_proof_unix_ms);
  EXPECT_EQ(tombstone->reserved_until, kNow);
  NameState state;
  state.binding = tombstone;
  EXPECT_FALSE(IsBound(state, policy, MonoTime{}, kNow));
  EXPECT_EQ(BindingForgetAt(*tombstone, policy),
            kNow - absl::Seconds(1) + absl::Minutes(5));
  // Nothing to keep: no timed proof, or one already out of the window.
  EXPECT_EQ(BindingAfterRelease(BindingOfKey(Key(1), 0), policy, kNow),
            std::nullopt);
  EXPECT_EQ(
      BindingAfterRelease(BindingOfKey(Key(1), kNowMs - 300000), policy, kNow),
      std::nullopt);
}

TEST(ProofFreshnessTest, ABindingIsForgottenAfterItsReservationAndItsProof) {
  LeasePolicy policy;
  policy.proof_skew = absl::Minutes(5);
  BindingRecord binding = BindingOfKey(Key(1), kNowMs);
  EXPECT_EQ(BindingForgetAt(binding, policy), absl::InfiniteFuture());
  binding.reserved_until = kNow + absl::Hours(1);
  EXPECT_EQ(BindingForgetAt(binding, policy), kNow + absl::Hours(1));
  binding.reserved_until = kNow + absl::Minutes(1);
  EXPECT_EQ(BindingForgetAt(binding, policy), kNow + absl::Minutes(5));
  binding.last_proof_unix_ms = 0;
  EXPECT_EQ(BindingForgetAt(binding, policy), kNow + absl::Minutes(1));
}

}  // namespace
}  // namespace chat::registry
