// The inbox as the peer's receiving paths see it: a group message is judged
// by the GroupGate before the store's inbox keeps it, so the direct path
// (ChatService) and the mailbox (MailListener) apply the same rules.

#ifndef CHAT_PEER_GROUP_INBOX_H_
#define CHAT_PEER_GROUP_INBOX_H_

#include <cstddef>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "peer/group_gate.h"
#include "peer/group_rules.h"
#include "peer/inbox.h"

namespace chat::peer {

// Told what the states fetched to judge a message changed (a member came,
// we were removed), before the message is kept; from the receiving thread.
class GroupChangeListener {
 public:
  virtual ~GroupChangeListener() = default;
  virtual void OnGroupAdvanced(const std::vector<GroupAdvance>& advanced) = 0;
};

// Receive() of a group message asks the gate first: refused, `done` gets
// the gate's error (kUnavailable: try later; any other code: refused for
// good, never kept or shown); admitted, the store's inbox keeps it. A direct
// message goes straight to the store's inbox, as do the other calls.
//
// With Options::fetch_in_background, Receive() never waits on the registry
// (its caller is a gRPC callback thread): a message whose group state must
// be fetched first is judged on this inbox's own thread, at most
// `max_waiting` at once (beyond: kUnavailable, the sender tries again or
// uses the mailbox). Without it, Receive() may wait on the registry (the
// mail listener's thread).
// Thread-safe; `inbox`, `gate` and `changes` are not owned and outlive this.
class GroupCheckedInbox final : public Inbox {
 public:
  struct Options {
    bool fetch_in_background = false;
    size_t max_waiting = 256;
  };

  GroupCheckedInbox(Inbox* inbox, GroupGate* gate, GroupChangeListener* changes,
                    Options options);
  // Stop().
  ~GroupCheckedInbox() override;

  // Answers what still waits for a fetch with kUnavailable (the sender
  // tries again) and stops the thread; later messages that need a fetch
  // get kUnavailable at once. Call before the server that hands messages
  // in stops: it waits for every answer. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  GroupCheckedInbox(const GroupCheckedInbox&) = delete;
  GroupCheckedInbox& operator=(const GroupCheckedInbox&) = delete;

  void Receive(ChatMessage message, ReceivedCallback done) override
      ABSL_LOCKS_EXCLUDED(mu_);
  void MarkShown(const std::vector<ChatMessage>& messages,
                 const std::vector<ReadNote>& unread) override {
    inbox_.MarkShown(messages, unread);
  }
  void ReleaseOverdue(absl::Duration limit, ReceivedCallback done) override {
    inbox_.ReleaseOverdue(limit, std::move(done));
  }
  absl::StatusOr<std::vector<ChatMessage>> Unshown() override {
    return inbox_.Unshown();
  }

 private:
  struct Waiting {
    ChatMessage message;
    ReceivedCallback done;
  };

  // Judges `message` (fetching if need be), then keeps it or refuses it.
  void JudgeAndKeep(ChatMessage message, ReceivedCallback done);
  void RunFetches() ABSL_LOCKS_EXCLUDED(mu_);

  Inbox& inbox_;
  GroupGate& gate_;
  GroupChangeListener& changes_;
  const Options options_;

  absl::Mutex mu_;
  std::deque<Waiting> waiting_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread fetcher_;  // Last: it uses everything above.
};

}  // namespace chat::peer

#endif  // CHAT_PEER_GROUP_INBOX_H_
