// The Mailbox service through a real gRPC server on 127.0.0.1, port 0.

#include "registry/server/mailbox_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/random.h"
#include "registry/client/registry_client.h"
#include "registry/mailbox/sqlite_mailbox.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;

class MailboxServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MailboxLimits limits;
    limits.max_items = 3;
    auto store = OpenSqliteStore(":memory:", clock_);
    auto mailbox = OpenSqliteMailbox(":memory:", clock_, limits);
    ASSERT_THAT(store, IsOk());
    ASSERT_THAT(mailbox, IsOk());
    RegistryServerOptions options;
    options.listen_address = "127.0.0.1:0";
    auto server =
        RegistryServer::Start(*std::move(store), *std::move(mailbox), options);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                            grpc::InsecureChannelCredentials());
    registry_ = std::make_unique<RegistryClient>(channel, "test", Millis(5000));
    registry_->SetClock(clock_);  // Proofs dated on the registry's clock.
    mail_ = v1::Mailbox::NewStub(channel);
  }

  // A lease of `name`, proven with a key of its own.
  std::string LeaseFor(const std::string& name) {
    const Identity identity = Identity::Generate();
    auto lease =
        registry_->Register({name, "127.0.0.1:9", Millis(0), ""}, &identity);
    EXPECT_THAT(lease, IsOk());
    return lease.ok() ? lease->lease_id : "";
  }

  grpc::Status Deposit(const std::string& from, const std::string& to,
                       const std::string& id,
                       v1::MailItem::Kind kind = v1::MailItem::MESSAGE) {
    v1::DepositRequest request;
    request.mutable_item()->set_kind(kind);
    request.mutable_item()->set_id(id);
    request.mutable_item()->set_sender(from);
    request.mutable_item()->set_recipient(to);
    request.mutable_item()->set_payload("payload of " + id);
    v1::DepositResponse response;
    grpc::ClientContext context;
    return mail_->Deposit(&context, request, &response);
  }

  struct Listening {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::MailItem>> reader;
  };
  std::unique_ptr<Listening> Listen(const std::string& name,
                                    const std::string& lease_id) {
    auto listening = std::make_unique<Listening>();
    v1::ListenRequest request;
    request.set_name(name);
    request.set_lease_id(lease_id);
    listening->reader = mail_->Listen(&listening->context, request);
    return listening;
  }

  // Acknowledges `ids` with a receipt for each from `name` to
  // `receipts_to` (none when empty).
  grpc::Status Ack(const std::string& name, const std::string& lease_id,
                   const std::vector<std::string>& ids,
                   const std::string& receipts_to = "") {
    v1::AckRequest request;
    request.set_name(name);
    request.set_lease_id(lease_id);
    for (const std::string& id : ids) {
      request.add_ids(id);
      if (receipts_to.empty()) continue;
      v1::MailItem* receipt = request.add_receipts();
      receipt->set_kind(v1::MailItem::RECEIPT);
      receipt->set_id(id);
      receipt->set_sender(name);
      receipt->set_recipient(receipts_to);
      receipt->set_payload("sealed receipt of " + id);
    }
    return Ack(request);
  }

  grpc::Status Ack(const v1::AckRequest& request) {
    v1::AckResponse response;
    grpc::ClientContext context;
    return mail_->Ack(&context, request, &response);
  }

  FakeClock clock_;
  std::unique_ptr<RegistryServer> server_;
  std::unique_ptr<RegistryClient> registry_;
  std::unique_ptr<v1::Mailbox::Stub> mail_;
};

TEST_F(MailboxServiceTest, MailWaitsThenStreamsAndTheSenderGetsAReceipt) {
  ASSERT_TRUE(Deposit("alice", "bob", "m1").ok());
  ASSERT_TRUE(Deposit("alice", "bob", "m2").ok());
  std::string bob = LeaseFor("bob");
  std::string alice = LeaseFor("alice");
  auto bob_mail = Listen("bob", bob);
  auto alice_mail = Listen("alice", alice);

  v1::MailItem item;
  ASSERT_TRUE(bob_mail->reader->Read(&item));
  EXPECT_EQ(item.id(), "m1");
  EXPECT_EQ(item.payload(), "payload of m1");
  EXPECT_EQ(item.kind(), v1::MailItem::MESSAGE);
  ASSERT_TRUE(bob_mail->reader->Read(&item));
  EXPECT_EQ(item.id(), "m2");
  // A new message arrives on the open stream at once, no polling.
  ASSERT_TRUE(Deposit("carol", "BOB", "m3").ok());
  ASSERT_TRUE(bob_mail->reader->Read(&item));
  EXPECT_EQ(item.id(), "m3");

  ASSERT_TRUE(Ack("bob", bob, {"m1", "m2"}, "alice").ok());
  // alice hears at once that bob got m1 and m2.
  ASSERT_TRUE(alice_mail->reader->Read(&item));
  EXPECT_EQ(item.kind(), v1::MailItem::RECEIPT);
  EXPECT_EQ(item.id(), "m1");
  EXPECT_EQ(item.sender(), "bob");
  EXPECT_EQ(item.payload(), "sealed receipt of m1");
  ASSERT_TRUE(alice_mail->reader->Read(&item));
  EXPECT_EQ(item.id(), "m2");

  // A new stream starts again from what is not acknowledged.
  bob_mail->context.TryCancel();
  bob_mail = Listen("bob", bob);
  ASSERT_TRUE(bob_mail->reader->Read(&item));
  EXPECT_EQ(item.id(), "m3");
  bob_mail->context.TryCancel();
  alice_mail->context.TryCancel();
}

TEST_F(MailboxServiceTest, OnlyTheLeaseHolderReadsAndAcknowledges) {
  ASSERT_TRUE(Deposit("alice", "bob", "m1").ok());
  auto nobody = Listen("bob", RandomHex(16));
  v1::MailItem item;
  EXPECT_FALSE(nobody->reader->Read(&item));
  EXPECT_EQ(nobody->reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  std::string bob = LeaseFor("bob");
  auto forged = Listen("bob", RandomHex(16));
  EXPECT_FALSE(forged->reader->Read(&item));
  EXPECT_EQ(forged->reader->Finish().error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Ack("bob", RandomHex(16), {"m1"}).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Ack("bob", bob, {"m1"}).ok());
}

TEST_F(MailboxServiceTest, AStrangerCannotAckOrMakeReceipts) {
  ASSERT_TRUE(Deposit("alice", "bob", "m1").ok());
  const std::string bob = LeaseFor("bob");
  const std::string mallory = LeaseFor("mallory");
  // Without bob's lease: refused, whoever's lease it is.
  EXPECT_EQ(Ack("bob", mallory, {"m1"}, "alice").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Ack("bob", "", {"m1"}, "alice").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // With its own lease, mallory's receipts for bob's message go nowhere.
  EXPECT_TRUE(Ack("mallory", mallory, {"m1"}, "alice").ok());
  v1::StatRequest stat;
  stat.set_name("alice");
  v1::StatResponse stats;
  grpc::ClientContext context;
  ASSERT_TRUE(mail_->Stat(&context, stat, &stats).ok());
  EXPECT_EQ(stats.count(), 0);
  auto alice_mail = Listen("alice", LeaseFor("alice"));
  // Deposits of receipts are refused outright.
  EXPECT_EQ(
      Deposit("mallory", "alice", "m1", v1::MailItem::RECEIPT).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  // bob's own receipt arrives; nothing came before it.
  ASSERT_TRUE(Ack("bob", bob, {"m1"}, "alice").ok());
  v1::MailItem item;
  ASSERT_TRUE(alice_mail->reader->Read(&item));
  EXPECT_EQ(item.id(), "m1");
  EXPECT_EQ(item.sender(), "bob");
  alice_mail->context.TryCancel();
}

TEST_F(MailboxServiceTest, MalformedReceiptsAreInvalidArgumentNamingTheField) {
  ASSERT_TRUE(Deposit("alice", "bob", "m1").ok());
  const std::string bob = LeaseFor("bob");
  v1::AckRequest request;
  request.set_name("bob");
  request.set_lease_id(bob);
  request.add_ids("m1");
  v1::MailItem* receipt = request.add_receipts();
  receipt->set_kind(v1::MailItem::MESSAGE);
  receipt->set_id("m1");
  receipt->set_sender("bob");
  receipt->set_recipient("alice");
  grpc::Status status = Ack(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("receipts[0].kind"));
  receipt->set_kind(v1::MailItem::RECEIPT);
  receipt->set_payload(std::string(1025, 'x'));
  status = Ack(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              ::testing::HasSubstr("receipts[0].payload"));
  receipt->set_payload("ok");
  *request.add_receipts() = *receipt;  // More receipts than ids.
  status = Ack(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("receipts"));
  // Nothing was removed by the refused calls.
  EXPECT_TRUE(Ack("bob", bob, {"m1"}, "alice").ok());
}

TEST_F(MailboxServiceTest, BadDepositsAreRefusedAndFullMailboxesSaySo) {
  EXPECT_EQ(Deposit("alice", "bob", "r1", v1::MailItem::RECEIPT).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Deposit("alice", "not a name", "m1").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Deposit("alice", "bob", "").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  for (const char* id : {"m1", "m2", "m3"}) {
    ASSERT_TRUE(Deposit("alice", "bob", id).ok());
  }
  grpc::Status full = Deposit("alice", "bob", "m4");
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(full.error_message(), ::testing::HasSubstr("full"));
}

TEST_F(MailboxServiceTest, ReadReceiptsAreDepositedAndExpiredOnesAreNot) {
  ASSERT_TRUE(
      Deposit("bob", "alice", "read:m1", v1::MailItem::READ_RECEIPT).ok());
  EXPECT_EQ(Deposit("mallory", "alice", "expired:m1", v1::MailItem::EXPIRED)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const std::string alice = LeaseFor("alice");
  auto listening = Listen("alice", alice);
  v1::MailItem item;
  ASSERT_TRUE(listening->reader->Read(&item));
  EXPECT_EQ(item.kind(), v1::MailItem::READ_RECEIPT);
  EXPECT_EQ(item.id(), "read:m1");
  EXPECT_EQ(item.sender(), "bob");
  listening->context.TryCancel();
}

// The names on one fake clock, the mail on another: mail ages by days
// while the leases stay live.
TEST(MailboxExpiryServiceTest, MailThatExpiresUnreadIsReportedToItsSender) {
  FakeClock names_clock;
  FakeClock mail_clock;
  auto store = OpenSqliteStore(":memory:", names_clock);
  auto mailbox = OpenSqliteMailbox(":memory:", mail_clock);
  ASSERT_THAT(store, IsOk());
  ASSERT_THAT(mailbox, IsOk());
  RegistryServerOptions options;
  options.listen_address = "127.0.0.1:0";
  // On the real clock, against mail aged by mail_clock: soon after the
  // advance below, the loop finds the mail old.
  options.mail_expiry_interval = Millis(20);
  auto server =
      RegistryServer::Start(*std::move(store), *std::move(mailbox), options);
  ASSERT_THAT(server, IsOk());
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                          grpc::InsecureChannelCredentials());
  RegistryClient registry(channel, "test", Millis(5000));
  registry.SetClock(names_clock);
  auto mail = v1::Mailbox::NewStub(channel);
  const Identity identity = Identity::Generate();
  auto lease =
      registry.Register({"alice", "127.0.0.1:9", Millis(0), ""}, &identity);
  ASSERT_THAT(lease, IsOk());
  {
    v1::DepositRequest request;
    request.mutable_item()->set_kind(v1::MailItem::MESSAGE);
    request.mutable_item()->set_id("m1");
    request.mutable_item()->set_sender("alice");
    request.mutable_item()->set_recipient("bob");
    request.mutable_item()->set_payload("sealed");
    v1::DepositResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(mail->Deposit(&context, request, &response).ok());
  }
  mail_clock.Advance(Millis(int64_t{8} * 24 * 3600 * 1000));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(20));
  v1::ListenRequest request;
  request.set_name("alice");
  request.set_lease_id(lease->lease_id);
  auto reader = mail->Listen(&context, request);
  v1::MailItem item;
  ASSERT_TRUE(reader->Read(&item));
  EXPECT_EQ(item.kind(), v1::MailItem::EXPIRED);
  EXPECT_EQ(item.id(), "expired:m1");
  EXPECT_EQ(item.sender(), "bob");
  EXPECT_EQ(item.recipient(), "alice");
  EXPECT_EQ(item.payload(), "604800000");  // 7 days, the default.
  context.TryCancel();
}

TEST_F(MailboxServiceTest, StatTellsCountAndAgeOnly) {
  ASSERT_TRUE(Deposit("alice", "bob", "m1").ok());
  clock_.Advance(Millis(5000));
  ASSERT_TRUE(Deposit("alice", "bob", "m2").ok());
  v1::StatRequest request;
  request.set_name("Bob");
  v1::StatResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(mail_->Stat(&context, request, &response).ok());
  EXPECT_EQ(response.count(), 2);
  EXPECT_EQ(response.oldest_age_ms(), 5000);
}

}  // namespace
}  // namespace chat::registry
