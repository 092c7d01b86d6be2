// Read receipts, both ways (docs/peer.md, "Read receipts"): which messages
// of others our user has read, sent back to their senders in batches, and
// which of ours others have read, reported as kRead after kDelivered; in a
// group, per member's copy.

#ifndef CHAT_PEER_READ_TRACKER_H_
#define CHAT_PEER_READ_TRACKER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/periodic_loop.h"
#include "peer/envelope.h"
#include "peer/events.h"
#include "peer/listeners.h"
#include "peer/message.h"
#include "peer/outbox.h"
#include "peer/read_note_store.h"
#include "proto/chat.pb.h"
#include "registry/types.h"

namespace chat::peer {

// Sits on the path of our messages' states (a DeliveryListener that hands
// each one on to `next`): it sees each kDelivered of ours, notes it
// (kAwaiting) so a read receipt is reported only after it, and a kDelivered
// that comes after kRead (a direct answer slower than the receipt) is not
// handed on at all. A group message has one id and a copy per member, each
// delivered and read on its own: everything here about ours is per copy,
// (id, member).
//
// Receiver side: Shown() notes each verified message shown, in its
// conversation (the sender's, or the group's it came in); MarkRead(name)
// (the user typed in, or switched to, the conversation with `name`) or
// MarkGroupRead(group id) (the same in a group's) turns what was shown in
// that conversation, and only that one, into receipts owed to each
// message's sender, which a loop seals and sends, up to kMaxReadIds per
// batch: straight to the sender's peer (ChattingService/SendReceipts), else
// into its mailbox (kind READ_RECEIPT), else again after `retry`. A group's
// other members are told nothing.
// Sender side: TakeReadReceipts() opens and checks what arrives (directly
// or from our mailbox) and reports kRead for each of our delivered messages
// (or group copies) to that reader it names; one still in the outbox
// (stored) is delivered first. Ids we never sent to that reader (a group
// message's id from someone who got no copy of it among them) are dropped
// and counted.
// Disabled (--no-read-receipts): it notes nothing, sends nothing and takes
// every receipt without showing it.
// Everything it must not lose or repeat is noted in the store (ReadNote).
// Thread-safe.
class ReadTracker final : public DeliveryListener, public ReadReceiptTaker {
 public:
  struct Options {
    std::string own_name;
    bool enabled = true;
    // Sends receipts straight to `to`'s peer; kUnimplemented from a lab peer
    // or an older one. Called from the tracker's thread.
    std::function<absl::Status(const std::string& to, const ::ReadReceipts&)>
        send_direct;
    // Deposits an item in the registry's mailbox.
    std::function<absl::Status(const registry::MailItem&)> deposit;
    // Seals and opens receipts. Not owned; must outlive this.
    Envelope* envelope = nullptr;
    // Pause before owed receipts are tried again.
    Millis retry{5000};
    // Notes kept in memory each way; beyond, the oldest are forgotten (the
    // store bounds its own: PeerStoreLimits::shown_ids_kept).
    size_t max_notes = 10000;
  };

  // `next` (where states go on: the history, then the front end),
  // `note_store` and `outbox` are not owned; they and `clock` must outlive
  // this. `notes` is what `note_store` held at start. The outbox gives up
  // our messages their receipts settle. The sending loop starts at once
  // (owed receipts from the last run go first).
  ReadTracker(DeliveryListener* next, ReadNoteStore* note_store, Outbox* outbox,
              std::vector<ReadNote> notes, const Clock& clock, Options options);
  // Same as Stop().
  ~ReadTracker() override;

  ReadTracker(const ReadTracker&) = delete;
  ReadTracker& operator=(const ReadTracker&) = delete;

  // Hands `event` on to `next`; notes our messages' kDelivered (kAwaiting),
  // a group message's per copy (its member in `event.message.to`), under
  // the lock that orders kRead after it.
  void OnSendState(const PeerEvent& event) ABSL_LOCKS_EXCLUDED(mu_) override;

  // `message` was shown to the user (verified messages only get receipts).
  // Returns the note the store keeps with the message's shown mark
  // (Inbox::MarkShown), or nullopt when nothing is to be noted.
  std::optional<ReadNote> Shown(const ChatMessage& message)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The user is active in the conversation with `name`: everything shown
  // from `name` so far, in that conversation (not in a group), is read; its
  // receipts go soon.
  void MarkRead(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  // The user is active in the conversation of group `group_id`: everything
  // shown in it so far is read; each receipt goes to its message's sender.
  void MarkGroupRead(const std::string& group_id) ABSL_LOCKS_EXCLUDED(mu_);

  // Read receipts that arrived for our messages (ReadReceiptTaker): each
  // id that names ours to the reader (a group message's copy to it),
  // delivered, is reported kRead to `next`, with the group and the member
  // in `message.to` for a copy; refusals are counted (dropped()) and logged
  // by the envelope.
  absl::Status TakeReadReceipts(const ::ReadReceipts& receipts, bool may_wait)
      ABSL_LOCKS_EXCLUDED(mu_) override;

  // Ends the sending loop (what is owed stays noted). Idempotent.
  void Stop();

  // Receipts refused (forged, malformed) or naming ids we never sent, so
  // far (tests, logs).
  int64_t dropped() const ABSL_LOCKS_EXCLUDED(mu_);
  // Ids our receipts reported read to their senders so far (tests).
  int64_t sent() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One of ours (a group message's copy to one member, or a direct one):
  // (id, NameKey(recipient)).
  using CopyKey = std::pair<std::string, std::string>;

  // One of our messages (or copies), delivered, whose read receipt may
  // come.
  struct Awaiting {
    std::string peer;
    ChatMessage message;  // id, from, to, sent_at, group_id only.
  };

  // Turns what was shown in `conversation` (a NameKey, or a
  // GroupConversation) into receipts owed.
  void MarkConversationRead(const std::string& conversation)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Sends what is owed; the pause before the next step.
  std::optional<Millis> SendOwed() ABSL_LOCKS_EXCLUDED(mu_);
  // Emits kRead for `awaiting` and forgets its note.
  void ReportReadLocked(const Awaiting& awaiting)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TrimAwaitingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Notes `note` (kShown) as the newest shown; beyond max_notes, the oldest
  // of all go.
  void AddShownLocked(ReadNote note) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogDropped(const std::string& why) ABSL_LOCKS_EXCLUDED(mu_);

  DeliveryListener* const next_;  // Not owned.
  ReadNoteStore* const store_;    // Not owned.
  Outbox* const outbox_;          // Not owned.
  const Clock& clock_;
  const Options options_;

  mutable absl::Mutex mu_;
  // Sender side: ours, delivered, by copy.
  absl::flat_hash_map<CopyKey, Awaiting> awaiting_ ABSL_GUARDED_BY(mu_);
  // Ours reported read lately: a kDelivered for them comes too late.
  absl::flat_hash_set<CopyKey> read_ ABSL_GUARDED_BY(mu_);
  // Read receipts for copies not delivered yet as far as we know (the
  // reader's answer to a direct send is on its way). Bounded.
  absl::flat_hash_set<CopyKey> early_ ABSL_GUARDED_BY(mu_);
  // Receiver side, by conversation (the sender's key, or a group's
  // GroupConversation): shown, in the order shown (each with its place in
  // shown_order_); and, by sender key, read with the receipt owed.
  struct ShownNote {
    uint64_t order;
    ReadNote note;
  };
  absl::flat_hash_map<std::string, std::deque<ShownNote>> shown_
      ABSL_GUARDED_BY(mu_);
  // Every note of shown_ as (order, conversation), oldest first, so the
  // bound forgets the oldest of all, not those of whoever wrote last.
  absl::btree_set<std::pair<uint64_t, std::string>> shown_order_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_shown_order_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::vector<ReadNote>> owed_
      ABSL_GUARDED_BY(mu_);
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_logged_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();

  std::optional<PeriodicLoop> loop_;  // Last: its thread uses the above.
};

}  // namespace chat::peer

#endif  // CHAT_PEER_READ_TRACKER_H_
