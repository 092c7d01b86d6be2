// RegistryPicker: which registry a call goes to, with time given by hand.

#include "registry/client/registry_picker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const MonoTime kStart{};
constexpr Millis kCooldown(5000);

RegistryPicker ThreeRegistries() {
  return RegistryPicker({"a:1", "b:2", "c:3"}, kCooldown);
}

TEST(RegistryPickerTest, StartsAtTheFirstAndTriesTheOthersInListOrder) {
  RegistryPicker picker = ThreeRegistries();
  EXPECT_EQ(picker.current(), 0u);
  EXPECT_THAT(picker.Order(kStart), ElementsAre(0, 1, 2));
}

TEST(RegistryPickerTest, OneRegistryIsAlwaysTried) {
  RegistryPicker picker({"a:1"}, kCooldown);
  EXPECT_FALSE(picker.Failed(0, kStart));
  EXPECT_EQ(picker.current(), 0u);
  EXPECT_THAT(picker.Order(kStart), ElementsAre(0));
}

TEST(RegistryPickerTest, AFailedCurrentHandsOverToTheNext) {
  RegistryPicker picker = ThreeRegistries();
  EXPECT_TRUE(picker.Failed(0, kStart));
  EXPECT_EQ(picker.current(), 1u);
  // The failed one is still tried, last: it may come back.
  EXPECT_THAT(picker.Order(kStart), ElementsAre(1, 2, 0));
}

TEST(RegistryPickerTest, TheCurrentStaysWhenTheFailedOneComesBack) {
  RegistryPicker picker = ThreeRegistries();
  picker.Failed(0, kStart);
  picker.Answered(1);
  const MonoTime later = kStart + kCooldown + Millis(1);
  // Sticky: a registry that came back does not pull the client back.
  EXPECT_EQ(picker.current(), 1u);
  EXPECT_THAT(picker.Order(later), ElementsAre(1, 2, 0));
}

TEST(RegistryPickerTest, AFailedRegistryIsPassedOverUntilItsCooldownEnds) {
  RegistryPicker picker = ThreeRegistries();
  picker.Failed(1, kStart);  // Not current: found by a stream, say.
  EXPECT_EQ(picker.current(), 0u);
  picker.Failed(0, kStart + Millis(10));
  // 1 is passed over still: the current moves past it to 2.
  EXPECT_EQ(picker.current(), 2u);
  EXPECT_THAT(picker.Order(kStart + Millis(10)), ElementsAre(2, 0, 1));
  // After 1's cooldown (but not 0's), 1 is tried before 0 again.
  EXPECT_THAT(picker.Order(kStart + kCooldown), ElementsAre(2, 1, 0));
  EXPECT_THAT(picker.Order(kStart + kCooldown + Millis(10)),
              ElementsAre(2, 0, 1));
}

TEST(RegistryPickerTest, WhenAllFailTheCurrentMovesOnWithoutASwitchToTell) {
  RegistryPicker picker({"a:1", "b:2"}, kCooldown);
  EXPECT_TRUE(picker.Failed(0, kStart));
  EXPECT_EQ(picker.current(), 1u);
  EXPECT_FALSE(picker.Failed(1, kStart));  // Nowhere better to go.
  EXPECT_EQ(picker.current(), 0u);
  EXPECT_THAT(picker.Order(kStart), ElementsAre(0, 1));
}

TEST(RegistryPickerTest, AfterAllFailedNoSwitchIsToldUntilOneAnswers) {
  RegistryPicker picker({"a:1", "b:2"}, kCooldown);
  picker.Failed(0, kStart);
  picker.Failed(1, kStart);
  // b's cooldown is over when a fails again: still the same outage.
  const MonoTime later = kStart + kCooldown;
  EXPECT_FALSE(picker.Failed(0, later));
  EXPECT_EQ(picker.current(), 1u);
  picker.Answered(1);
  // A new outage of one, once a is no longer passed over: told.
  EXPECT_TRUE(picker.Failed(1, later + kCooldown));
  EXPECT_EQ(picker.current(), 0u);
}

TEST(RegistryPickerTest, AnAnswerEndsTheCooldownAndMakesItCurrent) {
  RegistryPicker picker = ThreeRegistries();
  picker.Failed(0, kStart);
  picker.Failed(1, kStart);
  picker.Answered(0);
  EXPECT_EQ(picker.current(), 0u);
  EXPECT_THAT(picker.Order(kStart), ElementsAre(0, 2, 1));
}

TEST(RegistryPickerTest, AFailingConnectionIsPassedOverEvenWhenCurrent) {
  RegistryPicker picker = ThreeRegistries();
  auto failing = [](size_t index) { return index == 0; };
  EXPECT_THAT(picker.Order(kStart, failing), ElementsAre(1, 2, 0));
  EXPECT_EQ(picker.current(), 0u);  // Until a call finds it so.
}

TEST(RegistryAddressesTest, ParsesOneOrSeveral) {
  auto one = ParseRegistryAddresses("localhost:50050");
  ASSERT_THAT(one, IsOk());
  EXPECT_THAT(*one, ElementsAre("localhost:50050"));
  auto several = ParseRegistryAddresses("a:50050, b:50050 ,[::1]:7");
  ASSERT_THAT(several, IsOk());
  EXPECT_THAT(*several, ElementsAre("a:50050", "b:50050", "[::1]:7"));
}

TEST(RegistryAddressesTest, RefusesEmptyPiecesBadAddressesAndRepeats) {
  EXPECT_THAT(ParseRegistryAddresses(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseRegistryAddresses("a:1,,b:2"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("empty registry address")));
  EXPECT_THAT(ParseRegistryAddresses("a:1,b"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"b\"")));
  EXPECT_THAT(ParseRegistryAddresses("a:1,a:1"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("a:1 is given twice")));
}

TEST(RegistryAddressesTest, JoinsForMessages) {
  EXPECT_EQ(JoinRegistryAddresses(SplitRegistryAddresses("a:1,b:2")),
            "a:1, b:2");
}

}  // namespace
}  // namespace chat::registry
