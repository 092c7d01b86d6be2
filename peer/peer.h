// A running chat peer without its front end: serves ChattingService,
// registers its name and keeps it, follows who is online, and sends
// messages to other peers by name, in order, reporting each one's fate.

#ifndef CHAT_PEER_PEER_H_
#define CHAT_PEER_PEER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "peer/chat_service.h"
#include "peer/events.h"
#include "peer/peer_store.h"
#include "registry/client/registry_client.h"
#include "registry/client/lease_keeper.h"

namespace chat::peer {

struct PeerOptions {
  std::string name;
  std::string registry = "localhost:50050";
  std::string listen = "0.0.0.0:0";  // Port 0: the OS chooses.
  // host:port others should dial; empty: the local address used to reach
  // the registry, with the bound port.
  std::string advertise;
  Millis ttl{0};  // 0: the registry's default.
  // Deadline of each call to the registry or another peer.
  Millis rpc_timeout{5000};
  // The peer's SQLite file (see PeerStorePath()); ":memory:" keeps nothing
  // across runs (tests).
  std::string store_path = ":memory:";
  // Commits survive power loss (synchronous=FULL), not only a killed
  // process; costs one fsync per commit.
  bool sync_full = true;
  // How long a message that overtook an earlier one waits for it before it
  // is shown anyway.
  Millis hold_back{10000};
  // First and longest pause between attempts to send a message that could
  // be neither delivered nor stored.
  Millis retry_min{250};
  Millis retry_max{5000};
};

class Conversation;

// Thread-safe.
class Peer final : private MessageSink {
 public:
  // Serves, registers, starts following the registry. kAlreadyExists when a
  // live peer holds the name, kUnavailable when the registry cannot be
  // reached or the address cannot be served, kInvalidArgument for a bad
  // name or address, kFailedPrecondition when the store cannot be opened
  // (for example, another peer of this name uses it). `events` and `clock` are
  // not owned and must outlive the peer.
  static absl::StatusOr<std::unique_ptr<Peer>> Start(const PeerOptions& options,
                                                     EventSink* events,
                                                     const Clock& clock);

  // Same as Shutdown().
  ~Peer() override;

  const std::string& name() const { return options_.name; }
  // The address registered for us.
  const std::string& address() const { return address_; }

  // Writes `text` for `to` to the outbox and returns the message's id at
  // once; its states come as kSendResult events (kSent once it is in the
  // outbox). It is tried until it is delivered or stored, also across
  // restarts; messages to one peer go in order. kInvalidArgument for a bad
  // name or text, kFailedPrecondition once shutting down.
  absl::StatusOr<std::string> Send(const std::string& to,
                                   const std::string& text,
                                   bool to_partner = false);

  // Everyone registered now, from the registry.
  absl::StatusOr<std::vector<registry::Entry>> ListPeers();

  // Names seen online through the registry watch (for completion), as
  // registered, sorted.
  std::vector<std::string> OnlineNames();

  // Blocks until `name` is online, or Interrupt()/Shutdown(); returns
  // whether it is online.
  bool WaitUntilOnline(const std::string& name);

  // Wakes WaitUntilOnline() callers, which then return false.
  void Interrupt();

  // Gives each queued message one more try (a message that still cannot go
  // stays in the outbox for the next start), stops following the registry,
  // unregisters and stops serving. Idempotent.
  void Shutdown();

 private:
  friend class Conversation;

  Peer(PeerOptions options, EventSink* events, const Clock& clock);
  void Accept(const ChatMessage& message, AcceptCallback done) override;
  // Shows messages the store released, in order, and notes them shown.
  void Show(const std::vector<ChatMessage>& messages, bool repeated);
  // Hands outbox entries to their conversations. Caller holds mu_.
  void QueueLocked(const ChatMessage& message, bool to_partner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HoldBackLoop();
  void WatchLoop();
  void ApplyWatchEvent(const registry::WatchEvent& event);
  // Records `entry` as online, seen in watch snapshot `generation`; whether
  // it is news (a new name or a new address).
  bool NoteOnlineLocked(const registry::Entry& entry, uint32_t generation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Delivers one message directly, with a re-resolve and one retry when the
  // peer is unreachable; when it is offline or unreachable, leaves it in the
  // recipient's mailbox. Returns kDelivered or kStored (with why it was not
  // delivered directly in `why`), or the error.
  // `tried_cached`: a direct send over the cached channel just failed, so
  // resolve afresh first.
  absl::StatusOr<SendStatus> Deliver(const ChatMessage& message,
                                     std::string* why, bool tried_cached);
  absl::Status DeliverDirectly(const ChatMessage& message, bool tried_cached);
  // How many messages to `name` may be on their way at once.
  size_t WindowFor(const std::string& name);
  // Sends `messages` (all to one recipient) at once over the cached channel,
  // resolving it first if there is none; each one's outcome, in order.
  std::vector<absl::Status> SendAll(const std::vector<ChatMessage>& messages);
  void MailLoop();
  void HandleMail(const registry::MailItem& item, const std::string& lease_id);
  absl::StatusOr<std::shared_ptr<::ChattingService::Stub>> StubFor(
      const std::string& name, bool fresh);
  void ForgetStub(const std::string& key);
  void Emit(const PeerEvent& event) { events_->OnEvent(event); }

  const PeerOptions options_;
  EventSink* const events_;  // Not owned.
  const Clock& clock_;
  std::string address_;

  std::unique_ptr<PeerStore> store_;  // Outlives every thread below.
  std::unique_ptr<registry::RegistryClient> registry_;
  std::unique_ptr<ChatService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<registry::LeaseKeeper> keeper_;
  std::thread watch_thread_;
  std::thread mail_thread_;
  std::thread hold_back_thread_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool interrupted_ ABSL_GUARDED_BY(mu_) = false;
  bool watch_synced_ ABSL_GUARDED_BY(mu_) = false;  // First snapshot is in.

  // One name the registry watch says is online, with what notices,
  // completion and WindowFor() need. A peer follows the whole registry,
  // which may hold 100,000 names, so this is packed: 16 bytes in the set
  // plus one small block (about 70 bytes a name in all, measured).
  class OnlinePeer {
   public:
    OnlinePeer(const registry::Entry& entry, uint32_t generation);
    absl::string_view name() const;  // As registered.
    absl::string_view address() const;
    bool is_static() const { return is_static_; }

    // The watch snapshot that last listed it; not part of its identity.
    mutable uint32_t generation;

   private:
    std::unique_ptr<char[]> text_;  // The name, '\0', the address, '\0'.
    bool is_static_;
  };
  // Names compare as their name keys (ASCII case-insensitively).
  struct NameKeyHash {
    using is_transparent = void;
    size_t operator()(absl::string_view name) const;
    size_t operator()(const OnlinePeer& online) const {
      return (*this)(online.name());
    }
  };
  struct NameKeyEq {
    using is_transparent = void;
    static absl::string_view Name(absl::string_view name) { return name; }
    static absl::string_view Name(const OnlinePeer& online) {
      return online.name();
    }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return absl::EqualsIgnoreCase(Name(a), Name(b));
    }
  };
  // Who is online, as the registry watch tells it.
  uint32_t watch_generation_ ABSL_GUARDED_BY(mu_) = 0;  // One per stream.
  absl::flat_hash_set<OnlinePeer, NameKeyHash, NameKeyEq> online_
      ABSL_GUARDED_BY(mu_);
  std::unique_ptr<registry::WatchStream> watch_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<registry::MailStream> mail_ ABSL_GUARDED_BY(mu_);
  // One ordered outgoing queue per recipient, by name key.
  absl::flat_hash_map<std::string, std::unique_ptr<Conversation>> conversations_
      ABSL_GUARDED_BY(mu_);

  struct CachedStub {
    std::string address;
    // Shared: a send in flight keeps its stub while the cache moves on.
    std::shared_ptr<::ChattingService::Stub> stub;
  };
  absl::Mutex stubs_mu_;
  absl::flat_hash_map<std::string, CachedStub> stubs_
      ABSL_GUARDED_BY(stubs_mu_);
};

}  // namespace chat::peer

#endif  // CHAT_PEER_PEER_H_
