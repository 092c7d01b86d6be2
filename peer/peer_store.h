// The peer's durable state, one SQLite file per name in its data directory:
// the outbox (our messages until their recipient has them), the inbox (ids
// of messages received lately, and those held back to keep a conversation
// in order), each conversation's sequence counters, the history (what was
// said, both ways, bounded), and the lease that holds our name (so a
// restarted peer takes its name back at once).

#ifndef CHAT_PEER_PEER_STORE_H_
#define CHAT_PEER_PEER_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/identity.h"
#include "peer/events.h"
#include "peer/message.h"

namespace chat::peer {

// One of our messages not yet known to have arrived.
struct OutboxEntry {
  ChatMessage message;  // With its sequence and epoch.
  // Deposited in the recipient's mailbox; waits there for the recipient.
  bool stored = false;
};

// What the peer remembers for read receipts (table `reads`), both ways.
struct ReadNote {
  enum class State {
    kAwaiting = 0,  // Ours to `peer`, delivered; its read receipt may come.
    kShown = 1,     // From `peer`, shown, not read yet.
    kOwed = 2,      // From `peer`, read: our receipt is still to be sent.
  };
  std::string peer;  // The other side, as met.
  std::string id;    // The message's id.
  State state = State::kAwaiting;
  int64_t at_unix_ms = 0;  // When noted.
};

// A key pinned for a name: the first one seen for it (trust on first use),
// or the one the user accepted with /trust.
struct Pin {
  std::string name;
  PublicKey key;
};

// Someone the peer follows (hears come and go), or chose not to.
struct Contact {
  enum class State {
    kTalked = 0,      // We wrote to them or they to us.
    kChosen = 1,      // /follow, /chat, --peer: kept before those talked with.
    kUnfollowed = 2,  // /unfollow: not followed even when talked with.
  };
  std::string name;  // As first met (lowercase for contacts from before).
  State state = State::kTalked;
  int64_t last_unix_ms = 0;  // When last talked with or chosen.
};

// The last messages of one conversation (History()).
struct HistoryPage {
  std::vector<HistoryEntry> entries;  // Oldest first.
  int64_t total = 0;                  // Messages kept with this name in all.
};

// What the inbox made of an arriving message.
struct Received {
  // Seen before (a retry, or a direct copy and a mailbox copy): show nothing.
  bool duplicate = false;
  // To show now, in order: the message itself, and any held back before
  // that it completes; empty while it waits for earlier ones.
  std::vector<ChatMessage> ready;
};

// Every write is committed before it is reported done, except those marked
// "not waited for", which ride along with the next write or are committed
// on their own within 50 ms. With `sync_full` (the default) a commit also
// survives power loss, else only the death of the process. Writes from many
// threads share commits. Thread-safe. Errors: kUnavailable (storage failed;
// nothing of the failed write is kept).
class PeerStore {
 public:
  virtual ~PeerStore() = default;

  // ---- Sender side.

  // Gives `message` the next sequence number of its conversation (with
  // message.to, case-insensitively) and writes it to the outbox, and to the
  // history as kSent (in the same commit). `done`
  // gets the message as stored, or the error; calls come in call order, on
  // the store's writer thread, and must not wait for the store.
  using AddedCallback = std::function<void(absl::StatusOr<ChatMessage>)>;
  virtual void AddToOutbox(ChatMessage message, AddedCallback done) = 0;

  // The lowest sequence number still in the outbox towards `recipient`
  // (what the recipient may still have to wait for); `fallback` when none.
  virtual int64_t OutboxFloor(const std::string& recipient,
                              int64_t fallback) = 0;

  // Records that message `id` waits in its recipient's mailbox. Not waited
  // for: after a crash before it lands, the message is simply sent again.
  virtual void MarkStored(const std::string& id) = 0;

  // Removes message `id` (it arrived, or it can never be sent). Not waited
  // for: after a crash before it lands, the message is sent again and the
  // recipient drops the copy.
  virtual void RemoveFromOutbox(const std::string& id) = 0;

  // Removes message `id` to `recipient` (compared case-insensitively) and
  // returns it; nullopt when no such message is there (also when `id` is
  // one of ours to someone else: a receipt from carol never takes a message
  // to bob).
  virtual absl::StatusOr<std::optional<OutboxEntry>> TakeFromOutbox(
      const std::string& id, const std::string& recipient) = 0;

  // Everything in the outbox, each conversation in sequence order.
  virtual absl::StatusOr<std::vector<OutboxEntry>> Outbox() = 0;

  // ---- Receiver side.

  // Records an arriving message (message.id set) durably, then tells `done`
  // what to show. A message whose id is known from the same sender (by
  // name key) is a duplicate (another sender's message under that id is
  // not: ids are chosen by their senders); so is an
  // authenticated one (not `unverified`, sent_at set) sent no later than
  // the newest message of its sender whose id was forgotten (the replay
  // watermark, see PeerStoreLimits): the same sealed bytes are never shown
  // twice, however late they come again. Messages of a conversation are
  // released in sequence order; a message whose predecessors have not come is
  // held back, and kept, until they do or until ReleaseOverdue(). `done` calls
  // come in commit order on the store's writer thread, so what they show keeps
  // the order; they must not wait for the store.
  using ReceivedCallback = std::function<void(absl::StatusOr<Received>)>;
  virtual void Receive(ChatMessage message, ReceivedCallback done) = 0;

  // Records that released messages (as Receive() or Unshown() gave them)
  // were shown, so a restart does not show them again, adds them to the
  // history, and keeps `unread` (kShown notes of some of them, by id) with
  // their mark for ReadNotes(): one write, all of it lands or none. Not
  // waited for.
  virtual void MarkShown(const std::vector<ChatMessage>& messages,
                         const std::vector<ReadNote>& unread) = 0;

  // Gives up waiting for the gaps before messages held back longer than
  // `limit`, and releases them (with the held messages after them that are
  // now in order) like Receive(). The gaps are skipped: a message that
  // fills one later is shown when it comes, out of order.
  virtual void ReleaseOverdue(absl::Duration limit, ReceivedCallback done) = 0;

  // Messages released but perhaps not shown, because the process died in
  // between; oldest first. Show them again, marked as repeated.
  virtual absl::StatusOr<std::vector<ChatMessage>> Unshown() = 0;

  // ---- History (table `history`): every message of a conversation, both
  // ways, in the order written, bounded by PeerStoreLimits' history_kept
  // and history_rows_kept. Delivery state lives elsewhere (outbox, inbox,
  // watermarks): nothing here changes what is sent or shown.

  // Records that our message `id` reached `status` (every kSendResult the
  // peer emits, whatever its status). A state never goes back: kSent <
  // kStored < kExpired, kFailed < kDelivered < kRead; a lower one is
  // ignored. Not waited for; updates that come together share one write.
  virtual void RecordSendState(const std::string& id, SendStatus status) = 0;

  // The last `limit` (at least 1) messages with `name` (case-insensitively),
  // oldest first, and how many are kept with `name` in all.
  virtual absl::StatusOr<HistoryPage> History(const std::string& name,
                                              int limit) = 0;

  // Erases the history with `name` and returns how many messages it held.
  // The outbox, the inbox and the sequence counters stay. Waited for.
  virtual absl::StatusOr<int64_t> ForgetHistory(const std::string& name) = 0;

  // Erases messages written longer than history_kept ago (by the store's
  // clock), and the oldest beyond history_rows_kept. Not waited for. The
  // row cap is also kept on its own, every history_trim_every messages.
  virtual void TrimHistory() = 0;

  // ---- Keys of others (trust on first use).

  // Every pin, in no particular order.
  virtual absl::StatusOr<std::vector<Pin>> Pins() = 0;
  // Pins `key` for `name` (replacing its pin), or removes the pin when
  // `key` is nullopt. Waited for.
  virtual absl::Status SavePin(const std::string& name,
                               const std::optional<PublicKey>& key) = 0;

  // ---- Whom we follow (table `contacts`).

  // Every contact, most recent first. A file from before issue 12 starts
  // with everyone it has a conversation with (written to: last_unix_ms 1;
  // only heard from: 0).
  virtual absl::StatusOr<std::vector<Contact>> Contacts() = 0;
  // Records `contact` (by name, case-insensitively, replacing it). Not
  // waited for: after a crash before it lands, the peer follows a little
  // less until it talks with them again.
  virtual void SaveContact(const Contact& contact) = 0;
  // Forgets the contact `name`. Not waited for.
  virtual void ForgetContact(const std::string& name) = 0;

  // ---- Read receipts (table `reads`, peer/read_tracker.h).

  // Every note, oldest first.
  virtual absl::StatusOr<std::vector<ReadNote>> ReadNotes() = 0;
  // Records `notes` (by peer, case-insensitively, and id; replacing, also
  // a note kept by MarkShown). A kShown note is kept with its message's
  // shown mark, as MarkShown does, so it is dropped when that message is
  // not in the inbox as shown. Not waited for: after a crash before they
  // land, a message is not reported read, or a receipt is not sent (never
  // sent twice).
  virtual void SaveReadNotes(const std::vector<ReadNote>& notes) = 0;
  // Forgets the notes (peer, id, and whether kShown: those live with the
  // shown mark) of `notes`. Not waited for.
  virtual void ForgetReadNotes(const std::vector<ReadNote>& notes) = 0;

  // ---- Our registration.

  // The lease id last saved; empty when none.
  virtual std::string SavedLeaseId() = 0;
  // Waited for: a peer killed right after it registered must find it.
  virtual absl::Status SaveLeaseId(const std::string& lease_id) = 0;
};

// How much the inbox remembers, in bounded space.
struct PeerStoreLimits {
  // Shown ids kept for de-duplication; older ones are forgotten, each
  // sender's newest forgotten sending time kept instead (one row per
  // sender).
  int64_t shown_ids_kept = 10000;
  // Trimmed after this many are shown (at most shown_ids_kept).
  int trim_every = 1000;
  // Senders whose watermark is kept; beyond, the oldest are folded into one
  // watermark for everyone (older messages from anyone are then refused).
  int64_t watermark_senders_kept = 10000;
  // History: messages older than this are erased (at TrimHistory()); zero
  // or less keeps no history at all.
  absl::Duration history_kept = absl::Hours(24 * 30);
  // At most this many messages in all conversations together, whatever
  // history_kept says (the oldest go): ~200 MB of messages at their longest
  // (4 KB), a few MB as people write.
  int64_t history_rows_kept = 50000;
  // The row cap is enforced after this many messages are written.
  int history_trim_every = 1000;
};

// Opens (creating, migrating) the store at `path`, ":memory:" for one that
// lives only as long as the object. Takes `path`.lock, so a second peer
// cannot use the same file: kUnavailable then. kFailedPrecondition when the
// file comes from a newer build. `clock` is not owned; must outlive the store.
absl::StatusOr<std::unique_ptr<PeerStore>> OpenPeerStore(
    const std::string& path, const Clock& clock, bool sync_full = true,
    PeerStoreLimits limits = PeerStoreLimits());

// The store's file for peer `name` under `data_dir`, which is created
// when missing and set to mode 0700 either way (EnsurePrivateDir: its
// errors, e.g. kUnavailable when it cannot be made).
absl::StatusOr<std::string> PeerStorePath(const std::string& data_dir,
                                          const std::string& name);

// $XDG_STATE_HOME/chat-peer, else $HOME/.local/state/chat-peer; empty when
// neither is set.
std::string DefaultDataDir();

}  // namespace chat::peer

#endif  // CHAT_PEER_PEER_STORE_H_
