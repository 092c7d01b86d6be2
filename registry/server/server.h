// A running registry: the store, the gRPC server in front of it and the loop
// that expires leases, started and stopped as one. main.cc and the tests
// both run the registry through this.

#ifndef CHAT_REGISTRY_SERVER_SERVER_H_
#define CHAT_REGISTRY_SERVER_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/overload.h"
#include "common/periodic_loop.h"
#include "registry/groups/group_store.h"
#include "registry/mailbox/mailbox.h"
#include "registry/server/challenges.h"
#include "registry/server/groups_service.h"
#include "registry/server/mailbox_service.h"
#include "registry/server/service.h"
#include "registry/server/stream_limits.h"
#include "registry/store/store.h"

namespace chat::registry {

struct RegistryServerOptions {
  std::string listen_address = "0.0.0.0:50050";
  // How often the expiry loop looks for expired leases; an expired lease is
  // gone from reads at once and reported to watchers within this interval.
  Millis expiry_interval{100};
  // How often mail older than its limit is removed.
  Millis mail_expiry_interval{60000};
  // What the loops and the challenges wait on. Not owned; must outlive the
  // server.
  const Clock* clock = &RealClock();
  // The admin token PutStatic, RemoveStatic and Release need (see
  // RegistryServiceOptions); empty refuses them all. How long a name stays
  // bound after its last lease is the store's (LeasePolicy::reserve).
  std::string admin_token;
  // Whether Register needs a key and its proof (RegistryServiceOptions).
  bool require_key = true;
  // Challenge lifetime and how many may be outstanding.
  ChallengeBook::Options challenges;
  // Calls in progress, streams per connection, and the clock deadlines are
  // judged by (common/overload.h; not `clock`: gRPC deadlines are real time).
  OverloadOptions overload;
  // TLS: ServerConfig::credentials (common/tls.h); null: plaintext.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // Watch and Listen streams: names per Watch, backlog, streams per client.
  StreamLimits streams;
  // What a group state may hold (members); the group store's own limits
  // are its own (GroupStoreLimits).
  GroupLimits groups;
};

// Thread-safe.
class RegistryServer {
 public:
  // Serves `store` and, when not null, `mailbox` and `groups` (the Groups
  // service; all owned from now on). kUnavailable when it cannot listen.
  static absl::StatusOr<std::unique_ptr<RegistryServer>> Start(
      std::unique_ptr<Store> store, std::unique_ptr<Mailbox> mailbox,
      std::unique_ptr<GroupStore> groups, const RegistryServerOptions& options);

  // A registry without groups.
  static absl::StatusOr<std::unique_ptr<RegistryServer>> Start(
      std::unique_ptr<Store> store, std::unique_ptr<Mailbox> mailbox,
      const RegistryServerOptions& options) {
    return Start(std::move(store), std::move(mailbox), nullptr, options);
  }

  // A registry without a mailbox.
  static absl::StatusOr<std::unique_ptr<RegistryServer>> Start(
      std::unique_ptr<Store> store, const RegistryServerOptions& options) {
    return Start(std::move(store), nullptr, options);
  }

  // Same as Shutdown().
  ~RegistryServer();

  // The port actually bound (useful with port 0).
  int port() const { return server_->port(); }

  // The gate every call passes (tests take its places to fill it).
  CallGate& gate() { return gate_; }
  // Bytes of changes queued for watch streams, all together (each stream is
  // bounded by StreamLimits::watch_backlog_bytes).
  size_t WatchBacklogBytes() { return store_->WatchBacklogBytes(); }

  // A channel to this server that skips the network stack (null while the
  // server is being replaced after its accept loop stopped; see
  // SupervisedServer).
  std::shared_ptr<grpc::Channel> InProcessChannel();

  // Ends watch streams, refuses new calls, gives calls in flight `grace` to
  // finish, stops the expiry loop and closes the store. Idempotent.
  void Shutdown(Millis grace = Millis(2000));

 private:
  RegistryServer(std::unique_ptr<Store> store, std::unique_ptr<Mailbox> mailbox,
                 std::unique_ptr<GroupStore> groups,
                 const RegistryServerOptions& options);
  // One pass of each loop.
  void ExpireLeases();
  void ExpireMail();

  std::unique_ptr<Store> store_;
  std::unique_ptr<Mailbox> mailbox_;    // May be null.
  std::unique_ptr<GroupStore> groups_;  // May be null.
  ChallengeBook challenges_;
  CallGate gate_;  // Shared by both services.
  RegistryService service_;
  std::unique_ptr<MailboxService> mailbox_service_;  // With mailbox_.
  std::unique_ptr<GroupsService> groups_service_;    // With groups_.
  // Listens again after fd exhaustion (common/grpc_server.h).
  std::unique_ptr<SupervisedServer> server_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<PeriodicLoop> lease_expiry_;  // Set once in Start().
  std::optional<PeriodicLoop> mail_expiry_;   // With mailbox_.
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_SERVER_SERVER_H_
