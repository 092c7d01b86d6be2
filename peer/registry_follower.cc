#include "peer/registry_follower.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
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
}

RegistryFollower::~RegistryFollower() { Stop(); }

std::unique_ptr<registry::WatchStream> RegistryFollower::Open() {
  // The snapshot goes straight into the online set, marked as this
  // stream's, rather than into a second map to swap in: with a large
  // registry that second copy was most of the peer's memory. After a
  // reconnect, only the differences are collected, to report them.
  online_->BeginSnapshot();
  synced_ = false;
  return registry_->Watch("");
}

bool RegistryFollower::Handle(const registry::WatchEvent& event) {
  if (!event.entry.name.empty() && NameKey(event.entry.name) == own_key_) {
    return false;  // Our own comings and goings are not news.
  }
  if (event.type == EventType::kPut && options_.on_listed) {
    options_.on_listed(event.entry);
  }
  if (synced_) {
    Apply(event);
  } else if (event.type == EventType::kPut) {
    if (online_->Put(event.entry) && !first_sync_) {
      arrived_.insert(NameKey(event.entry.name));
    }
  } else if (event.type == EventType::kSynced) {
    synced_ = true;
    Synced();
    return true;
  }
  return false;
}

void RegistryFollower::Lost(const absl::Status& status) {
  if (!reported_loss_) {
    Emit(InfoEvent(absl::StrCat("lost the registry watch (", status.message(),
                                "); reconnecting")));
    reported_loss_ = true;
  }
}

void RegistryFollower::Synced() {
  if (reported_loss_) {
    Emit(InfoEvent("following the registry again"));
    reported_loss_ = false;
  }
  // Whoever the snapshot did not list left while we were not watching.
  std::vector<Entry> gone = online_->EndSnapshot();
  if (first_sync_) {
    // Say who is here already; later arrivals come one by one.
    PeerEvent here = MakeEvent(EventKind::kPeers);
    here.peers = online_->Entries();
    Emit(here);
    first_sync_ = false;
  } else {
    std::vector<PeerEvent> changes;
    for (const Entry& entry : gone) {
      changes.push_back(
          MakeEvent(EventKind::kOffline, entry.name, entry.address, "left"));
    }
    std::vector<std::string> arrived;
    for (const std::string& key : arrived_) {
      std::optional<Entry> online = online_->Find(key);
      if (!online.has_value()) continue;
      changes.push_back(
          MakeEvent(EventKind::kOnline, online->name, online->address, ""));
      arrived.push_back(online->name);
    }
    for (const PeerEvent& change : changes) {
      options_.on_change(change.name);
      Emit(change);
    }
    for (const std::string& name : arrived) options_.on_arrival(name);
  }
  arrived_ = {};
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
  options_.on_change(event.entry.name);
  Emit(change);
  if (event.type == EventType::kPut) options_.on_arrival(event.entry.name);
}

}  // namespace chat::peer
