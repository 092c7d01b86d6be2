// Keeps one name registered while a program runs: registers at start,
// renews at a third of the TTL, registers again when the lease is lost (the
// registry lost its state, or we were cut off longer than the TTL), and
// unregisters at the end. Used by the greeter and the peer.

#ifndef CHAT_REGISTRY_LEASE_KEEPER_H_
#define CHAT_REGISTRY_LEASE_KEEPER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "registry/client.h"

namespace chat::registry {

// Thread-safe.
class LeaseKeeper {
 public:
  struct Options {
    std::string name;
    std::string address;
    Millis ttl{0};  // 0: the registry's default.
    // How soon to try again after the registry did not answer.
    Millis retry_interval{1000};
    // A lease id saved by an earlier run of this program: if that lease
    // still holds the name (the program was killed), the name is taken back
    // at once instead of after the lease expires.
    std::string reclaim_lease_id;
    // Told every lease id as it is granted, so it can be saved for
    // reclaim_lease_id. Called from Start() and the keeper's thread.
    std::function<void(const std::string&)> on_lease;
    // Told in one line whenever the registration changes state (lost,
    // registry unreachable, registered again, name taken). Called from the
    // keeper's thread; must not call Stop().
    std::function<void(const std::string&)> on_change;
  };

  // Registers `options.name` and starts renewing. Returns the registry's
  // error without starting when the first registration fails:
  // kAlreadyExists when a live lease of someone else holds the name.
  // `client` is not owned and must outlive the keeper.
  static absl::StatusOr<std::unique_ptr<LeaseKeeper>> Start(
      RegistryClient* client, Options options);

  // Same as Stop().
  ~LeaseKeeper();

  // Stops renewing and unregisters (one attempt, bounded by the client's
  // timeout). Idempotent.
  void Stop();

  // The lease currently held; empty lease_id while re-registering.
  Lease lease() const;

 private:
  LeaseKeeper(RegistryClient* client, Options options, Lease lease);
  void Run();
  // One renewal or re-registration; returns how long to wait before the next.
  Millis Step();
  void Report(const std::string& state_key, const std::string& message);

  RegistryClient* const client_;  // Not owned.
  const Options options_;

  mutable absl::Mutex mu_;
  Lease lease_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_state_;  // Used only by the keeper's thread.
  std::thread thread_;
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_LEASE_KEEPER_H_
