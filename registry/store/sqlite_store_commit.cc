// SqliteStore's writes after their decision: their rows written in the
// batch's transaction, then published to watchers once committed, or undone
// in memory (with every write decided on top of them) when the commit fails.

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/sqlite_batch.h"
#include "registry/store/sqlite_store_internal.h"

namespace chat::registry::sqlite_store_internal {
namespace {

absl::Status StorageError(const std::string& what, const std::exception& e) {
  return absl::UnavailableError(
      absl::StrCat("registry storage failed to ", what, ": ", e.what()));
}

}  // namespace

void SqliteStore::WriteOver(const std::string& key,
                            const std::optional<Record>& committed) {
  auto pending = pending_changes_.find(key);
  if (pending == pending_changes_.end()) return;
  if (--pending->second == 0) {
    pending_changes_.erase(pending);
    committed_.erase(key);
  } else {
    committed_[key] = committed;
  }
}

void SqliteStore::Undo(const Change& change) {
  if (change.binding_changes) SetBinding(change.key, change.binding_before);
  if (!change.record_changes) return;
  const std::string& key = change.key;
  if (auto it = records_.find(key); it != records_.end()) {
    if (!it->second.record.is_static()) {
      expiry_.erase({it->second.record.expires_at, key});
    }
    records_.Erase(key);
  }
  if (change.before) {
    if (!change.before->is_static()) {
      expiry_.emplace(change.before->expires_at, key);
    }
    records_.Put(key, *change.before);
  }
  // What the file holds for it is still what committed_ says.
  if (auto pending = pending_changes_.find(key);
      pending != pending_changes_.end() && --pending->second == 0) {
    pending_changes_.erase(pending);
    committed_.erase(key);
  }
}

void SqliteStore::Publish(PendingWrite& write) {
  for (Change& change : write.changes) {
    if (!change.record_changes) continue;
    for (WatchEvent& event : change.events) {
      event.revision = ++revision_;
      hub_.Publish(change.key, event);
    }
    WriteOver(change.key, change.after);
  }
}

void SqliteStore::Submit(std::unique_ptr<PendingWrite> write) {
  PendingWrite* pending = write.release();  // Owned by the after-commit.
  pending->seq = ++last_seq_;
  {
    absl::MutexLock lock(&inflight_mu_);
    inflight_.push_back(pending);
  }
  batch_->Post(
      [this, pending](SQLite::Database&) {
        db_mu_.AssertHeld();
        return WriteRows(*pending);
      },
      [this, pending](const absl::Status& status) {
        Finished(pending, status);
      },
      [this, pending](const absl::Status& status) {
        db_mu_.AssertHeld();
        Fail(*pending, status);
      });
}

absl::Status SqliteStore::WriteRows(const PendingWrite& write) {
  // Decided on top of a write that failed: undone with it already.
  if (!write.undone.ok()) return write.undone;
  SQLite::Statement& upsert = *database_->upsert;
  SQLite::Statement& remove = *database_->remove;
  SQLite::Statement& upsert_binding = *database_->upsert_binding;
  SQLite::Statement& remove_binding = *database_->remove_binding;
  try {
    for (const Change& change : write.changes) {
      if (change.record_changes && change.after) {
        WriteRow(upsert, change.key, *change.after, change.updated_at_ms);
      } else if (change.record_changes) {
        remove.bind(1, change.key);
        remove.exec();
        remove.reset();
      }
      if (change.binding_changes && change.binding_after) {
        WriteBindingRow(upsert_binding, change.key, *change.binding_after,
                        change.updated_at_ms);
      } else if (change.binding_changes) {
        remove_binding.bind(1, change.key);
        remove_binding.exec();
        remove_binding.reset();
      }
    }
  } catch (const std::exception& e) {
    upsert.tryReset();
    remove.tryReset();
    upsert_binding.tryReset();
    remove_binding.tryReset();
    return StorageError("write", e);
  }
  return absl::OkStatus();
}

void SqliteStore::WriteBindingRow(SQLite::Statement& upsert,
                                  const std::string& key,
                                  const BindingRecord& binding,
                                  int64_t updated_at_ms) {
  upsert.bind(1, key);
  upsert.bind(2, binding.name);
  upsert.bind(3, binding.key.bytes.data(),
              static_cast<int>(binding.key.bytes.size()));
  if (binding.reserved_until == absl::InfiniteFuture()) {
    upsert.bind(4);  // NULL: a lease holds it.
  } else {
    upsert.bind(4, absl::ToUnixMillis(binding.reserved_until));
  }
  upsert.bind(5, updated_at_ms);
  upsert.bind(6, binding.last_proof_unix_ms);
  upsert.exec();
  upsert.reset();
}

void SqliteStore::WriteRow(SQLite::Statement& upsert, const std::string& key,
                           const Record& record, int64_t updated_at_ms) {
  upsert.bind(1, key);
  upsert.bind(2, record.name);
  upsert.bind(3, record.address);
  if (record.is_static()) {
    upsert.bind(4);  // NULL
  } else {
    upsert.bind(4, record.lease_id);
  }
  upsert.bind(5, static_cast<int64_t>(record.ttl.count()));
  upsert.bind(6, updated_at_ms);
  if (record.public_key) {
    upsert.bind(7, record.public_key->bytes.data(),
                static_cast<int>(record.public_key->bytes.size()));
  } else {
    upsert.bind(7);  // NULL
  }
  if (record.services.empty()) {
    upsert.bind(8);  // NULL: not said (a client older than services).
  } else {
    upsert.bind(8, record.services);
  }
  upsert.exec();
  upsert.reset();
}

void SqliteStore::Fail(PendingWrite& write, const absl::Status& status) {
  if (!write.undone.ok()) return;  // Undone already.
  // Blocks new decisions while memory goes back.
  absl::MutexLock write_lock(&write_mu_);
  std::vector<PendingWrite*> undone;  // Newest first; `write` last.
  {
    absl::MutexLock lock(&inflight_mu_);
    while (!inflight_.empty() && inflight_.back()->seq >= write.seq) {
      undone.push_back(inflight_.back());
      undone.back()->undone = status;
      inflight_.pop_back();
    }
  }
  size_t changes = 0;
  {
    absl::MutexLock lock(&mu_);
    for (const PendingWrite* undo : undone) {
      for (auto change = undo->changes.rbegin(); change != undo->changes.rend();
           ++change) {
        Undo(*change);
        ++changes;
      }
    }
  }
  LogLine("registry",
          absl::StrCat("undid ", changes, " change(s) of ", undone.size(),
                       " call(s): ", status.message()));
}

void SqliteStore::Finished(PendingWrite* write, const absl::Status& status) {
  std::unique_ptr<PendingWrite> owned(write);
  if (status.ok()) {
    {
      absl::MutexLock lock(&inflight_mu_);
      // Commits come in decision order, so it is the oldest in flight.
      auto it = std::find(inflight_.begin(), inflight_.end(), write);
      if (it != inflight_.end()) inflight_.erase(it);
    }
    absl::MutexLock lock(&mu_);
    Publish(*write);
  }
  write->done(status);
}

}  // namespace chat::registry::sqlite_store_internal
