// Follows the registry's watch for a peer: keeps its OnlineSet up to date,
// reports who of those it follows comes and goes, and reconnects (with
// backoff) when the watch is lost, reporting only what changed meanwhile.

#ifndef CHAT_PEER_REGISTRY_FOLLOWER_H_
#define CHAT_PEER_REGISTRY_FOLLOWER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "common/clock.h"
#include "peer/contacts.h"
#include "peer/events.h"
#include "peer/listeners.h"
#include "peer/online_set.h"
#include "peer/reconnecting_stream.h"
#include "registry/client/registry_client.h"
#include "registry/names.h"

namespace chat::peer {

// Watches the names followed (Contacts) in the registry on its own thread:
// a Watch for that set of names (RegistryClient::WatchNames), opened again
// whenever the set changes; nobody else's entry ever reaches the peer.
//
// Only the names followed are news: once the first snapshot is
// in, one kSummary event says how many are online (a List of one entry
// gives the count) and which of those followed are; after that each change
// of a followed name is a kOnline or kOffline event. Nobody else reaches
// the screen, however many register. When the watch breaks, an info event
// says "lost the registry watch (<why>); reconnecting" (once), the follower
// tries again after 200 ms, doubling to 5 s, and once a new snapshot is in
// says "following the registry again" and reports only the differences.
// A reconnect that follows the same names resumes from the last revision
// seen (registry::WatchResumePoint): a registry that still holds the
// changes since sends only those, and no snapshot; the differences are
// reported the same way.
// Our own name is never news. A name just followed is not news either (it
// is put in `online` silently); its later comings and goings are. Only chat
// peers are news (registry::OffersChat(): an entry that says nothing is
// one): a followed name that offers no chat (the greeter) is kept in
// `online`, for Peer::Send to refuse at once, but never announced, and the
// summary counts chat peers (a List filtered by service) when the registry
// can tell them apart.
//
// Thread-safe. `presence`, `listings` and `events` are told from the
// follower's thread and must not call Stop().
class RegistryFollower final : private FollowedListener {
 public:
  // `contacts` and `presence` must be set.
  struct Options {
    std::string own_name;
    // Whom we follow. Not owned; must outlive this.
    Contacts* contacts = nullptr;
    // Told when a followed name came online, moved or left (OnMoved: a
    // channel to it is stale), and when it came online (OnArrived, after
    // OnMoved: messages waiting for it need not wait out their pause),
    // before the event that shows it online.
    // Not owned; must outlive this.
    PresenceListener* presence = nullptr;
    // Optional: told every entry of a followed name the registry lists
    // (snapshot and changes), before it is news, so its key is compared
    // with a pinned one (KeyBook). Not owned; must outlive this.
    ListingListener* listings = nullptr;
    // A watch lost because the registry is unreachable (or shut down,
    // cancelling it) is not told, nor its return: someone else tells the
    // user the registry is away (the peer's lease keeper, once each way).
    // Other losses still are.
    bool quiet_when_unreachable = false;
  };

  // Starts following. `registry`, `online` and `events` are not owned; they
  // and `clock` must outlive this.
  RegistryFollower(registry::RegistryClient* registry, OnlineSet* online,
                   EventSink* events, const Clock& clock, Options options);

  // Same as Stop().
  ~RegistryFollower() override;

  RegistryFollower(const RegistryFollower&) = delete;
  RegistryFollower& operator=(const RegistryFollower&) = delete;

  // Ends the watch and the thread; no event or callback comes after it
  // returns. Idempotent.
  void Stop();

 private:
  using Stream =
      ReconnectingStream<registry::WatchStream, registry::WatchEvent>;

  // The followed set changed (Contacts, under its lock): only wakes the
  // stream's thread, which watches the new set.
  void OnFollowedChanged() override { stream_->Restart(); }

  std::unique_ptr<registry::WatchStream> Open();
  // One event of the stream; whether it completed the snapshot.
  bool Handle(const registry::WatchEvent& event);
  void Lost(const absl::Status& status);
  // A change after the snapshot.
  void Apply(const registry::WatchEvent& event);
  // The stream is in sync: after a snapshot, whoever it did not list left
  // while we were not watching (`gone`); after a resume, `gone` are those
  // the changes replayed took away.
  void Synced(const std::vector<registry::Entry>& gone);
  // A change replayed by a resumed stream, before its kSynced.
  void Replay(const registry::WatchEvent& event);
  // Puts the online set back as it was before the changes replayed by
  // resumed streams that never synced, so a snapshot that follows reports
  // them as differences.
  void UndoReplay();
  // The first time: how many are online, and which of those followed.
  void Summarize();
  bool Follows(const std::string& name) const {
    return options_.contacts->Follows(name);
  }
  // Whether `entry`'s comings and goings reach the screen.
  bool IsNews(const registry::Entry& entry) const {
    return registry::OffersChat(entry.services) && Follows(entry.name);
  }
  void Emit(const PeerEvent& event) { events_->OnEvent(event); }

  registry::RegistryClient* const registry_;  // Not owned.
  OnlineSet* const online_;                   // Not owned.
  EventSink* const events_;                   // Not owned.
  const Options options_;
  const std::string own_key_;

  // The stream's thread only.
  bool synced_ = false;  // The current stream's snapshot is in.
  // The name keys the current stream watches, and those the last synced
  // one watched (whose arrival is news).
  absl::flat_hash_set<std::string> watching_;
  absl::flat_hash_set<std::string> tracked_;
  bool first_sync_ = true;
  bool reported_loss_ = false;
  // After a reconnect, the name keys whose arrival (or new address) the next
  // sync reports; kept across a stream that breaks before it is synced.
  absl::flat_hash_set<std::string> arrived_;
  // Where the next stream resumes from.
  registry::WatchResumePoint resume_;
  // The current stream asked to resume and has sent no snapshot entry yet.
  bool resuming_ = false;
  // Names resumed streams changed before a kSynced, each with what it was
  // online as before the first change (nullopt: offline); kept across a
  // stream that breaks before it is synced.
  absl::flat_hash_map<std::string, std::optional<registry::Entry>>
      replay_before_;

  std::optional<Stream> stream_;  // Last: its thread uses the above.
};

}  // namespace chat::peer

#endif  // CHAT_PEER_REGISTRY_FOLLOWER_H_
