// The running peer: sending, accepting and showing what arrives, the
// questions the parts ask about a recipient, history, keys and shutdown.
// Its start-up (Peer::Start) is peer_start.cc; its groups, peer_groups.cc.

#include "peer/peer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/ids.h"
#include "common/status.h"
#include "peer/group_text.h"
#include "peer/inbox_rules.h"
#include "peer/peer_internal.h"
#include "registry/names.h"

namespace chat::peer {

using peer_internal::HoldBackTick;
using peer_internal::kHistoryTrimEvery;
using registry::Entry;
using registry::NameKey;

Peer::Peer(PeerOptions options, EventSink* events, const Clock& clock)
    : options_(std::move(options)), events_(events), clock_(clock) {}

Peer::~Peer() { Shutdown(); }

absl::StatusOr<std::string> Peer::Send(const std::string& to,
                                       const std::string& text,
                                       bool to_partner) {
  if (IsGroupTarget(to)) return SendToGroup(to, text, to_partner);
  CHAT_RETURN_IF_ERROR(registry::ValidateName(to));
  CHAT_RETURN_IF_ERROR(ValidateMessageText(text));
  CHAT_RETURN_IF_ERROR(CheckRecipient(to));
  contacts_->Talked(to);  // Whom we write to we follow.
  ChatMessage message = NewMessage(text);
  message.to = to;
  std::string id = message.id;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return absl::FailedPreconditionError("the peer is shutting down");
    }
  }
  // Written to the outbox before the first attempt; many sends share one
  // commit. Callbacks come in call order, so the queue keeps that order.
  store_->outbox().Add(
      std::move(message),
      [this, to, to_partner](absl::StatusOr<ChatMessage> added) {
        PeerEvent event = MakeEvent(EventKind::kSendResult, to);
        event.to_partner = to_partner;
        if (!added.ok()) {
          event.status = SendStatus::kFailed;
          event.text = "could not write it to your outbox";
          event.detail = added.status().ToString();
          reads_->OnSendState(event);
          return;
        }
        event.status = SendStatus::kSent;
        event.message = *added;
        reads_->OnSendState(event);
        absl::MutexLock lock(&mu_);
        // Shutting down: it waits in the outbox for the next start.
        if (!stopping_) QueueLocked({*added}, to_partner);
      });
  return id;
}

ChatMessage Peer::NewMessage(const std::string& text) const {
  ChatMessage message;
  message.sent_at = clock_.Wall();
  message.id = NewUuidV7(message.sent_at);
  message.from = options_.name;
  message.text = text;
  message.lab_time = LabTime(message.sent_at);
  return message;
}

void Peer::QueueLocked(std::vector<ChatMessage> messages, bool to_partner) {
  if (messages.empty()) return;
  const std::string to = messages.front().to;
  std::unique_ptr<Conversation>& conversation = conversations_[NameKey(to)];
  if (conversation == nullptr) {
    Conversation::Options conversation_options;
    conversation_options.to = to;
    conversation_options.retry_min = options_.retry_min;
    conversation_options.retry_max = options_.retry_max;
    conversation = std::make_unique<Conversation>(
        std::move(conversation_options), transport_.get(), &store_->outbox(),
        static_cast<RecipientDirectory*>(this), reads_.get(), events_, clock_);
  }
  conversation->Enqueue(std::move(messages), to_partner);
}

size_t Peer::Window(const std::string& to) {
  // A static entry is how a lab peer (or another program that knows no
  // sequence numbers) gets a name: it shows messages as they arrive, so
  // they must arrive in order, one at a time.
  // A name the watch has not listed (yet) may be one too: one at a time
  // until it is known.
  std::optional<Entry> online = online_.Find(to);
  return online.has_value() && !online->is_static ? kSendWindow : 1;
}

bool Peer::IsStatic(const std::string& to) {
  // A lab peer reads no mailbox: its messages wait in the outbox.
  // Asked only when a message could not be delivered; a name the watch
  // has not listed yet (just followed) is asked of the registry.
  std::optional<Entry> online = online_.Find(to);
  if (online.has_value()) return online->is_static;
  absl::StatusOr<Entry> resolved = registry_->Resolve(to);
  return resolved.ok() && resolved->is_static;
}

void Peer::OnMoved(const std::string& name) { transport_->Forget(name); }

void Peer::RegistrySwitched(const std::string& from, const std::string& to,
                            const absl::Status& why) {
  PeerEvent event = InfoEvent(absl::StrCat(
      "the registry at ", from, " is unreachable; using the one at ", to));
  event.detail = why.ToString();
  Emit(event);
}

void Peer::RegistryReachable(bool reachable, const absl::Status& status) {
  // The one source of "the registry is away / back": the keeper asks it
  // on its own schedule, whether or not anyone sends or is followed, so
  // the user hears it once each way, not once per message or stream.
  PeerEvent event =
      InfoEvent(reachable ? kRegistryBackNotice : kRegistryAwayNotice);
  if (!status.ok()) event.detail = status.ToString();
  Emit(event);
  // What waited for a resolve or the mailbox can go now.
  if (reachable) NudgeAll();
}

std::optional<Millis> Peer::HoldBackRound() {
  TrimHistoryWhenDue();  // The same loop keeps the history's age.
  GrantLeaveRequests();  // And takes out those who asked to leave.
  strangers_->Tick();    // And tells what strangers were refused.
  store_->inbox().ReleaseOverdue(absl::FromChrono(options_.hold_back),
                                 [this](absl::StatusOr<Received> received) {
                                   if (!received.ok()) return;
                                   Release(received->ready, /*repeated=*/false);
                                 });
  return HoldBackTick(options_.hold_back);
}

namespace {

absl::Status NotChatPeer(const Entry& entry) {
  return absl::FailedPreconditionError(
      absl::StrCat(entry.name, " is not a chat peer (it offers: ",
                   absl::StrJoin(entry.services, ", "), ")"));
}

}  // namespace

absl::Status Peer::CheckRecipient(const std::string& to) {
  if (std::optional<Entry> online = online_.Find(to); online.has_value()) {
    return registry::OffersChat(online->services) ? absl::OkStatus()
                                                  : NotChatPeer(*online);
  }
  if (contacts_->Follows(to) || keys_->IsPinned(to)) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    if (conversations_.contains(NameKey(to))) return absl::OkStatus();
  }
  // A name new to us: rare (a first message, or a typo), so it may cost a
  // call or two; the registry away is no reason to refuse it.
  return AskRegistryAbout(to);
}

absl::Status Peer::RecipientExists(const std::string& to) {
  if (keys_->IsPinned(to)) return absl::OkStatus();  // Bound to a key.
  absl::Status known = AskRegistryAbout(to);
  return known.code() == absl::StatusCode::kNotFound ? known : absl::OkStatus();
}

absl::Status Peer::AskRegistryAbout(const std::string& to) {
  absl::StatusOr<Entry> entry = registry_->Resolve(to);
  if (entry.ok()) {
    return registry::OffersChat(entry->services) ? absl::OkStatus()
                                                 : NotChatPeer(*entry);
  }
  if (entry.status().code() != absl::StatusCode::kNotFound) {
    return absl::OkStatus();
  }
  absl::StatusOr<registry::Binding> binding = registry_->GetBinding(to);
  if (binding.status().code() != absl::StatusCode::kNotFound) {
    return absl::OkStatus();  // Bound (offline, reserved), or unknown now.
  }
  return absl::NotFoundError(
      absl::StrCat("nobody named ", to,
                   " is registered; check the name (/peers lists who is "
                   "online)"));
}

void Peer::Nudge(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = conversations_.find(NameKey(name));
  if (it != conversations_.end()) it->second->Nudge();
}

void Peer::NudgeAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [key, conversation] : conversations_) conversation->Nudge();
}

absl::StatusOr<registry::ListPage> Peer::ListPeers(
    const std::string& page_token, int page_size) {
  return registry_->List("", std::max(page_size, 1), page_token,
                         registry::kChatService);
}

absl::Status Peer::Follow(const std::string& name) {
  return contacts_->Follow(name);
}

bool Peer::Unfollow(const std::string& name) {
  return contacts_->Unfollow(name);
}

std::vector<std::string> Peer::Followed() { return contacts_->Followed(); }

std::vector<Entry> Peer::FollowedOnline() {
  std::vector<Entry> online;
  for (const std::string& name : contacts_->Followed()) {
    std::optional<Entry> entry = online_.Find(name);
    if (entry.has_value()) online.push_back(*std::move(entry));
  }
  return online;
}

std::vector<std::string> Peer::CompletionNames() {
  std::vector<std::string> names;
  for (std::string& name : contacts_->Followed()) {
    std::optional<Entry> entry = online_.Find(name);
    if (entry.has_value() && !registry::OffersChat(entry->services)) continue;
    names.push_back(std::move(name));
  }
  return names;
}

void Peer::TrimHistoryWhenDue() {
  if (clock_.Wall() < next_history_trim_) return;
  next_history_trim_ = clock_.Wall() + kHistoryTrimEvery;
  store_->history().Trim();
}

absl::StatusOr<std::string> Peer::ConversationTarget(const std::string& name) {
  if (IsGroupTarget(name)) {
    CHAT_ASSIGN_OR_RETURN(GroupTarget group, FindGroup(name));
    return GroupConversation(group.group_id);
  }
  CHAT_RETURN_IF_ERROR(registry::ValidateName(name));
  return name;
}

absl::StatusOr<HistoryPage> Peer::History(const std::string& name, int limit) {
  CHAT_ASSIGN_OR_RETURN(std::string target, ConversationTarget(name));
  return store_->history().Page(target, limit);
}

absl::StatusOr<int64_t> Peer::ForgetHistory(const std::string& name) {
  CHAT_ASSIGN_OR_RETURN(std::string target, ConversationTarget(name));
  return store_->history().Forget(target);
}

KeyView Peer::Verify(const std::string& name) { return keys_->Verify(name); }

absl::StatusOr<KeyView> Peer::Trust(const std::string& name) {
  absl::StatusOr<KeyView> trusted = keys_->Trust(name);
  if (trusted.ok()) {
    // What waited for the new key goes now; what came from it while it was
    // not trusted waits in our mailbox, unacknowledged: read it again.
    Nudge(name);
    if (mail_ != nullptr) mail_->Reread();
  }
  return trusted;
}

void Peer::MarkRead(const std::string& name) {
  if (reads_ == nullptr) return;
  if (!IsGroupTarget(name)) {
    reads_->MarkRead(name);
    return;
  }
  // A group the user no longer has (or names ambiguously) has nothing
  // shown to read.
  absl::StatusOr<GroupTarget> group = FindGroup(name);
  if (group.ok()) reads_->MarkGroupRead(group->group_id);
}

bool Peer::IsOnline(const std::string& name) {
  return online_.Find(name).has_value();
}

bool Peer::WaitUntilOnline(const std::string& name) {
  // Only those followed are watched; a bad name or a full set is never
  // online to us.
  if (!contacts_->Follow(name).ok()) return online_.Find(name).has_value();
  return online_.WaitUntilOnline(name);
}

void Peer::Interrupt() { online_.StopWaiting(); }

void Peer::Shutdown() {
  absl::flat_hash_map<std::string, std::unique_ptr<Conversation>> draining;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    draining = std::move(conversations_);
  }
  online_.StopWaiting();
  if (follower_ != nullptr) follower_->Stop();
  if (mail_ != nullptr) mail_->Stop();
  draining.clear();  // Each conversation tries what it holds, then ends.
  if (reads_ != nullptr) reads_->Stop();  // What is owed stays noted.
  if (hold_back_.has_value()) hold_back_->Stop();
  if (keeper_ != nullptr) keeper_->Stop();  // Unregisters.
  // Arrivals waiting for a group state are answered before the server
  // waits for every answer.
  if (direct_inbox_ != nullptr) direct_inbox_->Stop();
  if (server_ != nullptr) server_->Stop(Millis(1000));
}

void Peer::Accept(const ChatMessage& message, AcceptCallback done) {
  // A stranger's plain message is refused before it is kept, so the sender
  // hears it was not taken: nothing acknowledged is lost.
  if (message.unverified && !contacts_->Knows(message.from)) {
    if (absl::Status admitted =
            strangers_->Admit(message.from, message.source_host);
        !admitted.ok()) {
      done(admitted);
      return;
    }
  }
  // Kept durably first, then shown, then acknowledged: a sender that hears
  // OK may forget the message. A retry or copy is acknowledged, shown once.
  direct_inbox_->Receive(message, [this, done = std::move(done)](
                                      absl::StatusOr<Received> received) {
    if (!received.ok()) {
      done(absl::UnavailableError(absl::StrCat(
          "the recipient cannot keep it now: ", received.status().message())));
      return;
    }
    Release(received->ready, /*repeated=*/false);
    done(absl::OkStatus());
  });
}

void Peer::Release(const std::vector<ChatMessage>& messages, bool repeated) {
  if (messages.empty()) return;
  std::vector<ReadNote> unread;
  for (const ChatMessage& message : messages) {
    // Whom we hear from we follow, unless nothing proves who it is and we
    // never talked with it: a stranger's name (or thousands of them) must
    // not push out those the user follows.
    if (!message.unverified || contacts_->Knows(message.from)) {
      contacts_->Talked(message.from);
    }
    Show(message, repeated);
    // A group's message is read in the group's conversation; its receipt
    // goes to its sender alone.
    if (std::optional<ReadNote> note = reads_->Shown(message)) {
      unread.push_back(*std::move(note));
    }
  }
  // After they were shown: a run killed before this shows them again
  // (Unshown, `repeated`), never loses them.
  store_->inbox().MarkShown(messages, unread);
}

void Peer::Show(const ChatMessage& message, bool repeated) {
  // A change notice is shown as the change it announced, when the gate
  // verified it (OnGroupAdvanced); its own text is for programs without
  // groups.
  if (message.group_change) return;
  // A request to leave is granted, not shown.
  if (message.group_leave) {
    OnLeaveRequest(message);
    return;
  }
  PeerEvent event = MakeEvent(EventKind::kMessage, message.from);
  if (message.unverified) {
    std::vector<std::string> known = contacts_->Followed();
    std::vector<std::string> pinned = keys_->PinnedNames();
    known.insert(known.end(), pinned.begin(), pinned.end());
    known.push_back(options_.name);
    event.looks_like = lookalikes_.Imitated(message.from, known);
  }
  event.message = message;
  event.repeated = repeated;
  Emit(event);
}

}  // namespace chat::peer
