// The peer's durable state, one SQLite file per name in its data directory,
// and the roles it plays for the parts of the peer: the outbox, the inbox,
// the history, the pinned keys, the contacts, the read notes, the saved
// lease and the groups. Each part is handed only the roles it uses; each role's
// SQLite side is peer/<role>_sqlite.cc (docs/architecture.md, "The peer's store
// by role"). Messages are kept by conversation id (peer/inbox_rules.h).

#ifndef CHAT_PEER_PEER_STORE_H_
#define CHAT_PEER_PEER_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "peer/contact_store.h"
#include "peer/group_book.h"
#include "peer/history_store.h"
#include "peer/inbox.h"
#include "peer/lease_store.h"
#include "peer/outbox.h"
#include "peer/pin_store.h"
#include "peer/read_note_store.h"
#include "registry/groups/group_state.h"

namespace chat::peer {

// One file and every role over it. The roles share one connection and one
// group commit (common/sqlite_batch.h): every write is committed before it
// is reported done, except those marked "not waited for", which ride along
// with the next write (of any role) or are committed on their own within
// 50 ms. With `sync_full` (the default) a commit also survives power loss,
// else only the death of the process. Writes from many threads share
// commits; the writes of one role land in the order they were made, and a
// write that spans roles (a message added to the outbox and the history,
// shown and kept in the history with its read note) lands whole or not at
// all.
//
// The roles are owned by the store and live as long as it does: whoever is
// handed one must not use it after the store is destroyed (which finishes
// the queued writes and closes the file). Thread-safe.
class PeerStore {
 public:
  virtual ~PeerStore() = default;

  virtual Outbox& outbox() = 0;
  virtual Inbox& inbox() = 0;
  virtual HistoryStore& history() = 0;
  virtual PinStore& pins() = 0;
  virtual ContactStore& contacts() = 0;
  virtual ReadNoteStore& read_notes() = 0;
  virtual LeaseStore& lease() = 0;
  virtual GroupBook& groups() = 0;
};

// How much the inbox and the group book remember, in bounded space.
struct PeerStoreLimits {
  // Ids kept for de-duplication: those of the last shown_ids_kept messages
  // released before the shown mark, and of every message still in the
  // history (kept as long as it keeps them). Older ones are forgotten, each
  // sender's newest forgotten sending time kept instead (one row per
  // sender).
  int64_t shown_ids_kept = 10000;
  // Trimmed after this many are shown (at most shown_ids_kept).
  int trim_every = 1000;
  // Senders whose watermark is kept; beyond, the oldest are folded into one
  // watermark for everyone (older messages from anyone are then refused).
  int64_t watermark_senders_kept = 10000;
  // History: messages older than this are erased (at HistoryStore::Trim());
  // zero or less keeps no history at all.
  absl::Duration history_kept = absl::Hours(24 * 30);
  // At most this many messages in all conversations together, whatever
  // history_kept says (the oldest go): ~200 MB of messages at their longest
  // (4 KB), a few MB as people write.
  int64_t history_rows_kept = 50000;
  // The row cap is enforced after this many messages are written.
  int history_trim_every = 1000;
  // Groups known at most (GroupBook): a group beyond is refused with
  // kResourceExhausted; each holds at most group_limits.max_members.
  int64_t max_groups = 256;
  registry::GroupLimits group_limits;
};

// The schema version (SQLite's user_version) this build writes; older files
// are migrated on open, newer ones refused.
inline constexpr int kPeerSchemaVersion = 13;

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
