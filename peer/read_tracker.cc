#include "peer/read_tracker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "peer/group_text.h"
#include "peer/inbox_rules.h"
#include "peer/sealing.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

using registry::NameKey;

// Ids noted for read receipts that came before their kDelivered; a forged
// flood of unknown ids fills no more than this.
constexpr size_t kEarlyKept = 1024;
// Ours reported read, remembered to drop a late kDelivered.
constexpr size_t kReadKept = 4096;
// When nothing is owed the loop sleeps until MarkRead() wakes it.
constexpr Millis kIdle{3600 * 1000};

// The conversation a shown note belongs to: the group's it came in, else
// its sender's. Names never start with '#', so the two never meet.
std::string ShownIn(const ReadNote& note) {
  return note.group_id.empty() ? NameKey(note.peer)
                               : GroupConversation(note.group_id);
}

}  // namespace

ReadTracker::ReadTracker(DeliveryListener* next, ReadNoteStore* note_store,
                         Outbox* outbox, std::vector<ReadNote> notes,
                         const Clock& clock, Options options)
    : next_(next),
      store_(note_store),
      outbox_(outbox),
      clock_(clock),
      options_(std::move(options)) {
  {
    absl::MutexLock lock(&mu_);
    for (ReadNote& note : notes) {
      switch (note.state) {
        case ReadNote::State::kAwaiting: {
          Awaiting awaiting;
          awaiting.peer = note.peer;
          awaiting.message.id = note.id;
          awaiting.message.from = options_.own_name;
          awaiting.message.to = note.peer;
          awaiting.message.group_id = note.group_id;
          awaiting_[{note.id, NameKey(note.peer)}] = std::move(awaiting);
          break;
        }
        case ReadNote::State::kShown:
          AddShownLocked(std::move(note));
          break;
        case ReadNote::State::kOwed:
          owed_[NameKey(note.peer)].push_back(std::move(note));
          break;
      }
    }
  }
  loop_.emplace(clock_, Millis(0), [this] { return SendOwed(); });
}

ReadTracker::~ReadTracker() { Stop(); }

void ReadTracker::Stop() {
  if (loop_.has_value()) loop_->Stop();
}

int64_t ReadTracker::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

int64_t ReadTracker::sent() const {
  absl::MutexLock lock(&mu_);
  return sent_;
}

void ReadTracker::OnSendState(const PeerEvent& event) {
  // A group's change notice or leave request is never shown, so never
  // read: none is awaited.
  if (event.status != SendStatus::kDelivered || IsGroupControl(event.message)) {
    next_->OnSendState(event);
    return;
  }
  // A group copy's member is in `to`, as for a direct message.
  const std::string peer =
      event.message.to.empty() ? event.name : event.message.to;
  const CopyKey key{event.message.id, NameKey(peer)};
  absl::MutexLock lock(&mu_);
  // Under the lock: a read receipt taken meanwhile waits for this one, so
  // kRead never comes before kDelivered.
  if (read_.contains(key)) return;  // Reported delivered and read already.
  next_->OnSendState(event);
  if (!options_.enabled || key.first.empty()) return;
  Awaiting awaiting;
  awaiting.peer = peer;
  awaiting.message.id = key.first;
  awaiting.message.from = event.message.from;
  awaiting.message.to = peer;
  awaiting.message.sent_at = event.message.sent_at;
  awaiting.message.group_id = event.message.group_id;
  if (early_.erase(key) > 0) {
    --dropped_;  // Counted as unknown when it came; it was not.
    ReportReadLocked(awaiting);
    return;
  }
  ReadNote note;
  note.peer = peer;
  note.id = key.first;
  note.group_id = event.message.group_id;
  note.state = ReadNote::State::kAwaiting;
  note.at_unix_ms = absl::ToUnixMillis(clock_.Wall());
  store_->SaveReadNotes({note});
  awaiting_[key] = std::move(awaiting);
  TrimAwaitingLocked();
}

void ReadTracker::TrimAwaitingLocked() {
  if (awaiting_.size() <= options_.max_notes) return;
  // Forget the oldest tenth (ids are UUIDv7: they sort by sending time;
  // a group message's copies go together).
  std::vector<CopyKey> keys;
  keys.reserve(awaiting_.size());
  for (const auto& [key, awaiting] : awaiting_) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  const size_t drop = awaiting_.size() - options_.max_notes * 9 / 10;
  std::vector<ReadNote> forgotten;
  for (size_t i = 0; i < drop && i < keys.size(); ++i) {
    auto it = awaiting_.find(keys[i]);
    ReadNote note;
    note.peer = it->second.peer;
    note.id = keys[i].first;
    forgotten.push_back(std::move(note));
    awaiting_.erase(it);
  }
  store_->ForgetReadNotes(forgotten);
}

void ReadTracker::ReportReadLocked(const Awaiting& awaiting) {
  if (read_.size() >= kReadKept) read_.clear();
  read_.insert({awaiting.message.id, NameKey(awaiting.peer)});
  PeerEvent event = MakeEvent(EventKind::kSendResult, awaiting.peer);
  event.status = SendStatus::kRead;
  event.message = awaiting.message;
  next_->OnSendState(event);
  ReadNote note;
  note.peer = awaiting.peer;
  note.id = awaiting.message.id;
  store_->ForgetReadNotes({note});
}

std::optional<ReadNote> ReadTracker::Shown(const ChatMessage& message) {
  if (!options_.enabled || message.unverified || message.id.empty() ||
      IsGroupControl(message) || !registry::ValidateName(message.from).ok()) {
    // Nobody to tell, nothing that proves who wrote it, or nothing the
    // user sees (a group's change notice).
    return std::nullopt;
  }
  ReadNote note;
  note.peer = message.from;
  note.id = message.id;
  note.group_id = message.group_id;
  note.state = ReadNote::State::kShown;
  note.at_unix_ms = absl::ToUnixMillis(clock_.Wall());
  absl::MutexLock lock(&mu_);
  AddShownLocked(note);
  return note;
}

void ReadTracker::AddShownLocked(ReadNote note) {
  std::string key = ShownIn(note);
  const uint64_t order = next_shown_order_++;
  shown_order_.emplace(order, key);
  shown_[key].push_back({order, std::move(note)});
  while (shown_order_.size() > options_.max_notes) {
    // Never read, and too many: the oldest of all go unreported, whoever
    // sent them. From memory only: their marks in the store are bounded by
    // the inbox's own trim of shown ids, and one a restart brings back is
    // reported read when its conversation is, which is true. Forgetting
    // them in the file too cost a write per message shown once this many
    // were unread.
    auto oldest = shown_order_.begin();
    auto sender = shown_.find(oldest->second);
    // Each conversation's notes are in order, so the oldest of all is the
    // first of its conversation's.
    sender->second.pop_front();
    if (sender->second.empty()) shown_.erase(sender);
    shown_order_.erase(oldest);
  }
}

void ReadTracker::MarkRead(const std::string& name) {
  // A group's target ("#team") is no name: it must not read a group's
  // conversation.
  if (name.empty() || IsGroupTarget(name)) return;
  MarkConversationRead(NameKey(name));
}

void ReadTracker::MarkGroupRead(const std::string& group_id) {
  if (group_id.empty()) return;
  MarkConversationRead(GroupConversation(group_id));
}

void ReadTracker::MarkConversationRead(const std::string& conversation) {
  if (!options_.enabled) return;
  {
    absl::MutexLock lock(&mu_);
    auto it = shown_.find(conversation);
    if (it == shown_.end()) return;
    std::vector<ReadNote> read;
    read.reserve(it->second.size());
    const int64_t now = absl::ToUnixMillis(clock_.Wall());
    for (ShownNote& shown : it->second) {
      shown_order_.erase({shown.order, it->first});
      shown.note.state = ReadNote::State::kOwed;
      shown.note.at_unix_ms = now;
      read.push_back(std::move(shown.note));
    }
    shown_.erase(it);
    store_->SaveReadNotes(read);
    // Owed to each message's sender: in a group, several.
    for (ReadNote& note : read) {
      owed_[NameKey(note.peer)].push_back(std::move(note));
    }
  }
  if (loop_.has_value()) loop_->Wake();
}

std::optional<Millis> ReadTracker::SendOwed() {
  absl::flat_hash_map<std::string, std::vector<ReadNote>> owed;
  {
    absl::MutexLock lock(&mu_);
    owed = owed_;
  }
  bool left = false;
  for (const auto& [key, notes] : owed) {
    if (loop_->stopping()) return std::nullopt;
    for (size_t begin = 0; begin < notes.size(); begin += kMaxReadIds) {
      const size_t end = std::min(notes.size(), begin + kMaxReadIds);
      std::vector<ReadNote> batch(notes.begin() + begin, notes.begin() + end);
      std::vector<std::string> ids;
      for (const ReadNote& note : batch) ids.push_back(note.id);
      const std::string& to = batch.front().peer;
      absl::StatusOr<std::optional<::ReadReceipts>> sealed =
          options_.envelope->SealReadReceipts(to, ids);
      absl::Status sent;
      if (!sealed.ok()) {
        sent = sealed.status();  // Its key is not known now: later.
      } else if (sealed->has_value()) {
        sent = options_.send_direct(to, **sealed);
        if (!sent.ok()) {
          registry::MailItem item;
          item.kind = registry::MailItem::Kind::kReadReceipt;
          // The same batch again (a lost answer) is stored once.
          item.id = absl::StrCat("read:", ids.back());
          item.sender = options_.own_name;
          item.recipient = to;
          (*sealed)->SerializeToString(&item.payload);
          sent = options_.deposit(item);
        }
      }  // No key (it had one when it wrote): nobody to seal to; let go.
      if (!sent.ok()) {
        left = true;
        continue;
      }
      absl::MutexLock lock(&mu_);
      std::vector<ReadNote>& still = owed_[key];
      absl::flat_hash_set<std::string> done(ids.begin(), ids.end());
      still.erase(std::remove_if(still.begin(), still.end(),
                                 [&done](const ReadNote& note) {
                                   return done.contains(note.id);
                                 }),
                  still.end());
      if (still.empty()) owed_.erase(key);
      store_->ForgetReadNotes(batch);
      sent_ += static_cast<int64_t>(batch.size());
    }
  }
  return left ? options_.retry : kIdle;
}

absl::Status ReadTracker::TakeReadReceipts(const ::ReadReceipts& receipts,
                                           bool may_wait) {
  if (!options_.enabled) return absl::OkStatus();  // Not shown; let go.
  absl::StatusOr<std::vector<std::string>> ids =
      options_.envelope->OpenReadReceipts(receipts, may_wait);
  if (!ids.ok()) {
    if (ids.status().code() != absl::StatusCode::kUnavailable) {
      absl::MutexLock lock(&mu_);
      ++dropped_;  // The envelope logged it.
    }
    return ids.status();
  }
  const std::string& reader = receipts.sender();
  const std::string reader_key = NameKey(reader);
  std::vector<std::string> unknown;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& id : *ids) {
      const CopyKey key{id, reader_key};
      auto it = awaiting_.find(key);
      if (it != awaiting_.end()) {
        ReportReadLocked(it->second);
        awaiting_.erase(it);
      } else if (!read_.contains(key)) {
        unknown.push_back(id);
      }
    }
  }
  // Not delivered as far as we know: still stored in the reader's mailbox
  // (it read the copy it got directly?) or on its way. Read implies
  // delivered: take it (a group message's copy to the reader alone) from
  // the outbox and say both. Outside the lock: the store's callbacks emit
  // events.
  std::vector<std::pair<std::string, std::optional<OutboxEntry>>> taken;
  for (const std::string& id : unknown) {
    absl::StatusOr<std::optional<OutboxEntry>> entry =
        outbox_->Take(id, reader);
    taken.emplace_back(id, entry.ok() ? *std::move(entry) : std::nullopt);
  }
  int64_t strangers = 0;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, entry] : taken) {
      if (entry.has_value()) {
        PeerEvent delivered = MakeEvent(EventKind::kSendResult, reader);
        delivered.status = SendStatus::kDelivered;
        delivered.message = entry->message;
        delivered.text = "it was read";
        next_->OnSendState(delivered);
        Awaiting awaiting;
        awaiting.peer = entry->message.to;
        awaiting.message = entry->message;
        awaiting.message.text.clear();
        ReportReadLocked(awaiting);
        continue;
      }
      const CopyKey key{id, reader_key};
      auto it = awaiting_.find(key);  // Its kDelivered came meanwhile.
      if (it != awaiting_.end()) {
        ReportReadLocked(it->second);
        awaiting_.erase(it);
        continue;
      }
      // Unknown: never ours to this reader (dropped), or its kDelivered is
      // still on its way; kept a little in case.
      if (early_.size() >= kEarlyKept) early_.clear();
      early_.insert(key);
      ++dropped_;
      ++strangers;
    }
  }
  if (strangers > 0) {
    LogDropped(absl::StrCat(
        "dropped ", strangers, " read receipt", strangers == 1 ? "" : "s",
        " from ", PrintableText(reader), " for messages we did not send it"));
  }
  return absl::OkStatus();
}

void ReadTracker::LogDropped(const std::string& why) {
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Wall();
    if (now - last_logged_ < absl::Minutes(1)) return;
    last_logged_ = now;
  }
  LogLine("chat-peer", absl::StrCat(why, " (told at most once a minute)"));
}

}  // namespace chat::peer
