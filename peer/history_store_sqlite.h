// The history's SQLite side (HistoryStore over table `messages`), and what
// the outbox and the inbox call to keep it as they write their messages.
// For peer/*_sqlite.cc only.

#ifndef CHAT_PEER_HISTORY_STORE_SQLITE_H_
#define CHAT_PEER_HISTORY_STORE_SQLITE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "peer/history_store.h"
#include "peer/peer_file_sqlite.h"

namespace chat::peer {

// A message is in the history while its row's `in_history` is 1: ours
// leave the table with it (a group message's `copy_states` follow it, by a
// trigger), theirs stay (their ids still catch copies,
// SqliteInbox's trim) until the inbox forgets them. Theirs show in it once
// they are shown (CHAT_SHOWN).
class SqliteHistory final : public HistoryStore {
 public:
  explicit SqliteHistory(PeerFile* file) : file_(file) {}

  void RecordSendState(const std::string& id, const std::string& recipient,
                       SendStatus status) override;
  absl::StatusOr<HistoryPage> Page(const std::string& name, int limit) override;
  absl::StatusOr<int64_t> Forget(const std::string& name) override;
  void Trim() override;

  // ---- For the outbox and the inbox, which write the rows.

  // For every job that writes rows in the history: their count is not
  // known after a rollback, so the next trim counts them again.
  SqliteBatch::OnFailure RecountOnFailure();

  // Inside the writer's transaction (of the same file; asserted, since the
  // analysis cannot see that the caller's file is this one): one more row
  // in the history.
  void CountRowLocked() {
    file_->db_mu.AssertHeld();
    if (rows_ >= 0) ++rows_;
  }

  // Counts `written` messages towards the row cap and queues a trim when
  // history_trim_every are reached.
  void CountWritten(size_t written) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Inside the writer's transaction: takes the rows before `seq` out of
  // the history (ours go; theirs stay for the inbox, out of the history);
  // how many.
  int64_t DropBeforeLocked(int64_t seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  void TrimLocked(int64_t cutoff_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);

  PeerFile* const file_;
  absl::Mutex mu_;
  int64_t since_trim_ ABSL_GUARDED_BY(mu_) = 0;
  // One RecordSendState() call.
  struct PendingState {
    std::string id;
    std::string recipient_key;  // A group message's copy's.
    int rank = 0;               // HistoryRank.
  };
  // RecordSendState()'s updates, for the one job that writes them all.
  std::vector<PendingState> pending_states_ ABSL_GUARDED_BY(mu_);
  // Rows in the history; -1 until counted (TrimLocked).
  int64_t rows_ ABSL_GUARDED_BY(file_->db_mu) = -1;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_HISTORY_STORE_SQLITE_H_
