// ChattingService as a lab peer and a hostile client see it.

#include "peer/chat_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/grpc_server.h"
#include "peer/conversation.h"
#include "peer/peer_store.h"
#include "peer/sealing.h"
#include "tests/peer/keeping_sink.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace chat::peer {
namespace {

using ::chat::peer::testing::KeepingSink;
using ::chat::testing::IsOk;

class ChatServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerConfig config;
    config.listen_address = "127.0.0.1:0";
    config.services = {&service_};
    config.max_streams_per_connection = kPeerMaxStreamsPerConnection;
    auto running = StartServer(config);
    ASSERT_THAT(running, IsOk());
    server_ = std::move(running->server);
    stub_ = ::ChattingService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", running->port),
                            grpc::InsecureChannelCredentials()));
  }

  grpc::Status Send(const ::Message& message) {
    grpc::ClientContext context;
    ::NullMsg reply;
    return stub_->SendMessage(&context, message, &reply);
  }

  static ::Message LabMessage(const std::string& text) {
    ::Message message;
    message.set_time("12:34");
    message.set_sender("Davide De Rosa");
    message.set_msg(text);
    return message;
  }

  FakeClock clock_;
  KeepingSink sink_;
  ChatService service_{"bob", &sink_, clock_};
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<::ChattingService::Stub> stub_;
};

TEST_F(ChatServiceTest, GetInformationAnswersWithOurName) {
  grpc::ClientContext context;
  ::Message reply;
  ASSERT_TRUE(stub_->GetInformation(&context, ::NullMsg(), &reply).ok());
  EXPECT_EQ(reply.sender(), "bob");
  EXPECT_EQ(reply.msg(), "OK");
  EXPECT_EQ(reply.time().size(), 5u);  // HH:MM
}

TEST_F(ChatServiceTest, ALabMessageIsAcceptedAndGivenAnId) {
  ASSERT_TRUE(Send(LabMessage("ciao")).ok());
  auto messages = sink_.messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].from, "Davide De Rosa");
  EXPECT_EQ(messages[0].text, "ciao");
  EXPECT_EQ(messages[0].lab_time, "12:34");
  EXPECT_EQ(messages[0].to, "bob");
  EXPECT_EQ(messages[0].id.size(), 36u);
}

TEST_F(ChatServiceTest, BadMessagesAreRefusedAndNothingIsDelivered) {
  EXPECT_EQ(Send(LabMessage("")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Send(LabMessage(std::string(4097, 'x'))).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ::Message no_sender = LabMessage("hi");
  no_sender.clear_sender();
  EXPECT_EQ(Send(no_sender).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ::Message bad_id = LabMessage("hi");
  bad_id.set_id("has spaces in it");
  EXPECT_EQ(Send(bad_id).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ::Message misdelivered = LabMessage("hi");
  misdelivered.set_recipient("carol");
  EXPECT_EQ(Send(misdelivered).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // A sequence comes whole: number, epoch, and a floor from 1 to it.
  ::Message no_epoch = LabMessage("hi");
  no_epoch.set_sequence(3);
  no_epoch.set_sequence_floor(1);
  EXPECT_EQ(Send(no_epoch).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ::Message floor_above = LabMessage("hi");
  floor_above.set_sequence(3);
  floor_above.set_sequence_epoch("e");
  floor_above.set_sequence_floor(4);
  EXPECT_EQ(Send(floor_above).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ::Message negative = LabMessage("hi");
  negative.set_sequence(-1);
  EXPECT_EQ(Send(negative).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(sink_.messages().empty());
}

TEST_F(ChatServiceTest, ASequencedMessageKeepsItsPlace) {
  ::Message message = LabMessage("hi");
  message.set_sequence(7);
  message.set_sequence_epoch("feedface");
  message.set_sequence_floor(5);
  ASSERT_TRUE(Send(message).ok());
  const ChatMessage got = sink_.messages().at(0);
  EXPECT_EQ(got.sequence, 7);
  EXPECT_EQ(got.sequence_epoch, "feedface");
  EXPECT_EQ(got.sequence_floor, 5);
}

TEST_F(ChatServiceTest, InvalidUtf8NeverReachesTheSink) {
  // protobuf refuses to parse a proto3 string that is not UTF-8, or we do.
  EXPECT_FALSE(Send(LabMessage("\xFF\xFE bad")).ok());
  EXPECT_TRUE(sink_.messages().empty());
  EXPECT_TRUE(Send(LabMessage("fine after that")).ok());
}

TEST_F(ChatServiceTest, TheRecipientIsComparedCaseInsensitively) {
  ::Message message = LabMessage("hi");
  message.set_recipient("BOB");
  message.set_id("01a209e1-e05f-7f96-82d8-0dbfedb2e3bc");
  ASSERT_TRUE(Send(message).ok());
  EXPECT_EQ(sink_.messages().at(0).id, "01a209e1-e05f-7f96-82d8-0dbfedb2e3bc");
}

}  // namespace
}  // namespace chat::peer

namespace chat::peer {
namespace {

using ::testing::HasSubstr;

// bob's ChattingService with his identity, alice bound to her key in a
// registry that is a map.
class SealedChatServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenPeerStore(":memory:", clock_);
    ASSERT_THAT(store, chat::testing::IsOk());
    store_ = *std::move(store);
    KeyBook::Options options;
    options.directory = [this](const std::string& name)
        -> absl::StatusOr<std::optional<PublicKey>> {
      if (registry_down_) return absl::UnavailableError("registry away");
      if (name == "alice") return std::optional<PublicKey>(alice_.public_key());
      if (name == "carol" && carol_.has_value()) return carol_;
      if (hold_ != nullptr && absl::StartsWith(name, "stranger-")) {
        ++held_;
        hold_->WaitForNotification();
      }
      return std::optional<PublicKey>();
    };
    keys_ = std::make_unique<KeyBook>(&store_->pins(), std::vector<Pin>(),
                                      std::move(options), clock_);
    // What bob's registry watch lists: alice with her key, davide without.
    keys_->Listed("alice", alice_.public_key());
    keys_->Listed("davide", std::nullopt);
    envelope_ = std::make_unique<Envelope>(std::string("bob"), bob_,
                                           keys_.get(), clock_);
    service_ =
        std::make_unique<ChatService>("bob", &sink_, clock_, envelope_.get());
    ServerConfig config;
    config.listen_address = "127.0.0.1:0";
    config.services = {service_.get()};
    // As chat-peer serves: 65 senders at once on one connection.
    config.max_streams_per_connection = kPeerMaxStreamsPerConnection;
    auto running = StartServer(config);
    ASSERT_THAT(running, chat::testing::IsOk());
    server_ = std::move(running->server);
    stub_ = ::ChattingService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", running->port),
                            grpc::InsecureChannelCredentials()));
  }

  grpc::Status Send(const ::Message& message) {
    grpc::ClientContext context;
    ::NullMsg reply;
    return stub_->SendMessage(&context, message, &reply);
  }

  static ChatMessage FromAlice(const std::string& text) {
    ChatMessage message;
    message.id = "01890a5d-ac96-774b-bcce-b302099a8057";
    message.from = "alice";
    message.to = "bob";
    message.text = text;
    message.sent_at = absl::FromUnixMillis(1700000000000);
    return message;
  }

  FakeClock clock_;
  Identity alice_ = Identity::Generate();
  Identity bob_ = Identity::Generate();
  // What the directory answers; set before a Send.
  std::atomic<bool> registry_down_{false};
  std::optional<PublicKey> carol_;
  absl::Notification* hold_ = nullptr;  // Strangers' lookups wait for it.
  std::atomic<int> held_{0};            // Lookups that waited for hold_.
  std::unique_ptr<PeerStore> store_;
  std::unique_ptr<KeyBook> keys_;
  std::unique_ptr<Envelope> envelope_;
  KeepingSink sink_;
  std::unique_ptr<ChatService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<::ChattingService::Stub> stub_;
};

TEST_F(SealedChatServiceTest, AForgedSenderIsRefusedAndNeverShown) {
  // Plain "from alice", the attack of today: alice has a key.
  EXPECT_EQ(Send(ToProto(FromAlice("send me your password"))).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Sealed "from alice" by someone else's key.
  PairCipher mallory(Identity::Generate());
  auto forged = SealMessage(mallory, bob_.public_key(), FromAlice("forged"));
  ASSERT_THAT(forged, chat::testing::IsOk());
  EXPECT_EQ(Send(*forged).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Malformed sealed bytes: named, and the service keeps serving.
  ::Message junk = ToProto(FromAlice("x"));
  junk.clear_msg();
  junk.clear_time();
  junk.set_sealed("junk");
  grpc::Status bad = Send(junk);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("sealed"));
  EXPECT_TRUE(sink_.messages().empty());
  // The real alice gets through, verified.
  PairCipher alice(alice_);
  auto real = SealMessage(alice, bob_.public_key(), FromAlice("it is me"));
  ASSERT_TRUE(Send(*real).ok());
  ASSERT_EQ(sink_.messages().size(), 1u);
  EXPECT_EQ(sink_.messages()[0].text, "it is me");
  EXPECT_FALSE(sink_.messages()[0].unverified);
}

TEST_F(SealedChatServiceTest, ANameWithoutAKeyIsShownUnverified) {
  ChatMessage lab = FromAlice("ciao");
  lab.from = "davide";
  ASSERT_TRUE(Send(ToProto(lab)).ok());
  ASSERT_EQ(sink_.messages().size(), 1u);
  EXPECT_TRUE(sink_.messages()[0].unverified);
}

TEST_F(SealedChatServiceTest, AFirstSenderIsLookedUpOffTheCallbackThread) {
  // carol is not listed (bob follows only those he talks with): her key is
  // asked for on the service's own thread, and her first message is taken.
  Identity carol_key = Identity::Generate();
  carol_ = carol_key.public_key();
  PairCipher carol(carol_key);
  ChatMessage message = FromAlice("first");
  message.from = "carol";
  auto sealed = SealMessage(carol, bob_.public_key(), message);
  EXPECT_TRUE(Send(*sealed).ok());
  ASSERT_EQ(sink_.messages().size(), 1u);
  EXPECT_EQ(sink_.messages()[0].text, "first");
  // When the registry cannot say, the sender is told to try again later.
  registry_down_ = true;
  message.from = "dave";
  Identity dave_key = Identity::Generate();
  PairCipher dave(dave_key);
  auto from_dave = SealMessage(dave, bob_.public_key(), message);
  EXPECT_EQ(Send(*from_dave).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SealedChatServiceTest, AtMostSixtyFourFirstMessagesWaitForTheirKeys) {
  // Strangers' keys take long to look up: 64 wait (and one is being looked
  // up), one more is refused at once (its sender leaves it in our
  // mailbox), alice is still served.
  absl::Notification release;
  hold_ = &release;
  const size_t waiting = ChatService::kLookupsWaiting + 1;
  std::vector<std::thread> senders;
  std::vector<grpc::Status> outcomes(waiting);
  auto send = [this, &senders, &outcomes](size_t i) {
    senders.emplace_back([this, i, &outcomes] {
      ChatMessage message = FromAlice("hello");
      message.from = absl::StrCat("stranger-", i);
      message.id = "";
      outcomes[i] = Send(ToProto(message));
    });
  };
  // The first is being looked up before the others come: then exactly
  // kLookupsWaiting of them queue behind it, however the threads run.
  send(0);
  const bool first_held =
      chat::testing::WaitFor([this] { return held_.load() == 1; });
  for (size_t i = 1; first_held && i < waiting; ++i) send(i);
  const bool all_waiting = first_held && chat::testing::WaitFor([&] {
                             return service_->waiting_lookups() == waiting;
                           });
  if (!all_waiting) {
    release.Notify();  // Ends the senders before the test fails.
    for (std::thread& sender : senders) sender.join();
    FAIL() << "lookups waiting: " << service_->waiting_lookups() << " of "
           << waiting;
  }
  ChatMessage one_more = FromAlice("me too");
  one_more.from = "stranger-x";
  grpc::Status refused = Send(ToProto(one_more));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("not known"));
  PairCipher alice(alice_);
  auto from_alice = SealMessage(alice, bob_.public_key(), FromAlice("still"));
  EXPECT_TRUE(Send(*from_alice).ok());
  release.Notify();
  for (std::thread& sender : senders) sender.join();
  for (const grpc::Status& outcome : outcomes) {
    EXPECT_TRUE(outcome.ok()) << outcome.error_message();
  }
  EXPECT_EQ(sink_.messages().size(), waiting + 1);
}

}  // namespace
}  // namespace chat::peer
