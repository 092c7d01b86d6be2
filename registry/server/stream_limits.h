// The limits on the registry's long-lived streams (Watch, Listen): how much
// one request may ask for, how much may wait for one stream, and how many
// streams one client may hold open. Every one is an option of chat-registry,
// listed in docs/limits.md ("Watch and Listen streams").

#ifndef CHAT_REGISTRY_SERVER_STREAM_LIMITS_H_
#define CHAT_REGISTRY_SERVER_STREAM_LIMITS_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace chat::registry {

struct StreamLimits {
  // Names one Watch may ask for (WatchRequest.names); more is
  // RESOURCE_EXHAUSTED (--max-watch-names).
  size_t max_watch_names = 1000;
  // Bytes of changes that may wait for one Watch stream; a watcher that falls
  // further behind is ended with RESOURCE_EXHAUSTED (--max-watch-backlog-kb).
  // The store enforces it: chat-registry passes it on as
  // SqliteStoreOptions::max_watch_backlog_bytes.
  size_t watch_backlog_bytes = 256 * 1024;
  // Concurrent Watch streams from one client host (chat::ClientHost);
  // --max-watch-streams-per-client. A Watch carries no lease, so there is no
  // per-lease bound for it.
  size_t max_watch_streams_per_client = 256;
  // Concurrent Listen streams from one client host, and on one lease;
  // --max-listen-streams-per-client, --max-listen-streams-per-lease.
  size_t max_listen_streams_per_client = 256;
  size_t max_listen_streams_per_lease = 4;
};

// Counts the open streams of one kind (Watch or Listen) per client host and
// per lease, and admits a new one only while both counts are under their
// limits. Thread-safe; must outlive every Ticket it hands out.
class StreamGate {
 public:
  // One admitted stream; its place is given back when it is destroyed.
  class Ticket {
   public:
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    friend class StreamGate;
    Ticket(StreamGate* gate, std::string host, std::string lease)
        : gate_(gate), host_(std::move(host)), lease_(std::move(lease)) {}
    StreamGate* const gate_;  // Not owned; outlives this.
    const std::string host_;
    const std::string lease_;  // Empty: not counted per lease.
  };

  // `kind` names the stream in errors ("Watch"); the options name the
  // limits (without "--"). A per-lease limit of 0 counts no lease.
  StreamGate(std::string kind, size_t per_client, std::string per_client_option,
             size_t per_lease = 0, std::string per_lease_option = "");

  // A place for a stream from `host` (chat::ClientHost of the peer) on
  // `lease` (empty: none), or kResourceExhausted (chat::LimitError: "too
  // many Watch streams from 10.0.0.7 (limit 256,
  // --max-watch-streams-per-client)").
  absl::StatusOr<std::unique_ptr<Ticket>> Admit(const std::string& host,
                                                const std::string& lease = "");

  // Streams open from `host`.
  size_t OpenFrom(const std::string& host);

 private:
  void Release(const std::string& host, const std::string& lease);

  const std::string kind_;
  const size_t per_client_;
  const std::string per_client_option_;
  const size_t per_lease_;
  const std::string per_lease_option_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, size_t> by_host_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> by_lease_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_SERVER_STREAM_LIMITS_H_
