// The outbox's SQLite side: tables `deliveries` (one row per message and
// recipient: a group message's copies), `conversations` (our counters), our
// messages' rows in `messages` (the history) and a group message's
// `copy_states` (SqliteHistory counts them). For peer/*_sqlite.cc only.

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
#include "peer/inbox_rules.h"
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
  void AddToGroup(ChatMessage message, std::vector<std::string> recipients,
                  AddedCopiesCallback done) override;
  int64_t Floor(const ChatMessage& copy, int64_t fallback) override;
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

  // Inside the writer's transaction: the place of our next message in
  // `conversation`, its counter moved past it.
  Numbered NumberLocked(const std::string& conversation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  // Inside the writer's transaction: our `message`'s one row in `messages`
  // (kSent), its recipient column `recipient`; `copies` is 0 for a direct
  // message, the number of members' copies for a group's.
  void WriteOursLocked(const std::string& conversation,
                       const ChatMessage& message, const std::string& recipient,
                       int64_t copies)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
  // Inside the writer's transaction: `copy`'s delivery to copy.to.
  void WriteDeliveryLocked(const std::string& conversation,
                           const ChatMessage& copy)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(file_->db_mu);
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
