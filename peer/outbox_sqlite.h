// The outbox's SQLite side: tables `deliveries` (one row per message and
// recipient) and `conversations` (our counters), and our messages' rows in
// `messages` (the history). For peer/*_sqlite.cc only.

#ifndef CHAT_PEER_OUTBOX_SQLITE_H_
#define CHAT_PEER_OUTBOX_SQLITE_H_

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "peer/history_store_sqlite.h"
#include "peer/outbox.h"
#include "peer/peer_file_sqlite.h"

namespace chat::peer {

class SqliteOutbox final : public Outbox {
 public:
  // A conversation and one recipient in it.
  using DeliveryKey = std::pair<std::string, std::string>;
  using Outstanding = absl::flat_hash_map<DeliveryKey, std::set<int64_t>>;

  // The sequence numbers in the outbox by conversation and recipient key,
  // as the file holds them. May throw SQLite::Exception.
  static Outstanding Load(SQLite::Database& db);

  SqliteOutbox(PeerFile* file, SqliteHistory* history, Outstanding outstanding)
      : file_(file), history_(history), outstanding_(std::move(outstanding)) {}

  void Add(ChatMessage message, AddedCallback done) override;
  int64_t Floor(const std::string& recipient, int64_t fallback) override;
  void MarkStored(const std::string& id, const std::string& recipient) override;
  void Remove(const std::string& id, const std::string& recipient) override;
  absl::StatusOr<std::optional<OutboxEntry>> Take(
      const std::string& id, const std::string& recipient) override;
  absl::StatusOr<std::vector<OutboxEntry>> Entries() override;

 private:
  // What a removal from the outbox took from outstanding_, to put back if
  // the removal fails.
  struct Removal {
    std::vector<std::pair<DeliveryKey, int64_t>> removed;
  };

  // Inside the writer's transaction: deletes the delivery of `id` to
  // `recipient_key`.
  void DeleteLocked(const std::string& id, const std::string& recipient_key,
                    Removal& removal)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  // The removal's rows are still there: so are their sequence numbers.
  void Restore(const Removal& removal) ABSL_LOCKS_EXCLUDED(mu_);

  PeerFile* const file_;
  SqliteHistory* const history_;
  absl::Mutex mu_;
  Outstanding outstanding_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::peer

#endif  // CHAT_PEER_OUTBOX_SQLITE_H_
