// Conversation with a scripted Transport, a FakeClock and a real in-memory
// PeerStore: order, windows, retries and their pauses, the mailbox, what is
// reported and what stays in the outbox. No network, no real time.

#include "peer/conversation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "peer/peer_store.h"
#include "peer/transport.h"
#include "tests/peer/recording_sink.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::testing::ElementsAre;

// A Transport that answers from a script and records every call.
// Thread-safe.
class FakeTransport final : public Transport {
 public:
  enum class Op { kWindow, kOne, kDeposit, kForget };
  struct Call {
    Op op;
    std::vector<std::string> texts;  // Of the messages carried.
    bool fresh = false;              // For kOne.
  };

  // From now on `op` answers `status` for the message with text `text`, or
  // for any message without an answer of its own when `text` is empty.
  // Everything answers OK until told otherwise.
  void Answer(Op op, absl::Status status, const std::string& text = "") {
    absl::MutexLock lock(&mu_);
    answers_[{op, text}] = std::move(status);
  }

  // From now on a direct send answered OK is `delivery` (kProven until
  // told otherwise).
  void DeliverAs(Delivery delivery) {
    absl::MutexLock lock(&mu_);
    delivery_ = delivery;
  }

  std::vector<absl::StatusOr<Delivery>> SendWindow(
      const std::vector<ChatMessage>& messages) override {
    absl::MutexLock lock(&mu_);
    Call call{Op::kWindow, {}, false};
    std::vector<absl::StatusOr<Delivery>> statuses;
    for (const ChatMessage& message : messages) {
      call.texts.push_back(message.text);
      statuses.push_back(DirectLocked(Op::kWindow, message.text));
    }
    calls_.push_back(std::move(call));
    return statuses;
  }

  absl::StatusOr<Delivery> SendOne(const ChatMessage& message,
                                   bool fresh) override {
    absl::MutexLock lock(&mu_);
    calls_.push_back({Op::kOne, {message.text}, fresh});
    return DirectLocked(Op::kOne, message.text);
  }

  absl::Status Deposit(const ChatMessage& message) override {
    absl::MutexLock lock(&mu_);
    calls_.push_back({Op::kDeposit, {message.text}, false});
    return AnswerLocked(Op::kDeposit, message.text);
  }

  void Forget(const std::string& name) override {
    absl::MutexLock lock(&mu_);
    calls_.push_back({Op::kForget, {name}, false});
  }

  std::vector<Call> Calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

  size_t CallCount() {
    absl::MutexLock lock(&mu_);
    return calls_.size();
  }

  // Waits (up to 10 s of real time) until at least `count` calls came.
  bool AwaitCalls(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return calls_.size() >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }

 private:
  absl::Status AnswerLocked(Op op, const std::string& text)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = answers_.find({op, text});
    if (it == answers_.end()) it = answers_.find({op, ""});
    return it == answers_.end() ? absl::OkStatus() : it->second;
  }

  absl::StatusOr<Delivery> DirectLocked(Op op, const std::string& text)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status status = AnswerLocked(op, text);
    if (!status.ok()) return status;
    return delivery_;
  }

  absl::Mutex mu_;
  Delivery delivery_ ABSL_GUARDED_BY(mu_) = Delivery::kProven;
  absl::flat_hash_map<std::pair<Op, std::string>, absl::Status> answers_
      ABSL_GUARDED_BY(mu_);
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

using Op = FakeTransport::Op;

// What a kSendResult event says: the message's text, its state, why.
using Result = std::tuple<std::string, SendStatus, std::string>;

// As the gRPC transport says them: a short reason, the gRPC text as detail.
const absl::Status kUnreachable = WithDetail(
    absl::UnavailableError("bob is unreachable"), "UNAVAILABLE: refused");
const absl::Status kNotOnline = WithDetail(
    absl::NotFoundError("bob is offline"), "NOT_FOUND: bob is not online");
const absl::Status kRegistryDown =
    WithDetail(absl::UnavailableError(kRegistryUnreachable),
               "UNAVAILABLE: registry at 127.0.0.1:1 is unreachable");
constexpr char kBothDown[] = "bob is unreachable and so is the registry";

// What the peer would answer about the recipient, as the test sets it.
struct FakeRecipients final : RecipientDirectory {
  size_t Window(const std::string&) override { return window; }
  bool IsStatic(const std::string&) override { return is_static; }
  absl::Status Exists(const std::string&) override { return exists; }

  size_t window = kSendWindow;
  bool is_static = false;
  absl::Status exists = absl::OkStatus();  // Set before Start().
};

class ConversationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenPeerStore(":memory:", clock_, /*sync_full=*/false);
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
  }

  // Starts the conversation to bob with `window` messages a round.
  void Start(size_t window = kSendWindow, bool is_static = false) {
    Conversation::Options options;
    options.to = "bob";
    options.retry_min = Millis(250);
    options.retry_max = Millis(2000);
    recipients_.window = window;
    recipients_.is_static = is_static;
    conversation_ =
        std::make_unique<Conversation>(options, &transport_, &store_->outbox(),
                                       &recipients_, &sink_, &screen_, clock_);
  }

  // Writes messages to bob with these texts to the outbox, as the peer
  // does before it hands them to the conversation.
  std::vector<ChatMessage> AddToOutbox(const std::vector<std::string>& texts) {
    std::vector<ChatMessage> added;
    for (const std::string& text : texts) {
      ChatMessage message;
      message.id = "id-" + text;
      message.from = "alice";
      message.to = "bob";
      message.text = text;
      absl::Notification done;
      store_->outbox().Add(message, [&](absl::StatusOr<ChatMessage> stored) {
        EXPECT_THAT(stored, IsOk());
        if (stored.ok()) added.push_back(*stored);
        done.Notify();
      });
      done.WaitForNotification();
    }
    return added;
  }

  // Writes messages to the outbox and queues them in one go.
  void Send(const std::vector<std::string>& texts) {
    conversation_->Enqueue(AddToOutbox(texts), /*to_partner=*/false);
  }

  // Every kSendResult event so far, in order.
  std::vector<Result> Results() {
    std::vector<Result> results;
    for (const PeerEvent& event : sink_.Events()) {
      if (event.kind != EventKind::kSendResult) continue;
      results.emplace_back(event.message.text, event.status, event.text);
    }
    return results;
  }

  // Waits for the final report (anything but kSent) of the message `text`.
  bool AwaitResult(const std::string& text, Millis timeout = Millis(10000)) {
    return sink_
        .WaitFor(
            [&text](const PeerEvent& event) {
              return event.kind == EventKind::kSendResult &&
                     event.message.text == text &&
                     event.status != SendStatus::kSent;
            },
            timeout)
        .has_value();
  }

  bool AwaitInfo(const std::string& text) {
    return screen_
        .WaitFor([&text](const PeerEvent& event) {
          return event.kind == EventKind::kInfo && event.text == text;
        })
        .has_value();
  }

  // Waits until the conversation pauses before its next attempt; returns
  // the length of that pause.
  std::optional<Millis> AwaitPause() {
    if (!clock_.AwaitWaiters(1)) return std::nullopt;
    return clock_.NextWait();
  }

  // Ends the pause by moving the clock, and waits for the attempt after it.
  void AdvancePast(Millis pause) {
    const size_t calls = transport_.CallCount();
    clock_.Advance(pause);
    ASSERT_TRUE(transport_.AwaitCalls(calls + 1));
  }

  // The outbox's texts, once it has settled on `count` entries.
  bool AwaitOutboxSize(size_t count) {
    return chat::testing::WaitFor([&] {
      auto outbox = store_->outbox().Entries();
      return outbox.ok() && outbox->size() == count;
    });
  }

  FakeClock clock_;
  FakeRecipients recipients_;
  FakeTransport transport_;
  RecordingSink sink_;    // The states of our messages (DeliveryListener).
  RecordingSink screen_;  // Everything else (the front end's EventSink).
  std::unique_ptr<PeerStore> store_;
  std::unique_ptr<Conversation> conversation_;  // Last: it uses the above.
};

TEST_F(ConversationTest, AWindowGoesAtOnceAndIsReportedInOrder) {
  Start(/*window=*/3);
  Send({"one", "two", "three"});
  ASSERT_TRUE(AwaitResult("three"));
  EXPECT_THAT(Results(),
              ElementsAre(Result{"one", SendStatus::kDelivered, ""},
                          Result{"two", SendStatus::kDelivered, ""},
                          Result{"three", SendStatus::kDelivered, ""}));
  std::vector<FakeTransport::Call> calls = transport_.Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].op, Op::kWindow);
  EXPECT_THAT(calls[0].texts, ElementsAre("one", "two", "three"));
  EXPECT_TRUE(AwaitOutboxSize(0));
}

TEST_F(ConversationTest, ADeliveryNoKeyProvesIsReportedUnverified) {
  transport_.DeliverAs(Delivery::kUnverified);
  transport_.Answer(Op::kWindow, kUnreachable, "two");
  Start(/*window=*/2);
  Send({"one", "two"});
  ASSERT_TRUE(AwaitResult("two"));
  std::vector<bool> unverified;
  for (const PeerEvent& event : sink_.Events()) {
    if (event.kind == EventKind::kSendResult &&
        event.status == SendStatus::kDelivered) {
      unverified.push_back(event.unverified);
    }
  }
  // Both ways: the window, and one by one.
  EXPECT_THAT(unverified, ElementsAre(true, true));
}

TEST_F(ConversationTest, AProvenDeliveryIsNotUnverified) {
  Start();
  Send({"one"});
  ASSERT_TRUE(AwaitResult("one"));
  std::optional<PeerEvent> delivered = sink_.WaitFor([](const PeerEvent& e) {
    return e.kind == EventKind::kSendResult &&
           e.status == SendStatus::kDelivered;
  });
  ASSERT_TRUE(delivered.has_value());
  EXPECT_FALSE(delivered->unverified);
}

TEST_F(ConversationTest, AFailedMessageInAWindowIsRetriedBeforeThoseAfterIt) {
  transport_.Answer(Op::kWindow, kUnreachable, "two");
  transport_.Answer(Op::kOne, kUnreachable, "two");
  transport_.Answer(Op::kDeposit, kRegistryDown, "two");
  Start(/*window=*/3);
  Send({"one", "two", "three"});
  // "three" went through with the window, but waits behind "two".
  std::optional<Millis> pause = AwaitPause();
  ASSERT_TRUE(pause.has_value());
  EXPECT_THAT(Results(),
              ElementsAre(Result{"one", SendStatus::kDelivered, ""},
                          Result{"two", SendStatus::kSent, kBothDown}));
  transport_.Answer(Op::kOne, absl::OkStatus(), "two");
  AdvancePast(*pause);
  ASSERT_TRUE(AwaitResult("three"));
  EXPECT_THAT(
      Results(),
      ElementsAre(Result{"one", SendStatus::kDelivered, ""},
                  Result{"two", SendStatus::kSent, kBothDown},
                  Result{"two", SendStatus::kDelivered, "on a later attempt"},
                  Result{"three", SendStatus::kDelivered, ""}));
  // "three" was carried once, with the window; "two" again on its own.
  std::vector<FakeTransport::Call> calls = transport_.Calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].op, Op::kWindow);
  EXPECT_THAT(calls[0].texts, ElementsAre("one", "two", "three"));
  EXPECT_EQ(calls[1].op, Op::kOne);
  EXPECT_TRUE(calls[1].fresh);  // The known channel just failed.
  EXPECT_EQ(calls[2].op, Op::kDeposit);
  EXPECT_EQ(calls[3].op, Op::kOne);
  EXPECT_THAT(calls[3].texts, ElementsAre("two"));
  EXPECT_FALSE(calls[3].fresh);
  EXPECT_TRUE(AwaitOutboxSize(0));
}

TEST_F(ConversationTest, PausesDoubleFromRetryMinToRetryMax) {
  transport_.Answer(Op::kWindow, kUnreachable);
  transport_.Answer(Op::kOne, kUnreachable);
  transport_.Answer(Op::kDeposit, kRegistryDown);
  Start();
  Send({"hello"});
  std::vector<Millis> pauses;
  for (int i = 0; i < 6; ++i) {
    std::optional<Millis> pause = AwaitPause();
    ASSERT_TRUE(pause.has_value());
    pauses.push_back(*pause);
    AdvancePast(*pause);
  }
  EXPECT_THAT(pauses, ElementsAre(Millis(250), Millis(500), Millis(1000),
                                  Millis(2000), Millis(2000), Millis(2000)));
}

TEST_F(ConversationTest,
       TheNextFailingMessageIsToldAgainAndPausesFromRetryMin) {
  transport_.Answer(Op::kWindow, kUnreachable);
  transport_.Answer(Op::kOne, kUnreachable);
  transport_.Answer(Op::kDeposit, kRegistryDown);
  Start(/*window=*/1);
  Send({"one", "two"});
  ASSERT_EQ(AwaitPause(), Millis(250));
  AdvancePast(Millis(250));
  ASSERT_EQ(AwaitPause(), Millis(500));
  transport_.Answer(Op::kOne, absl::OkStatus(), "one");
  AdvancePast(Millis(500));
  ASSERT_TRUE(AwaitResult("one"));
  // "two" fails on its own now: told, and paused from the start.
  EXPECT_EQ(AwaitPause(), Millis(250));
  const std::string why = kBothDown;
  EXPECT_THAT(Results(), ElementsAre(Result{"one", SendStatus::kSent, why},
                                     Result{"one", SendStatus::kDelivered,
                                            "on a later attempt"},
                                     Result{"two", SendStatus::kSent, why}));
}

TEST_F(ConversationTest, ARecipientAwayGetsItInItsMailbox) {
  transport_.Answer(Op::kWindow, kUnreachable);
  transport_.Answer(Op::kOne, kNotOnline);
  Start();
  Send({"hello"});
  ASSERT_TRUE(AwaitResult("hello"));
  EXPECT_THAT(Results(), ElementsAre(Result{"hello", SendStatus::kStored,
                                            "bob is offline"}));
  std::vector<FakeTransport::Call> calls = transport_.Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[2].op, Op::kDeposit);
  // It stays in the outbox, marked stored, until its receipt comes.
  EXPECT_TRUE(chat::testing::WaitFor([&] {
    auto outbox = store_->outbox().Entries();
    return outbox.ok() && outbox->size() == 1 && (*outbox)[0].stored;
  }));
}

TEST_F(ConversationTest, AnUnreachableRecipientGetsItInItsMailboxToo) {
  transport_.Answer(Op::kWindow, kUnreachable);
  transport_.Answer(Op::kOne, kUnreachable);
  Start();
  Send({"hello"});
  ASSERT_TRUE(AwaitResult("hello"));
  EXPECT_THAT(Results(), ElementsAre(Result{"hello", SendStatus::kStored,
                                            "bob is unreachable"}));
}

TEST_F(ConversationTest, ARefusalIsRetriedWithoutTheMailbox) {
  // The address now belongs to someone else, say: not a reason to store.
  const absl::Status refused = absl::FailedPreconditionError("this is not bob");
  transport_.Answer(Op::kWindow, refused);
  transport_.Answer(Op::kOne, refused);
  Start();
  Send({"hello"});
  ASSERT_TRUE(AwaitPause().has_value());
  EXPECT_THAT(Results(), ElementsAre(Result{"hello", SendStatus::kSent,
                                            "this is not bob"}));
  for (const FakeTransport::Call& call : transport_.Calls()) {
    EXPECT_NE(call.op, Op::kDeposit);
  }
}

TEST_F(ConversationTest, WithTheRegistryDownItIsToldOnceAndDeliveredLater) {
  transport_.Answer(Op::kWindow, kUnreachable);
  transport_.Answer(Op::kOne, kUnreachable);
  transport_.Answer(Op::kDeposit, kRegistryDown);
  Start();
  Send({"hello"});
  for (int i = 0; i < 3; ++i) {
    std::optional<Millis> pause = AwaitPause();
    ASSERT_TRUE(pause.has_value());
    AdvancePast(*pause);
  }
  ASSERT_TRUE(AwaitPause().has_value());
  transport_.Answer(Op::kOne, absl::OkStatus());
  AdvancePast(*clock_.NextWait());
  ASSERT_TRUE(AwaitResult("hello"));
  EXPECT_THAT(Results(),
              ElementsAre(Result{"hello", SendStatus::kSent, kBothDown},
                          Result{"hello", SendStatus::kDelivered,
                                 "on a later attempt"}));
  EXPECT_TRUE(AwaitOutboxSize(0));
}

TEST_F(ConversationTest, ANudgeCutsThePauseShort) {
  transport_.Answer(Op::kWindow, kUnreachable);
  transport_.Answer(Op::kOne, kUnreachable);
  transport_.Answer(Op::kDeposit, kRegistryDown);
  Start();
  Send({"hello"});
  ASSERT_TRUE(AwaitPause().has_value());
  const MonoTime paused_at = clock_.Monotonic();
  transport_.Answer(Op::kOne, absl::OkStatus());  // Bob is back.
  conversation_->Nudge();
  ASSERT_TRUE(AwaitResult("hello"));
  EXPECT_EQ(clock_.Monotonic(), paused_at);
  EXPECT_THAT(Results().back(),
              Result("hello", SendStatus::kDelivered, "on a later attempt"));
}

TEST_F(ConversationTest, APermanentErrorFailsThatMessageOnly) {
  const absl::Status bad = absl::InvalidArgumentError("bad text");
  transport_.Answer(Op::kWindow, bad, "one");
  transport_.Answer(Op::kOne, bad, "one");
  Start();
  Send({"one", "two"});
  ASSERT_TRUE(AwaitResult("two"));
  EXPECT_THAT(Results(),
              ElementsAre(Result{"one", SendStatus::kFailed, "bad text"},
                          Result{"two", SendStatus::kDelivered, ""}));
  for (const FakeTransport::Call& call : transport_.Calls()) {
    EXPECT_NE(call.op, Op::kDeposit);
  }
  EXPECT_EQ(clock_.WaiterDeadlines().size(), 0u);  // Never paused.
  EXPECT_TRUE(AwaitOutboxSize(0));
}

TEST_F(ConversationTest, AStaticEntryGetsOneMessageAtATime) {
  Start(/*window=*/1);
  Send({"one", "two", "three"});
  ASSERT_TRUE(AwaitResult("three"));
  std::vector<FakeTransport::Call> calls = transport_.Calls();
  ASSERT_EQ(calls.size(), 3u);
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].op, Op::kWindow);
    EXPECT_EQ(calls[i].texts.size(), 1u);
  }
  EXPECT_THAT(calls[0].texts, ElementsAre("one"));
  EXPECT_THAT(calls[2].texts, ElementsAre("three"));
}

TEST_F(ConversationTest, AtShutdownWhatCannotGoStaysInTheOutbox) {
  transport_.Answer(Op::kWindow, kUnreachable);
  transport_.Answer(Op::kOne, kUnreachable);
  transport_.Answer(Op::kDeposit, kRegistryDown);
  Start();
  Send({"one", "two", "three"});
  ASSERT_TRUE(AwaitPause().has_value());
  const size_t calls = transport_.CallCount();
  conversation_.reset();  // One more try, without waiting out the pause.
  EXPECT_GT(transport_.CallCount(), calls);
  EXPECT_TRUE(AwaitInfo(
      "3 messages to bob wait in your outbox; they go out when you start "
      "again"));
  EXPECT_THAT(Results(),
              ElementsAre(Result{"one", SendStatus::kSent, kBothDown}));
  auto outbox = store_->outbox().Entries();
  ASSERT_THAT(outbox, IsOk());
  EXPECT_EQ(outbox->size(), 3u);
  // States go where they are written down; the screen hears only the notice.
  for (const PeerEvent& event : sink_.Events()) {
    EXPECT_EQ(event.kind, EventKind::kSendResult);
  }
  for (const PeerEvent& event : screen_.Events()) {
    EXPECT_NE(event.kind, EventKind::kSendResult);
  }
}

TEST_F(ConversationTest, TheTextIsAShortReasonAndTheDetailCarriesTheRest) {
  transport_.Answer(Op::kWindow, kUnreachable);
  transport_.Answer(Op::kOne, kUnreachable);
  transport_.Answer(Op::kDeposit, kRegistryDown);
  Start();
  Send({"hello"});
  ASSERT_TRUE(AwaitPause().has_value());
  std::vector<PeerEvent> waiting;
  for (const PeerEvent& event : sink_.Events()) {
    if (event.kind == EventKind::kSendResult) waiting.push_back(event);
  }
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting[0].status, SendStatus::kSent);
  EXPECT_EQ(waiting[0].text, kBothDown);
  // Both calls' gRPC text, in the order they were made, never in `text`.
  EXPECT_EQ(waiting[0].detail,
            "UNAVAILABLE: refused; then UNAVAILABLE: registry at 127.0.0.1:1 "
            "is unreachable");
}

TEST_F(ConversationTest, StoredForAnOfflineRecipientSaysSoInOneReason) {
  transport_.Answer(Op::kWindow, kNotOnline);
  transport_.Answer(Op::kOne, kNotOnline);
  Start();
  Send({"hello"});
  ASSERT_TRUE(AwaitResult("hello"));
  std::optional<PeerEvent> stored = sink_.WaitFor([](const PeerEvent& event) {
    return event.kind == EventKind::kSendResult &&
           event.status == SendStatus::kStored;
  });
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->text, "bob is offline");
  EXPECT_EQ(stored->detail, "NOT_FOUND: bob is not online");
}

TEST_F(ConversationTest, WithTheRegistryAwayANewNameWaitsForIt) {
  // Never resolved, never listed: only the registry knows where bob is.
  transport_.Answer(Op::kWindow, kRegistryDown);
  transport_.Answer(Op::kOne, kRegistryDown);
  transport_.Answer(Op::kDeposit, kRegistryDown);
  Start();
  Send({"hello"});
  std::optional<Millis> pause = AwaitPause();
  ASSERT_TRUE(pause.has_value());
  EXPECT_THAT(Results(), ElementsAre(Result{"hello", SendStatus::kSent,
                                            "the registry is unreachable"}));
  transport_.Answer(Op::kOne, absl::OkStatus());  // The registry is back.
  conversation_->Nudge();
  ASSERT_TRUE(AwaitResult("hello"));
  EXPECT_THAT(Results().back(),
              Result("hello", SendStatus::kDelivered, "on a later attempt"));
}

// A name typed while the registry was away is taken on trust; it waited in
// the outbox forever once the registry said nobody holds it (it went to a
// mailbox nobody reads). Now it fails, once, with a plain reason.
TEST_F(ConversationTest, ANameNobodyHoldsFailsOnceTheRegistryAnswers) {
  transport_.Answer(Op::kWindow, kRegistryDown);
  transport_.Answer(Op::kOne, kRegistryDown);
  transport_.Answer(Op::kDeposit, kRegistryDown);
  recipients_.exists = absl::NotFoundError("nobody named bob is registered");
  Start();
  Send({"hello"});
  ASSERT_TRUE(AwaitPause().has_value());
  EXPECT_THAT(Results(), ElementsAre(Result{"hello", SendStatus::kSent,
                                            "the registry is unreachable"}));
  // The registry is back: bob is not registered now, nor at all.
  transport_.Answer(Op::kOne, kNotOnline);
  transport_.Answer(Op::kDeposit, absl::OkStatus());
  conversation_->Nudge();
  ASSERT_TRUE(AwaitResult("hello"));
  EXPECT_THAT(Results().back(), Result("hello", SendStatus::kFailed,
                                       "nobody named bob is registered"));
  EXPECT_TRUE(AwaitOutboxSize(0));
  // Not left in a mailbox nobody reads.
  EXPECT_NE(transport_.Calls().back().op, Op::kDeposit);
}

TEST_F(ConversationTest, AStaticEntryOutOfReachWaitsInTheOutboxNotAMailbox) {
  transport_.Answer(Op::kWindow, kUnreachable);
  transport_.Answer(Op::kOne, kUnreachable);
  Start(/*window=*/1, /*is_static=*/true);
  Send({"one", "two"});
  // Retried directly with backoff, told once, never deposited.
  std::vector<Millis> pauses;
  for (int i = 0; i < 4; ++i) {
    std::optional<Millis> pause = AwaitPause();
    ASSERT_TRUE(pause.has_value());
    pauses.push_back(*pause);
    AdvancePast(*pause);
  }
  EXPECT_THAT(pauses, ElementsAre(Millis(250), Millis(500), Millis(1000),
                                  Millis(2000)));
  ASSERT_TRUE(AwaitPause().has_value());
  EXPECT_THAT(Results(), ElementsAre(Result{"one", SendStatus::kSent,
                                            "it is unreachable"}));
  for (const FakeTransport::Call& call : transport_.Calls()) {
    EXPECT_NE(call.op, Op::kDeposit);
  }
  auto outbox = store_->outbox().Entries();
  ASSERT_THAT(outbox, IsOk());
  ASSERT_EQ(outbox->size(), 2u);
  EXPECT_FALSE((*outbox)[0].stored);
  // It is back: at once, both go, in order.
  transport_.Answer(Op::kWindow, absl::OkStatus());
  transport_.Answer(Op::kOne, absl::OkStatus());
  const MonoTime paused_at = clock_.Monotonic();
  conversation_->Nudge();
  ASSERT_TRUE(AwaitResult("two"));
  EXPECT_EQ(clock_.Monotonic(), paused_at);
  EXPECT_THAT(
      Results(),
      ElementsAre(Result{"one", SendStatus::kSent, "it is unreachable"},
                  Result{"one", SendStatus::kDelivered, "on a later attempt"},
                  Result{"two", SendStatus::kDelivered, ""}));
  EXPECT_TRUE(AwaitOutboxSize(0));
}

TEST_F(ConversationTest, AStaticEntryOutOfReachStaysInTheOutboxAtShutdown) {
  transport_.Answer(Op::kWindow, kUnreachable);
  transport_.Answer(Op::kOne, kUnreachable);
  Start(/*window=*/1, /*is_static=*/true);
  Send({"one"});
  ASSERT_TRUE(AwaitPause().has_value());
  conversation_.reset();
  EXPECT_TRUE(AwaitInfo(
      "1 message to bob waits in your outbox; it goes out when you start "
      "again"));
  auto outbox = store_->outbox().Entries();
  ASSERT_THAT(outbox, IsOk());
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_FALSE((*outbox)[0].stored);
}

TEST_F(ConversationTest, AtShutdownWhatCanGoGoesFirst) {
  Start();
  Send({"one", "two"});
  conversation_.reset();
  EXPECT_THAT(Results(),
              ElementsAre(Result{"one", SendStatus::kDelivered, ""},
                          Result{"two", SendStatus::kDelivered, ""}));
  EXPECT_TRUE(AwaitOutboxSize(0));
}

}  // namespace
}  // namespace chat::peer
