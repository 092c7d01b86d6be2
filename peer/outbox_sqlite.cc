#include "peer/outbox_sqlite.h"

#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/random.h"
#include "common/status.h"
#include "peer/inbox_rules.h"
#include "registry/names.h"

namespace chat::peer {

using registry::NameKey;

SqliteOutbox::Outstanding SqliteOutbox::Load(SQLite::Database& db) {
  Outstanding outstanding;
  SQLite::Statement select(
      db, "SELECT conversation, recipient_key, sequence FROM deliveries");
  while (select.executeStep()) {
    DeliveryKey key(select.getColumn(0).getString(),
                    select.getColumn(1).getString());
    outstanding[key].insert(select.getColumn(2).getInt64());
  }
  return outstanding;
}

Numbered SqliteOutbox::NumberLocked(const std::string& conversation) {
  ScopedStatement select(file_->statements,
                         "SELECT epoch, next_sequence FROM conversations WHERE "
                         "conversation = ?1");
  select->bind(1, conversation);
  std::optional<OutboundCounter> counter;
  if (select->executeStep()) {
    counter = OutboundCounter{select->getColumn(0).getString(),
                              select->getColumn(1).getInt64()};
  }
  select->reset();
  Numbered numbered =
      NextOutbound(counter, counter.has_value() ? std::string() : RandomHex(8));
  ScopedStatement upsert(
      file_->statements,
      "INSERT INTO conversations (conversation, epoch, next_sequence) "
      "VALUES (?1, ?2, ?3) ON CONFLICT (conversation) DO UPDATE SET "
      "next_sequence = ?3");
  upsert->bind(1, conversation);
  upsert->bind(2, numbered.epoch);
  upsert->bind(3, numbered.sequence + 1);
  upsert->exec();
  return numbered;
}

void SqliteOutbox::WriteOursLocked(const std::string& conversation,
                                   const ChatMessage& message,
                                   const std::string& recipient,
                                   int64_t copies) {
  ScopedStatement row(
      file_->statements,
      "INSERT INTO messages (conversation, id, sender_key, ours, sender, "
      "recipient, text, sent_at_ms, written_ms, in_history, copies) VALUES "
      "(?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  row->bind(1, conversation);
  row->bind(2, message.id);
  row->bind(3, NameKey(message.from));
  row->bind(4, message.from);
  row->bind(5, recipient);
  row->bind(6, message.text);
  if (message.sent_at != absl::InfinitePast()) {
    row->bind(7, absl::ToUnixMillis(message.sent_at));
  }
  row->bind(8, absl::ToUnixMillis(file_->clock.Wall()));
  row->bind(9, file_->KeepsHistory() ? 1 : 0);
  row->bind(10, copies);
  row->exec();
  if (file_->KeepsHistory()) history_->CountRowLocked();
}

void SqliteOutbox::WriteDeliveryLocked(const std::string& conversation,
                                       const ChatMessage& copy) {
  ScopedStatement delivery(
      file_->statements,
      "INSERT INTO deliveries (id, recipient_key, conversation, "
      "sequence, body) VALUES (?1, ?2, ?3, ?4, ?5)");
  delivery->bind(1, copy.id);
  delivery->bind(2, NameKey(copy.to));
  delivery->bind(3, conversation);
  delivery->bind(4, copy.sequence);
  const std::string body = Serialize(copy);
  delivery->bind(5, body.data(), static_cast<int>(body.size()));
  delivery->exec();
}

void SqliteOutbox::Add(ChatMessage message, AddedCallback done) {
  auto added = std::make_shared<ChatMessage>(std::move(message));
  file_->batch->Post(
      [this, added](SQLite::Database&) {
        file_->db_mu.AssertHeld();
        const std::string conversation = ConversationOfSent(*added);
        Numbered numbered = NumberLocked(conversation);
        added->sequence_epoch = std::move(numbered.epoch);
        added->sequence = numbered.sequence;
        added->sequence_floor = added->sequence;
        // The message once, in the history; its delivery once per
        // recipient (one here; AddToGroup's have several).
        WriteOursLocked(conversation, *added, added->to, /*copies=*/0);
        WriteDeliveryLocked(conversation, *added);
        return absl::OkStatus();
      },
      [this, added, done = std::move(done)](const absl::Status& status) {
        if (!status.ok()) {
          done(status);
          return;
        }
        {
          absl::MutexLock lock(&mu_);
          const DeliveryKey key(ConversationOfSent(*added), NameKey(added->to));
          outstanding_[key].insert(added->sequence);
        }
        done(*added);
      },
      history_->RecountOnFailure());
  history_->CountWritten(1);
}

namespace {

// Why AddToGroup cannot write `message` to `recipients`; OK when it can.
absl::Status CheckGroupMessage(const ChatMessage& message,
                               const std::vector<std::string>& recipients) {
  if (message.group_id.empty()) {
    return absl::InvalidArgumentError("a group message needs its group's id");
  }
  if (recipients.empty()) {
    return absl::InvalidArgumentError("a group message needs a recipient");
  }
  std::set<std::string> keys;
  for (const std::string& recipient : recipients) {
    if (!keys.insert(NameKey(recipient)).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a group message names recipient ", recipient, " twice"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

void SqliteOutbox::AddToGroup(ChatMessage message,
                              std::vector<std::string> recipients,
                              AddedCopiesCallback done) {
  absl::Status checked = CheckGroupMessage(message, recipients);
  if (!checked.ok()) {
    // Through the writer all the same, so `done` comes in call order.
    file_->batch->Post(
        [checked](SQLite::Database&) { return checked; },
        [done = std::move(done)](const absl::Status& status) { done(status); });
    return;
  }
  struct Group {
    ChatMessage message;
    std::vector<std::string> recipients;
    std::vector<ChatMessage> copies;
    // What the job entered in outstanding_ (at once, so a copy to the same
    // recipient later in the same batch has this one under its floor), to
    // take out again if the job fails.
    std::vector<DeliveryKey> entered;
  };
  auto group = std::make_shared<Group>();
  group->message = std::move(message);
  group->recipients = std::move(recipients);
  file_->batch->Post(
      [this, group](SQLite::Database&) {
        file_->db_mu.AssertHeld();
        ChatMessage& sent = group->message;
        const std::string conversation = ConversationOfSent(sent);
        Numbered numbered = NumberLocked(conversation);
        sent.sequence_epoch = std::move(numbered.epoch);
        sent.sequence = numbered.sequence;
        sent.sequence_floor = sent.sequence;
        // A change notice is no line of the conversation (the change is
        // told when it is made): no row of ours, only its deliveries.
        if (!IsGroupControl(sent)) {
          WriteOursLocked(conversation, sent, conversation,
                          static_cast<int64_t>(group->recipients.size()));
        }
        if (file_->KeepsHistory() && !IsGroupControl(sent)) {
          // Each copy's state, which the history counts (SqliteHistory).
          ScopedStatement copy_state(
              file_->statements,
              "INSERT INTO copy_states (id, recipient_key, recipient) VALUES "
              "(?1, ?2, ?3)");
          for (const std::string& recipient : group->recipients) {
            copy_state->reset();
            copy_state->bind(1, sent.id);
            copy_state->bind(2, NameKey(recipient));
            copy_state->bind(3, recipient);
            copy_state->exec();
          }
        }
        for (const std::string& recipient : group->recipients) {
          ChatMessage copy = sent;
          copy.to = recipient;
          const DeliveryKey key(conversation, NameKey(recipient));
          {
            absl::MutexLock lock(&mu_);
            std::set<int64_t>& outstanding = outstanding_[key];
            copy.sequence_floor = SequenceFloor(outstanding, copy.sequence);
            outstanding.insert(copy.sequence);
          }
          group->entered.push_back(key);
          WriteDeliveryLocked(conversation, copy);
          group->copies.push_back(std::move(copy));
        }
        return absl::OkStatus();
      },
      [group, done = std::move(done)](const absl::Status& status) {
        if (!status.ok()) {
          done(status);
          return;
        }
        done(std::move(group->copies));
      },
      [this, group,
       recount = history_->RecountOnFailure()](const absl::Status& status) {
        recount(status);
        absl::MutexLock lock(&mu_);
        for (const DeliveryKey& key : group->entered) {
          auto it = outstanding_.find(key);
          if (it == outstanding_.end()) continue;
          it->second.erase(group->message.sequence);
          if (it->second.empty()) outstanding_.erase(it);
        }
        group->entered.clear();
        group->copies.clear();
      });
  history_->CountWritten(1);
}

int64_t SqliteOutbox::Floor(const ChatMessage& copy, int64_t fallback) {
  absl::MutexLock lock(&mu_);
  const DeliveryKey key(ConversationOfSent(copy), NameKey(copy.to));
  auto it = outstanding_.find(key);
  if (it == outstanding_.end()) return fallback;
  return SequenceFloor(it->second, fallback);
}

void SqliteOutbox::MarkStored(const std::string& id,
                              const std::string& recipient) {
  file_->batch->PostLazily(
      [this, id, recipient_key = NameKey(recipient)](SQLite::Database&) {
        file_->db_mu.AssertHeld();
        ScopedStatement update(file_->statements,
                               "UPDATE deliveries SET stored = 1 WHERE id = ?1 "
                               "AND recipient_key = ?2");
        update->bind(1, id);
        update->bind(2, recipient_key);
        update->exec();
        return absl::OkStatus();
      });
}

void SqliteOutbox::Remove(const std::string& id, const std::string& recipient) {
  auto removal = std::make_shared<Removal>();
  file_->batch->PostLazily(
      [this, id, recipient_key = NameKey(recipient),
       removal](SQLite::Database&) {
        file_->db_mu.AssertHeld();
        DeleteLocked(id, recipient_key, *removal);
        return absl::OkStatus();
      },
      [this, removal](const absl::Status&) { Restore(*removal); });
}

absl::StatusOr<std::optional<OutboxEntry>> SqliteOutbox::Take(
    const std::string& id, const std::string& recipient) {
  std::optional<OutboxEntry> taken;
  Removal removal;
  CHAT_RETURN_IF_ERROR(file_->batch->Run(
      [&](SQLite::Database&) {
        file_->db_mu.AssertHeld();
        ScopedStatement select(file_->statements,
                               "SELECT body, stored FROM deliveries WHERE id = "
                               "?1 AND recipient_key = ?2");
        select->bind(1, id);
        select->bind(2, NameKey(recipient));
        if (!select->executeStep()) return absl::OkStatus();
        taken.emplace();
        taken->message = Parse(select->getColumn(0));
        taken->stored = select->getColumn(1).getInt() != 0;
        select->reset();
        DeleteLocked(id, NameKey(recipient), removal);
        return absl::OkStatus();
      },
      [&](const absl::Status&) { Restore(removal); }));
  return taken;
}

absl::StatusOr<std::vector<OutboxEntry>> SqliteOutbox::Entries() {
  absl::MutexLock lock(&file_->db_mu);
  std::vector<OutboxEntry> entries;
  try {
    ScopedStatement select(file_->statements,
                           "SELECT body, stored FROM deliveries ORDER BY "
                           "recipient_key, conversation, sequence");
    while (select->executeStep()) {
      OutboxEntry entry;
      entry.message = Parse(select->getColumn(0));
      entry.stored = select->getColumn(1).getInt() != 0;
      entries.push_back(std::move(entry));
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the outbox: ", e.what()));
  }
  return entries;
}

void SqliteOutbox::DeleteLocked(const std::string& id,
                                const std::string& recipient_key,
                                Removal& removal) {
  ScopedStatement remove(
      file_->statements,
      "DELETE FROM deliveries WHERE id = ?1 AND recipient_key = ?2 "
      "RETURNING conversation, recipient_key, sequence");
  remove->bind(1, id);
  remove->bind(2, recipient_key);
  std::vector<std::pair<DeliveryKey, int64_t>> deleted;
  // Stepped to the end, so the delete completes.
  while (remove->executeStep()) {
    DeliveryKey key(remove->getColumn(0).getString(),
                    remove->getColumn(1).getString());
    deleted.emplace_back(std::move(key), remove->getColumn(2).getInt64());
  }
  absl::MutexLock lock(&mu_);
  for (auto& [key, sequence] : deleted) {
    auto it = outstanding_.find(key);
    if (it == outstanding_.end()) continue;
    if (it->second.erase(sequence) > 0) {
      removal.removed.push_back({key, sequence});
    }
    if (it->second.empty()) outstanding_.erase(it);
  }
}

void SqliteOutbox::Restore(const Removal& removal) {
  absl::MutexLock lock(&mu_);
  for (const auto& [key, sequence] : removal.removed) {
    outstanding_[key].insert(sequence);
  }
}

}  // namespace chat::peer
