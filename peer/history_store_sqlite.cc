#include "peer/history_store_sqlite.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "peer/inbox_rules.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

using registry::NameKey;

// A state of ours in the history, ranked so that it never goes back: the
// file keeps the rank, not SendStatus's number.
int HistoryRank(SendStatus status) {
  switch (status) {
    case SendStatus::kSent:
      return 0;
    case SendStatus::kStored:
      return 1;
    case SendStatus::kExpired:
      return 2;
    case SendStatus::kFailed:
      return 3;
    case SendStatus::kDelivered:
      return 4;
    case SendStatus::kRead:
      return 5;
  }
  return 0;
}

SendStatus FromHistoryRank(int rank) {
  switch (rank) {
    case 1:
      return SendStatus::kStored;
    case 2:
      return SendStatus::kExpired;
    case 3:
      return SendStatus::kFailed;
    case 4:
      return SendStatus::kDelivered;
    case 5:
      return SendStatus::kRead;
    default:
      return SendStatus::kSent;
  }
}

// The history's rows of one conversation: ours, and theirs once shown.
#define CHAT_HISTORY_OF \
  "conversation = ?1 AND in_history = 1 AND (ours = 1 OR " CHAT_SHOWN ")"

}  // namespace

void SqliteHistory::RecordSendState(const std::string& id,
                                    const std::string& recipient,
                                    SendStatus status) {
  const int rank = HistoryRank(status);
  if (!file_->KeepsHistory() || rank == 0 || id.empty()) return;  // Added.
  {
    absl::MutexLock lock(&mu_);
    pending_states_.push_back(PendingState{id, NameKey(recipient), rank});
    // One job takes every update queued until it runs: receipts come in
    // bursts (a window of 64 at once), and a job per update would cost the
    // writer a savepoint each.
    if (pending_states_.size() > 1) return;
  }
  file_->batch->PostLazily([this](SQLite::Database&) {
    file_->db_mu.AssertHeld();
    std::vector<PendingState> states;
    {
      absl::MutexLock lock(&mu_);
      states.swap(pending_states_);
    }
    // A direct message's state is its own; a group message's (copies > 0)
    // the lowest of its copies', raised only through them.
    ScopedStatement update(file_->statements,
                           "UPDATE messages SET status = ?2 WHERE id = ?1 AND "
                           "ours = 1 AND copies = 0 AND status < ?2");
    ScopedStatement copy(file_->statements,
                         "UPDATE copy_states SET status = ?3 WHERE id = ?1 "
                         "AND recipient_key = ?2 AND status < ?3");
    ScopedStatement lowest(
        file_->statements,
        "UPDATE messages SET status = (SELECT min(status) FROM copy_states "
        "WHERE id = ?1) WHERE id = ?1 AND ours = 1 AND copies > 0 AND status "
        "< (SELECT min(status) FROM copy_states WHERE id = ?1)");
    for (const PendingState& state : states) {
      update->reset();
      update->bind(1, state.id);
      update->bind(2, state.rank);
      if (update->exec() > 0) continue;
      copy->reset();
      copy->bind(1, state.id);
      copy->bind(2, state.recipient_key);
      copy->bind(3, state.rank);
      if (copy->exec() == 0) continue;
      lowest->reset();
      lowest->bind(1, state.id);
      lowest->exec();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<HistoryPage> SqliteHistory::Page(const std::string& name,
                                                int limit) {
  absl::MutexLock lock(&file_->db_mu);
  HistoryPage page;
  try {
    ScopedStatement select(
        file_->statements,
        "SELECT id, ours, sender, recipient, text, sent_at_ms, "
        "received_at_ms, status, late, unverified, body, copies, CASE WHEN "
        "copies > 0 THEN (SELECT count(*) FROM copy_states c WHERE c.id = "
        "page.id AND c.status >= ?3) ELSE 0 END FROM (SELECT * FROM "
        "messages WHERE " CHAT_HISTORY_OF
        " ORDER BY seq DESC LIMIT ?2) AS page ORDER BY seq");
    const std::string conversation = ConversationNamed(name);
    // A group's messages carry its id, as they did when they came.
    const std::string group_id =
        !conversation.empty() && conversation.front() == '#'
            ? conversation.substr(1)
            : std::string();
    select->bind(1, conversation);
    select->bind(2, std::max(limit, 1));
    select->bind(3, HistoryRank(SendStatus::kDelivered));
    while (select->executeStep()) {
      HistoryEntry entry;
      ChatMessage& message = entry.message;
      message.id = select->getColumn(0).getString();
      entry.ours = select->getColumn(1).getInt() != 0;
      message.from = select->getColumn(2).getString();
      message.to = select->getColumn(3).getString();
      if (!select->getColumn(4).isNull()) {
        message.text = select->getColumn(4).getString();
      } else if (!select->getColumn(10).isNull()) {
        // Received before its text had a column of its own (schema 7):
        // the whole message is in its body.
        const ChatMessage whole = Parse(select->getColumn(10));
        message.from = whole.from;
        message.to = whole.to;
        message.text = whole.text;
      }
      if (!select->getColumn(5).isNull()) {
        message.sent_at = absl::FromUnixMillis(select->getColumn(5).getInt64());
      }
      if (!select->getColumn(6).isNull()) {
        message.received_at =
            absl::FromUnixMillis(select->getColumn(6).getInt64());
      }
      if (entry.ours) {
        entry.status = FromHistoryRank(select->getColumn(7).getInt());
      }
      message.late = select->getColumn(8).getInt() != 0;
      message.unverified = select->getColumn(9).getInt() != 0;
      message.group_id = group_id;
      entry.copies = select->getColumn(11).getInt();
      entry.delivered_copies = select->getColumn(12).getInt();
      page.entries.push_back(std::move(entry));
    }
    // Who read each group message of ours on the page, in one query: the
    // page is chosen again as above (same lock, same rows), and only its
    // messages with copies are asked about. A page without any (a direct
    // conversation's) asks nothing.
    const bool has_copies =
        std::any_of(page.entries.begin(), page.entries.end(),
                    [](const HistoryEntry& entry) {
                      return entry.ours && entry.copies > 0;
                    });
    if (has_copies) {
      ScopedStatement readers(
          file_->statements,
          "SELECT id, coalesce(recipient, recipient_key) FROM copy_states "
          "WHERE status >= ?3 AND id IN (SELECT id FROM (SELECT id, ours, "
          "copies FROM messages WHERE " CHAT_HISTORY_OF
          " ORDER BY seq DESC LIMIT ?2) WHERE ours = 1 AND copies > 0) "
          "ORDER BY id, recipient_key");
      readers->bind(1, conversation);
      readers->bind(2, std::max(limit, 1));
      readers->bind(3, HistoryRank(SendStatus::kRead));
      absl::flat_hash_map<std::string, std::vector<std::string>> read_by;
      while (readers->executeStep()) {
        read_by[readers->getColumn(0).getString()].push_back(
            readers->getColumn(1).getString());
      }
      for (HistoryEntry& entry : page.entries) {
        if (!entry.ours || entry.copies == 0) continue;
        auto readers_of = read_by.find(entry.message.id);
        if (readers_of != read_by.end()) entry.read_by = readers_of->second;
      }
    }
    ScopedStatement count(
        file_->statements,
        "SELECT count(*) FROM messages WHERE " CHAT_HISTORY_OF);
    count->bind(1, conversation);
    count->executeStep();
    page.total = count->getColumn(0).getInt64();
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the history: ", e.what()));
  }
  return page;
}

absl::StatusOr<int64_t> SqliteHistory::Forget(const std::string& name) {
  int64_t erased = 0;
  CHAT_RETURN_IF_ERROR(file_->batch->Run(
      [&](SQLite::Database&) {
        file_->db_mu.AssertHeld();
        const std::string conversation = ConversationNamed(name);
        ScopedStatement ours(file_->statements,
                             "DELETE FROM messages WHERE conversation = ?1 AND "
                             "in_history = 1 AND ours = 1");
        ours->bind(1, conversation);
        erased = ours->exec();
        // Theirs leave the history; their ids still catch copies.
        ScopedStatement theirs(
            file_->statements,
            "UPDATE messages SET in_history = 0 WHERE conversation = ?1 AND "
            "in_history = 1 AND ours = 0 AND " CHAT_SHOWN);
        theirs->bind(1, conversation);
        erased += theirs->exec();
        if (rows_ >= 0) rows_ -= erased;
        return absl::OkStatus();
      },
      RecountOnFailure()));
  return erased;
}

void SqliteHistory::Trim() {
  const int64_t cutoff =
      file_->KeepsHistory()
          ? absl::ToUnixMillis(file_->clock.Wall() - file_->limits.history_kept)
          : std::numeric_limits<int64_t>::max();
  file_->batch->PostLazily(
      [this, cutoff](SQLite::Database&) {
        file_->db_mu.AssertHeld();
        TrimLocked(cutoff);
        return absl::OkStatus();
      },
      RecountOnFailure());
}

SqliteBatch::OnFailure SqliteHistory::RecountOnFailure() {
  return [this](const absl::Status&) {
    file_->db_mu.AssertHeld();
    rows_ = -1;
  };
}

void SqliteHistory::CountWritten(size_t written) {
  if (!file_->KeepsHistory()) return;
  {
    absl::MutexLock lock(&mu_);
    since_trim_ += static_cast<int64_t>(written);
    if (since_trim_ < file_->limits.history_trim_every) return;
    since_trim_ = 0;
  }
  file_->batch->PostLazily(
      [this](SQLite::Database&) {
        file_->db_mu.AssertHeld();
        TrimLocked(std::numeric_limits<int64_t>::min());
        return absl::OkStatus();
      },
      RecountOnFailure());
}

int64_t SqliteHistory::DropBeforeLocked(int64_t seq) {
  ScopedStatement ours(file_->statements,
                       "DELETE FROM messages WHERE seq < ?1 AND in_history = "
                       "1 AND ours = 1");
  ours->bind(1, seq);
  int64_t dropped = ours->exec();
  ScopedStatement theirs(file_->statements,
                         "UPDATE messages SET in_history = 0 WHERE seq < ?1 "
                         "AND in_history = 1 AND ours = 0");
  theirs->bind(1, seq);
  dropped += theirs->exec();
  return dropped;
}

// Erases the messages written before `cutoff_ms` (unix ms, by writing
// order: the first row written at or after it and every later one stay, so
// a clock that stepped back erases less, never more), then the oldest
// beyond history_rows_kept.
void SqliteHistory::TrimLocked(int64_t cutoff_ms) {
  // Stops at the first row it keeps: as costly as what it erases.
  ScopedStatement first_kept(file_->statements,
                             "SELECT seq FROM messages WHERE in_history = 1 "
                             "AND written_ms >= ?1 ORDER BY seq LIMIT 1");
  first_kept->bind(1, cutoff_ms);
  if (first_kept->executeStep()) {
    const int64_t seq = first_kept->getColumn(0).getInt64();
    first_kept->reset();
    const int64_t dropped = DropBeforeLocked(seq);
    if (rows_ >= 0) rows_ -= dropped;
  } else {
    first_kept->reset();
    DropBeforeLocked(std::numeric_limits<int64_t>::max());
    rows_ = 0;
    return;
  }
  // Counted once per run (or after a rollback), then kept up to date:
  // finding the cut by counting rows from the end stepped over every row
  // kept, ~5% of the writer thread's time at 50,000 rows.
  if (rows_ < 0) {
    ScopedStatement count(file_->statements,
                          "SELECT count(*) FROM messages WHERE in_history = 1");
    count->executeStep();
    rows_ = count->getColumn(0).getInt64();
    count->reset();
  }
  const int64_t over_cap = rows_ - file_->limits.history_rows_kept;
  if (over_cap <= 0) return;
  ScopedStatement cut(file_->statements,
                      "SELECT seq FROM messages WHERE in_history = 1 ORDER BY "
                      "seq LIMIT 1 OFFSET ?1");
  cut->bind(1, over_cap);
  int64_t below = std::numeric_limits<int64_t>::max();
  if (cut->executeStep()) below = cut->getColumn(0).getInt64();
  cut->reset();
  rows_ -= DropBeforeLocked(below);
}

}  // namespace chat::peer
