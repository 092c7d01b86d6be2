// Follows the registry's watch for a peer: keeps its OnlineSet up to date,
// reports who comes and goes, and reconnects (with backoff) when the watch
// is lost, reporting only what changed meanwhile.

#ifndef CHAT_PEER_REGISTRY_FOLLOWER_H_
#define CHAT_PEER_REGISTRY_FOLLOWER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "common/clock.h"
#include "peer/events.h"
#include "peer/online_set.h"
#include "peer/reconnecting_stream.h"
#include "registry/client/registry_client.h"

namespace chat::peer {

// Watches every name in the registry on its own thread.
//
// The first snapshot fills `online` and is reported as one kPeers event;
// after that each change is a kOnline or kOffline event. When the watch
// breaks, an info event says "lost the registry watch (<why>);
// reconnecting" (once), the follower tries again after 200 ms, doubling to
// 5 s, and once a new snapshot is in says "following the registry again"
// and reports only the differences. Our own name is never news.
//
// Thread-safe. The callbacks are called from the follower's thread and must
// not call Stop().
class RegistryFollower {
 public:
  // Both callbacks must be set.
  struct Options {
    std::string own_name;
    // `name` came online, moved or left: a channel to it is stale.
    std::function<void(const std::string& name)> on_change;
    // `name` came online (after on_change): messages waiting for it need
    // not wait out their pause.
    std::function<void(const std::string& name)> on_arrival;
    // Optional: every entry the registry lists (snapshot and changes),
    // before it is news, so its key is compared with a pinned one.
    std::function<void(const registry::Entry& entry)> on_listed;
  };

  // Starts following. `registry`, `online` and `events` are not owned; they
  // and `clock` must outlive this.
  RegistryFollower(registry::RegistryClient* registry, OnlineSet* online,
                   EventSink* events, const Clock& clock, Options options);

  // Same as Stop().
  ~RegistryFollower();

  RegistryFollower(const RegistryFollower&) = delete;
  RegistryFollower& operator=(const RegistryFollower&) = delete;

  // Ends the watch and the thread; no event or callback comes after it
  // returns. Idempotent.
  void Stop() { stream_->Stop(); }

 private:
  using Stream =
      ReconnectingStream<registry::WatchStream, registry::WatchEvent>;

  std::unique_ptr<registry::WatchStream> Open();
  // One event of the stream; whether it completed the snapshot.
  bool Handle(const registry::WatchEvent& event);
  void Lost(const absl::Status& status);
  // A change after the snapshot.
  void Apply(const registry::WatchEvent& event);
  // The snapshot of this stream is in.
  void Synced();
  void Emit(const PeerEvent& event) { events_->OnEvent(event); }

  registry::RegistryClient* const registry_;  // Not owned.
  OnlineSet* const online_;                   // Not owned.
  EventSink* const events_;                   // Not owned.
  const Options options_;
  const std::string own_key_;

  // The stream's thread only.
  bool synced_ = false;  // The current stream's snapshot is in.
  bool first_sync_ = true;
  bool reported_loss_ = false;
  // After a reconnect, the name keys whose arrival (or new address) the next
  // sync reports; kept across a stream that breaks before it is synced.
  absl::flat_hash_set<std::string> arrived_;

  std::optional<Stream> stream_;  // Last: its thread uses the above.
};

}  // namespace chat::peer

#endif  // CHAT_PEER_REGISTRY_FOLLOWER_H_
