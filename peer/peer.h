// A running chat peer without its front end: serves ChattingService,
// registers its name and keeps it, follows who is online, and sends
// messages to other peers by name, in order, reporting each one's fate.

#ifndef CHAT_PEER_PEER_H_
#define CHAT_PEER_PEER_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "peer/chat_service.h"
#include "peer/events.h"
#include "registry/client.h"
#include "registry/lease_keeper.h"

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
};

class Conversation;

// Thread-safe.
class Peer final : private MessageSink {
 public:
  // Serves, registers, starts following the registry. kAlreadyExists when a
  // live peer holds the name, kUnavailable when the registry cannot be
  // reached or the address cannot be served, kInvalidArgument for a bad
  // name or address. `events` and `clock` are not owned and must outlive the
  // peer.
  static absl::StatusOr<std::unique_ptr<Peer>> Start(const PeerOptions& options,
                                                     EventSink* events,
                                                     const Clock& clock);

  // Same as Shutdown().
  ~Peer() override;

  const std::string& name() const { return options_.name; }
  // The address registered for us.
  const std::string& address() const { return address_; }

  // Queues `text` for `to` and returns the message's id at once; its fate
  // comes later as a kSendResult event. Messages to one peer go in order.
  // kInvalidArgument for a bad name or text, kFailedPrecondition once
  // shutting down.
  absl::StatusOr<std::string> Send(const std::string& to,
                                   const std::string& text,
                                   bool to_partner = false);

  // Everyone registered now, from the registry.
  absl::StatusOr<std::vector<registry::Entry>> ListPeers();

  // Names seen online through the registry watch (for completion).
  std::vector<std::string> OnlineNames();

  // Blocks until `name` is online, or Interrupt()/Shutdown(); returns
  // whether it is online.
  bool WaitUntilOnline(const std::string& name);

  // Wakes WaitUntilOnline() callers, which then return false.
  void Interrupt();

  // Finishes pending sends (each bounded by two attempts), stops following
  // the registry, unregisters and stops serving. Idempotent.
  void Shutdown();

 private:
  friend class Conversation;

  Peer(PeerOptions options, EventSink* events, const Clock& clock);
  absl::Status Accept(const ChatMessage& message) override;
  void WatchLoop();
  void ApplyWatchEvent(const registry::WatchEvent& event);
  // Delivers one message directly, with a re-resolve and one retry when the
  // peer is unreachable; when it is offline or unreachable, leaves it in the
  // recipient's mailbox. Returns kDelivered or kStored (with why it was not
  // delivered directly in `why`), or the error.
  absl::StatusOr<SendStatus> Deliver(const ChatMessage& message,
                                     std::string* why);
  absl::Status DeliverDirectly(const ChatMessage& message);
  void MailLoop();
  void HandleMail(const registry::MailItem& item, const std::string& lease_id);
  // Remembers `id`; false when it was seen before (a duplicate).
  bool FirstSighting(const std::string& id);
  absl::StatusOr<std::shared_ptr<::ChattingService::Stub>> StubFor(
      const std::string& name, bool fresh);
  void ForgetStub(const std::string& key);
  void Emit(const PeerEvent& event) { events_->OnEvent(event); }

  const PeerOptions options_;
  EventSink* const events_;  // Not owned.
  const Clock& clock_;
  std::string address_;

  std::unique_ptr<registry::RegistryClient> registry_;
  std::unique_ptr<ChatService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<registry::LeaseKeeper> keeper_;
  std::thread watch_thread_;
  std::thread mail_thread_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool interrupted_ ABSL_GUARDED_BY(mu_) = false;
  bool watch_synced_ ABSL_GUARDED_BY(mu_) = false;  // First snapshot is in.
  // Who is online, by name key, as the registry watch tells it.
  absl::flat_hash_map<std::string, registry::Entry> online_
      ABSL_GUARDED_BY(mu_);
  std::unique_ptr<registry::WatchStream> watch_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<registry::MailStream> mail_ ABSL_GUARDED_BY(mu_);
  // Ids of messages received lately, oldest first: a retry or a copy from
  // the mailbox is shown once. Bounded.
  absl::flat_hash_set<std::string> seen_ids_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> seen_order_ ABSL_GUARDED_BY(mu_);
  // Our messages waiting in mailboxes, by id, for their receipts. Bounded.
  absl::flat_hash_map<std::string, ChatMessage> stored_ ABSL_GUARDED_BY(mu_);
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
