// The inbox's SQLite side: their messages' rows in table `messages` (one
// each: the inbox, the history and the shown mark), each sender's counter
// per conversation (table `inbound`) and the replay watermarks (table
// `watermarks`). The decisions are peer/inbox_rules.h's. For
// peer/*_sqlite.cc only.

#ifndef CHAT_PEER_INBOX_SQLITE_H_
#define CHAT_PEER_INBOX_SQLITE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/sqlite_batch.h"
#include "peer/history_store_sqlite.h"
#include "peer/inbox.h"
#include "peer/inbox_rules.h"
#include "peer/peer_file_sqlite.h"

namespace chat::peer {

class SqliteInbox final : public Inbox {
 public:
  // A message of theirs: its sender's key and its id.
  using MessageKey = std::pair<std::string, std::string>;

  // What memory keeps of the file, read when it is opened.
  struct Loaded {
    int64_t next_release = 1;
    int64_t shown_through = 0;
    // Released, not covered by the shown mark: by message, its number.
    absl::flat_hash_map<MessageKey, int64_t> unshown;
    // Sender key ("" for everyone) -> watermark, unix ms.
    absl::flat_hash_map<std::string, int64_t> watermarks;
  };
  // May throw SQLite::Exception.
  static Loaded Load(SQLite::Database& db);

  SqliteInbox(PeerFile* file, SqliteHistory* history, Loaded loaded);

  void Receive(ChatMessage message, ReceivedCallback done) override;
  void MarkShown(const std::vector<ChatMessage>& messages,
                 const std::vector<ReadNote>& unread) override;
  void ReleaseOverdue(absl::Duration limit, ReceivedCallback done) override;
  absl::StatusOr<std::vector<ChatMessage>> Unshown() override;

 private:
  // What a job released, for its after-commit hook.
  struct Releasing {
    Received received;
    std::vector<std::pair<MessageKey, int64_t>> numbers;
  };

  // The after-commit hook of a job that releases into `releasing`: on
  // success they wait to be shown (Released) and `done` gets them; on
  // failure `done` gets the status.
  SqliteBatch::AfterCommit ReleasedHook(std::shared_ptr<Releasing> releasing,
                                        ReceivedCallback done);
  // After the commit of a job that released `releasing`: they wait to be
  // shown (MarkShown).
  void Released(const Releasing& releasing) ABSL_LOCKS_EXCLUDED(mu_);

  Watermarks WatermarksOf(const std::string& sender)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  void TrimShownLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  void ReceiveLocked(const ChatMessage& message, Releasing& releasing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  // Writes `message`'s row as `state` (kHeld or kReleased); false when its
  // sender's message with that id is there already (a copy).
  bool InsertLocked(const ChatMessage& message, const std::string& conversation,
                    int state, Releasing& releasing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  bool SeenLocked(const ChatMessage& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  void ReleaseInOrderLocked(const std::string& conversation,
                            const std::string& sender_key,
                            const std::string& epoch, int64_t next,
                            Releasing& releasing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  void ReleaseHeldBelowLocked(const std::string& conversation,
                              const std::string& sender_key,
                              const std::string& epoch, int64_t below,
                              Releasing& releasing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  void MarkReleasedLocked(ChatMessage message, Releasing& releasing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);

  int64_t NextRelease() ABSL_LOCKS_EXCLUDED(mu_);
  // Marks the row of the message `key`, released as `number`, as carrying
  // the shown mark, and raises file_->shown_through to `number`.
  void WriteShownMarkLocked(const MessageKey& key, int64_t number)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  // Writes file_->shown_through to meta, where no row needs to carry it.
  void FoldShownMarkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);

  PeerFile* const file_;
  SqliteHistory* const history_;
  absl::Mutex mu_;
  int64_t next_release_ ABSL_GUARDED_BY(mu_);
  int shown_since_trim_ ABSL_GUARDED_BY(mu_) = 0;
  // The shown mark as last written (or to be written).
  int64_t shown_through_ ABSL_GUARDED_BY(mu_);
  // The message shown with the highest number up to shown_through_, whose
  // row is to carry the mark (kShownMark), and its number: messages
  // numbered above it up to shown_through_ were shown beyond the mark
  // before, and their rows say so. Set until the job that writes it runs.
  std::optional<std::pair<MessageKey, int64_t>> mark_row_ ABSL_GUARDED_BY(mu_);
  // A job that writes mark_row_ is queued and has not read it yet.
  bool mark_queued_ ABSL_GUARDED_BY(mu_) = false;
  // The highest number released by a committed job.
  int64_t released_through_ ABSL_GUARDED_BY(mu_);
  // Released by committed jobs, not shown yet: by message, and the numbers.
  absl::flat_hash_map<MessageKey, int64_t> unshown_ ABSL_GUARDED_BY(mu_);
  std::set<int64_t> unshown_numbers_ ABSL_GUARDED_BY(mu_);
  // The watermarks table as it is in the file (every message's replay
  // check reads it; only the trim changes it).
  absl::flat_hash_map<std::string, int64_t> watermarks_
      ABSL_GUARDED_BY(file_->db_mu);
};

}  // namespace chat::peer

#endif  // CHAT_PEER_INBOX_SQLITE_H_
