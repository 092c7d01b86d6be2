#include "peer/registry_follower.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "peer/plain_words.h"
#include "registry/names.h"

namespace chat::peer {

using registry::Entry;
using registry::EventReason;
using registry::EventType;
using registry::NameKey;

namespace {

// Gives the memory of a large watch snapshot back to the system once it is
// in (see the allocator note in peer/main.cc).
void ReleaseFreedMemory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace

RegistryFollower::RegistryFollower(registry::RegistryClient* registry,
                                   OnlineSet* online, EventSink* events,
                                   const Clock& clock, Options options)
    : registry_(registry),
      online_(online),
      events_(events),
      options_(std::move(options)),
      own_key_(NameKey(options_.own_name)) {
  Stream::Callbacks callbacks;
  callbacks.open = [this] { return Open(); };
  callbacks.on_item = [this](const registry::WatchEvent& event) {
    return Handle(event);
  };
  callbacks.on_end = [this](const absl::Status& status) { Lost(status); };
  stream_.emplace(clock, std::move(callbacks));
  options_.contacts->Listen(this);
}

RegistryFollower::~RegistryFollower() { Stop(); }

void RegistryFollower::Stop() {
  options_.contacts->Listen(nullptr);
  stream_->Stop();
}

std::unique_ptr<registry::WatchStream> RegistryFollower::Open() {
  synced_ = false;
  resume_.Opened();
  std::vector<std::string> names = options_.contacts->Followed();
  watching_.clear();
  for (const std::string& name : names) watching_.insert(NameKey(name));
  // Only the same set of names may resume: a name new to it would never
  // be listed.
  resuming_ = !first_sync_ && !names.empty() && resume_.revision() > 0 &&
              watching_ == tracked_;
  if (resuming_) return registry_->WatchNames(names, resume_.revision());
  UndoReplay();
  // The snapshot goes straight into the online set, marked as this
  // stream's, rather than into a second map to swap in. After a reconnect,
  // only the differences are collected, to report them.
  online_->BeginSnapshot();
  if (names.empty()) {
    // Nobody to watch: an empty set of names would watch everyone. In sync
    // at once; the next Open() comes when someone is followed.
    synced_ = true;
    Synced(online_->EndSnapshot());
    return nullptr;
  }
  return registry_->WatchNames(names);
}

bool RegistryFollower::Handle(const registry::WatchEvent& event) {
  resume_.Saw(event);
  if (resuming_ && !synced_ &&
      (event.reason == EventReason::kInitial ||
       (event.type == EventType::kSynced && !event.resumed))) {
    // The registry could not resume (the revision is too old, or of
    // another store): this is a snapshot after all.
    resuming_ = false;
    UndoReplay();
    online_->BeginSnapshot();
  }
  if (!event.entry.name.empty() && NameKey(event.entry.name) == own_key_) {
    return false;  // Our own comings and goings are not news.
  }
  if (event.type == EventType::kPut && options_.listings != nullptr &&
      Follows(event.entry.name)) {
    options_.listings->OnListed(event.entry);
  }
  if (synced_) {
    Apply(event);
  } else if (resuming_ && event.type != EventType::kSynced) {
    Replay(event);
  } else if (event.type == EventType::kPut) {
    if (online_->Put(event.entry) && !first_sync_) {
      arrived_.insert(NameKey(event.entry.name));
    }
  } else if (event.type == EventType::kSynced) {
    synced_ = true;
    if (resuming_) {
      std::vector<Entry> gone;
      for (const auto& [key, before] : replay_before_) {
        std::optional<Entry> now = online_->Find(key);
        if (before.has_value() && !now.has_value()) gone.push_back(*before);
        if (now.has_value() &&
            (!before.has_value() || before->address != now->address)) {
          arrived_.insert(key);
        }
      }
      replay_before_.clear();
      Synced(gone);
    } else {
      Synced(online_->EndSnapshot());
    }
    return true;
  }
  return false;
}

void RegistryFollower::UndoReplay() {
  for (const auto& [key, before] : replay_before_) {
    if (before.has_value()) {
      online_->Put(*before);
    } else if (std::optional<Entry> now = online_->Find(key)) {
      online_->Remove(now->name);
    }
  }
  replay_before_.clear();
}

void RegistryFollower::Replay(const registry::WatchEvent& event) {
  if (event.type != EventType::kPut && event.type != EventType::kDelete) {
    return;
  }
  const std::string key = NameKey(event.entry.name);
  if (!replay_before_.contains(key)) {
    replay_before_.emplace(key, online_->Find(key));
  }
  if (event.type == EventType::kPut) {
    online_->Put(event.entry);
  } else {
    online_->Remove(event.entry.name);
  }
}

void RegistryFollower::Lost(const absl::Status& status) {
  // A registry that shuts down cancels its streams; one killed drops them.
  if (options_.quiet_when_unreachable &&
      (registry::IsUnreachable(status) ||
       status.code() == absl::StatusCode::kCancelled)) {
    return;
  }
  if (!reported_loss_) {
    PeerEvent event = InfoEvent(
        absl::StrCat(RegistryFailureText(status, "follow who comes and goes"),
                     "; reconnecting"));
    event.detail = status.ToString();
    Emit(event);
    reported_loss_ = true;
  }
}

void RegistryFollower::Synced(const std::vector<Entry>& gone) {
  if (reported_loss_) {
    Emit(InfoEvent("following the registry again"));
    reported_loss_ = false;
  }
  if (first_sync_) {
    // How many are here, in one line, not one name each; later arrivals of
    // those followed come one by one.
    Summarize();
    first_sync_ = false;
  } else {
    std::vector<PeerEvent> changes;
    std::vector<std::string> arrived;
    for (const Entry& entry : gone) {
      options_.presence->OnMoved(entry.name);
      if (!IsNews(entry)) continue;
      changes.push_back(
          MakeEvent(EventKind::kOffline, entry.name, entry.address, "left"));
    }
    for (const std::string& key : arrived_) {
      std::optional<Entry> online = online_->Find(key);
      if (!online.has_value()) continue;
      options_.presence->OnMoved(online->name);
      arrived.push_back(online->name);
      // A name just followed was not watched before: not news.
      if (!tracked_.contains(key) || !IsNews(*online)) continue;
      changes.push_back(
          MakeEvent(EventKind::kOnline, online->name, online->address, ""));
    }
    // Presence first: whoever reads "online" on the screen finds the
    // messages waiting for that name already on their way.
    for (const std::string& name : arrived) options_.presence->OnArrived(name);
    for (const PeerEvent& change : changes) Emit(change);
  }
  arrived_ = {};
  tracked_ = watching_;
  ReleaseFreedMemory();  // The snapshot's messages are freed by now.
}

void RegistryFollower::Apply(const registry::WatchEvent& event) {
  PeerEvent change;
  change.name = event.entry.name;
  change.address = event.entry.address;
  if (event.type == EventType::kPut) {
    change.kind = EventKind::kOnline;
    online_->Put(event.entry);
  } else if (event.type == EventType::kDelete) {
    change.kind = EventKind::kOffline;
    change.text =
        event.reason == EventReason::kExpired ? "lease expired" : "left";
    online_->Remove(event.entry.name);
  } else {
    return;
  }
  options_.presence->OnMoved(event.entry.name);
  // Presence before the screen, as in Synced().
  if (event.type == EventType::kPut) {
    options_.presence->OnArrived(event.entry.name);
  }
  // Strangers (and programs that offer no chat) change the online set,
  // never the screen.
  if (IsNews(event.entry)) Emit(change);
}

void RegistryFollower::Summarize() {
  PeerEvent summary = MakeEvent(EventKind::kSummary);
  // One entry is enough: the count comes with every page of a List without
  // a prefix. It includes us (registered by now). Chat peers only, when the
  // registry filters by service; an older one counts every program
  // registered, and the summary says so.
  absl::StatusOr<registry::ListPage> page =
      registry_->List("", 1, "", registry::kChatService);
  if (page.ok() && page->total_size > 0) summary.count = page->total_size - 1;
  if (page.ok() && page->service != registry::kChatService) {
    summary.text = "registered (chat peers and other programs)";
  }
  for (Entry& entry : online_->Entries()) {
    if (IsNews(entry)) summary.peers.push_back(std::move(entry));
  }
  Emit(summary);
}

}  // namespace chat::peer
