// "Advertise and keep my name", for every program that serves under a name
// (the greeter, the peer): works out the address others should dial,
// registers at start, renews at a third of the TTL, registers again when the
// lease is lost (the registry lost its state, or we were cut off longer than
// the TTL), and unregisters at the end.

#ifndef CHAT_REGISTRY_CLIENT_LEASE_KEEPER_H_
#define CHAT_REGISTRY_CLIENT_LEASE_KEEPER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/periodic_loop.h"
#include "registry/client/registry_client.h"

namespace chat::registry {

// The host:port others should dial to reach a server of ours on `port`:
// `advertise` when given; else the interface `listen` names, if it names
// one; else the local address this machine uses to reach `registry_target`.
// kUnavailable ("registry at ... is unreachable: ...") when that route
// cannot be found.
absl::StatusOr<std::string> AdvertisedAddress(
    const std::string& advertise, const std::string& listen, int port,
    const std::string& registry_target);

// Thread-safe.
class LeaseKeeper {
 public:
  struct Options {
    std::string name;
    // Where others reach us. Empty: AdvertisedAddress("", listen, port,
    // the registry the client uses now), worked out once, in Start().
    std::string address;
    std::string listen;  // host:port we serve on.
    int port = 0;        // The port we bound.
    Millis ttl{0};       // 0: the registry's default.
    // What the program offers, registered with every registration
    // (RegisterRequest::services): chat-peer {"chat"}, chat-greeter
    // {"greet"}. Empty says nothing, which readers take as "chat".
    std::vector<std::string> services;
    // How soon to try again after the registry did not answer.
    Millis retry_interval{1000};
    // A lease id saved by an earlier run of this program: if that lease
    // still holds the name (the program was killed), the name is taken back
    // at once instead of after the lease expires.
    std::string reclaim_lease_id;
    // The key to register with (RegistryClient::Register): binds the name
    // to it. Not owned; must outlive the keeper. nullptr registers without
    // a key, which the registry refuses (INVALID_ARGUMENT naming
    // public_key).
    const Identity* identity = nullptr;
    // Told every lease id as it is granted, so it can be saved for
    // reclaim_lease_id. Called from Start() and the keeper's thread.
    std::function<void(const std::string&)> on_lease;
    // Told in one line whenever the registration changes state (lost,
    // registry unreachable, registered again, name taken). Called from the
    // keeper's thread; must not call Stop().
    std::function<void(const std::string&)> on_change;
    // Optional: told once when the registry stops answering (false, with
    // the status of the call that found it away) and once when it answers
    // again (true, OK). When set, on_change is not told these two changes
    // as well. Called from the keeper's thread; must not call Stop().
    std::function<void(bool reachable, const absl::Status& status)>
        on_reachable;
  };

  // Registers `options.name` and starts renewing. Returns the registry's
  // error without starting when the first registration fails:
  // kAlreadyExists when a live lease of someone else holds the name;
  // kPermissionDenied with the registry's message ("name bob belongs to
  // another key ...") when the name is bound to another key;
  // kUnavailable also when our address cannot be worked out. `client` and
  // `clock` are not owned and must outlive the keeper.
  static absl::StatusOr<std::unique_ptr<LeaseKeeper>> Start(
      RegistryClient* client, Options options,
      const Clock& clock = RealClock());

  // Same as Stop().
  ~LeaseKeeper();

  // Stops renewing and unregisters (one attempt, bounded by the client's
  // timeout). Idempotent.
  void Stop();

  // The lease currently held; empty lease_id while re-registering.
  Lease lease() const;

  // The address we registered (Options::address, or the one worked out).
  const std::string& address() const { return options_.address; }

 private:
  LeaseKeeper(RegistryClient* client, Options options, Lease lease);
  // One renewal or re-registration; returns how long to wait before the next.
  Millis Step();
  // `reachability`: the message says only that the registry is away or
  // back (on_reachable tells that instead, when set).
  void Report(const std::string& state_key, const std::string& message,
              bool reachability = false);
  // Tells on_reachable when the registry's reachability changes.
  void SetReachable(bool reachable, const absl::Status& status);

  RegistryClient* const client_;  // Not owned.
  const Options options_;

  mutable absl::Mutex mu_;
  Lease lease_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_state_;            // Used only by the keeper's thread.
  bool reachable_ = true;             // Used only by the keeper's thread.
  std::optional<PeriodicLoop> loop_;  // Set once in Start().
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_CLIENT_LEASE_KEEPER_H_
