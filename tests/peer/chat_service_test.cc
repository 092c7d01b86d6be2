// ChattingService as a lab peer and a hostile client see it.

#include "peer/chat_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "tests/testing/status_matchers.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;

class KeepingSink final : public MessageSink {
 public:
  void Accept(const ChatMessage& message, AcceptCallback done) override {
    {
      absl::MutexLock lock(&mu_);
      messages_.push_back(message);
    }
    done(absl::OkStatus());
  }
  std::vector<ChatMessage> messages() {
    absl::MutexLock lock(&mu_);
    return messages_;
  }

 private:
  absl::Mutex mu_;
  std::vector<ChatMessage> messages_ ABSL_GUARDED_BY(mu_);
};

class ChatServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerConfig config;
    config.listen_address = "127.0.0.1:0";
    config.services = {&service_};
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
