// The mailbox's decisions, without any storage.

#include "registry/mailbox/mailbox_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "registry/mailbox/mailbox.h"
#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

MailItem Item(const std::string& origin, size_t bytes) {
  MailItem item;
  item.id = "m1";
  item.sender = "alice";
  item.recipient = "Bob";
  item.payload = std::string(bytes, 'x');
  item.origin = origin;
  return item;
}

TEST(MailboxRulesTest, EachLimitIsNamedWithItsOption) {
  MailboxLimits limits;
  limits.max_items = 2;
  limits.max_bytes = 100;
  limits.max_items_per_sender = 3;
  limits.max_bytes_per_sender = 200;
  limits.max_total_bytes = 10 * ChargedBytes(10);
  const auto kFull = absl::StatusCode::kResourceExhausted;
  EXPECT_THAT(CheckMailLimits(Item("h", 10), limits, {1, 10}, {1, 10},
                              ChargedBytes(10)),
              IsOk());
  EXPECT_THAT(CheckMailLimits(Item("h", 10), limits, {2, 20}, {}, 0),
              StatusIs(kFull, HasSubstr("--mailbox-max-messages")));
  EXPECT_THAT(CheckMailLimits(Item("h", 10), limits, {1, 91}, {}, 0),
              StatusIs(kFull, HasSubstr("--mailbox-max-mb")));
  EXPECT_THAT(CheckMailLimits(Item("h", 10), limits, {}, {3, 30}, 0),
              StatusIs(kFull, HasSubstr("--mailbox-max-sender-messages")));
  EXPECT_THAT(CheckMailLimits(Item("h", 10), limits, {}, {1, 191}, 0),
              StatusIs(kFull, HasSubstr("--mailbox-max-sender-mb")));
  // Without an origin the sender's usage is not looked at.
  EXPECT_THAT(CheckMailLimits(Item("", 10), limits, {}, {3, 191}, 0), IsOk());
  EXPECT_THAT(
      CheckMailLimits(Item("h", 10), limits, {}, {}, 9 * ChargedBytes(10) + 1),
      StatusIs(kFull, HasSubstr("--mailbox-max-total-mb")));
}

TEST(MailboxRulesTest, OnlyMessagesAndReadReceiptsAreDeposited) {
  MailboxLimits limits;
  EXPECT_THAT(ValidateDeposit(Item("", 1), limits), IsOk());
  MailItem receipt = Item("", 1);
  receipt.kind = MailItem::Kind::kReceipt;
  EXPECT_THAT(ValidateDeposit(receipt, limits),
              StatusIs(absl::StatusCode::kInvalidArgument));
  MailItem read = Item("", kMaxReadReceiptPayloadBytes + 1);
  read.kind = MailItem::Kind::kReadReceipt;
  limits.max_payload_bytes = kMaxReadReceiptPayloadBytes * 2;
  EXPECT_THAT(ValidateDeposit(read, limits),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MailboxRulesTest, AReceiptGoesFromTheAckerToTheMessagesSender) {
  MailItem receipt;
  receipt.kind = MailItem::Kind::kReceipt;
  receipt.id = "m1";
  receipt.sender = "Bob";
  receipt.recipient = "alice";
  receipt.payload = "sealed";
  EXPECT_TRUE(AcceptsReceipt("bob", receipt, "Alice"));
  EXPECT_FALSE(AcceptsReceipt("carol", receipt, "alice"));
  EXPECT_FALSE(AcceptsReceipt("bob", receipt, "dave"));
  receipt.payload = std::string(kMaxReceiptPayloadBytes + 1, 'x');
  EXPECT_FALSE(AcceptsReceipt("bob", receipt, "alice"));
}

TEST(MailboxRulesTest, OnlyAnExpiredMessageOfANamedSenderIsReported) {
  MailItem message = Item("", 1);
  auto receipt = ExpiryReceipt(message, absl::Hours(1));
  ASSERT_TRUE(receipt.has_value());
  EXPECT_EQ(receipt->kind, MailItem::Kind::kExpired);
  EXPECT_EQ(receipt->id, "expired:m1");
  EXPECT_EQ(receipt->sender, "Bob");
  EXPECT_EQ(receipt->recipient, "alice");
  EXPECT_EQ(receipt->payload, "3600000");
  EXPECT_TRUE(receipt->origin.empty());
  message.sender = "Davide De Rosa";  // A lab peer: no mailbox.
  EXPECT_FALSE(ExpiryReceipt(message, absl::Hours(1)).has_value());
  message.sender = "alice";
  message.kind = MailItem::Kind::kReadReceipt;
  EXPECT_FALSE(ExpiryReceipt(message, absl::Hours(1)).has_value());
  message.kind = MailItem::Kind::kMessage;
  message.id = std::string(60, 'i');  // "expired:" + 60 is over 64.
  EXPECT_FALSE(ExpiryReceipt(message, absl::Hours(1)).has_value());
}

}  // namespace
}  // namespace chat::registry
