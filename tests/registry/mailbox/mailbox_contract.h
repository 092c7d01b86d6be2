// The Mailbox contract suite's fixture (tests in mailbox_test.cc): each
// implementation instantiates MailboxContractTest with its MailboxFactory.

#ifndef CHAT_TESTS_REGISTRY_MAILBOX_CONTRACT_H_
#define CHAT_TESTS_REGISTRY_MAILBOX_CONTRACT_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "registry/mailbox/mailbox.h"
#include "registry/quotas.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat::registry {

// How the suite opens one implementation.
struct MailboxFactory {
  std::string name;
  // What it stores outlives the Mailbox object: Open() again finds it.
  bool durable;
  // `path` is unique to the test and the same for every Open() of one
  // test: the SQLite file, or what the etcd factory makes its key prefix
  // of.
  std::function<absl::StatusOr<std::unique_ptr<Mailbox>>(
      const Clock&, const std::string& path, const MailboxLimits&)>
      open;
};

inline MailItem Message(const std::string& from, const std::string& to,
                        const std::string& id,
                        const std::string& payload = "p") {
  MailItem item;
  item.id = id;
  item.sender = from;
  item.recipient = to;
  item.payload = payload;
  return item;
}

// The receipt the peer of `acker` makes for message `id` from `to`.
inline MailItem Receipt(const std::string& acker, const std::string& to,
                        const std::string& id,
                        const std::string& payload = "sealed") {
  MailItem item = Message(acker, to, id, payload);
  item.kind = MailItem::Kind::kReceipt;
  return item;
}

class MailboxContractTest : public ::testing::TestWithParam<MailboxFactory> {
 protected:
  MailboxContractTest() {
    limits_.max_items = 5;
    limits_.max_bytes = 100;
    limits_.max_payload_bytes = 60;
    limits_.max_age = absl::Hours(1);
  }
  ~MailboxContractTest() override { mailbox_.reset(); }

  void SetUp() override { Open(); }

  void Open() {
    mailbox_.reset();
    auto mailbox = GetParam().open(clock_, dir_.File("registry.db"), limits_);
    ASSERT_THAT(mailbox, ::chat::testing::IsOk());
    mailbox_ = *std::move(mailbox);
  }

  std::vector<std::string> Ids(const std::string& recipient) {
    std::vector<std::string> ids;
    auto items = mailbox_->Peek(recipient, 0, 1000);
    EXPECT_THAT(items, ::chat::testing::IsOk());
    for (const MailItem& item : items.value_or(std::vector<MailItem>())) {
      ids.push_back(item.id);
    }
    return ids;
  }

  FakeClock clock_;
  ::chat::testing::TempDir dir_;
  MailboxLimits limits_;
  std::unique_ptr<Mailbox> mailbox_;
};

inline MailItem From(const std::string& origin, MailItem item) {
  item.origin = origin;
  return item;
}

}  // namespace chat::registry

#endif  // CHAT_TESTS_REGISTRY_MAILBOX_CONTRACT_H_
