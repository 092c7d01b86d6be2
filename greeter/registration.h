// How a greeter gets and keeps its name in the registry: register at start,
// keep registering in the background while the registry cannot be reached
// (the greeter serves directly meanwhile), then leave the lease to a
// LeaseKeeper. main.cc and the tests both go through this.

#ifndef CHAT_GREETER_REGISTRATION_H_
#define CHAT_GREETER_REGISTRATION_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/identity.h"
#include "common/periodic_loop.h"
#include "registry/client/lease_keeper.h"
#include "registry/client/registry_client.h"

namespace chat::greeter {

struct RegistrationOptions {
  RegistrationOptions() {
    keeper.name = "greeter";
    // GreetService, not chat, so chat peers leave it out of /peers and
    // refuse to send it messages.
    keeper.services = {"greet"};
  }
  // The name to keep, as a LeaseKeeper takes it (the peer starts its keeper
  // with the same options). An empty keeper.address is worked out again at
  // each attempt, so a registry host that does not resolve yet is just
  // "unreachable". keeper.retry_interval is also the pause between
  // attempts while the registry cannot be reached. keeper.identity: nullptr
  // registers without a key, which the registry refuses (INVALID_ARGUMENT:
  // public_key is required). keeper.on_change also gets the registration's
  // own lines (registered, unreachable, refused, unregistering), from any of
  // our threads; it must not call Stop().
  registry::LeaseKeeper::Options keeper;
  // Called once, from the background thread, when a background attempt
  // reached the registry and was refused (kAlreadyExists: another live lease
  // holds the name; kPermissionDenied: it is bound to another key). Trying
  // stops there. Must not call Stop().
  std::function<void(const absl::Status&)> on_refused;
};

// Thread-safe.
class Registration {
 public:
  // Registers `options.name` once, now:
  // - registered: returns, with a LeaseKeeper renewing the lease;
  // - the registry cannot be reached: reports it once through on_event and
  //   returns, trying again every retry_interval in the background;
  // - refused: returns the registry's error (kAlreadyExists when another
  //   live lease holds the name, kPermissionDenied when it is bound to
  //   another key, kInvalidArgument for a bad name or address); nothing
  //   keeps running.
  // `clock` is not owned and must outlive this.
  static absl::StatusOr<std::unique_ptr<Registration>> Start(
      std::unique_ptr<registry::RegistryClient> client,
      RegistrationOptions options, const Clock& clock = RealClock());

  // Same as Stop().
  ~Registration();

  // Stops trying, stops renewing and unregisters (one attempt bounded by the
  // client's timeout; if it fails the lease expires on its own). Idempotent.
  void Stop();

  // OK while the name is ours (the keeper renews it and registers it again
  // if the registry loses it), kUnavailable while still trying to register
  // it the first time, the refusal once refused, kCancelled once stopped.
  absl::Status status() const;

  // Waits until status() is no longer kUnavailable, or `timeout` passed;
  // returns status().
  absl::Status AwaitSettled(absl::Duration timeout) const;

  // The lease held now; empty lease_id while none is.
  registry::Lease lease() const;

 private:
  Registration(std::unique_ptr<registry::RegistryClient> client,
               RegistrationOptions options, const Clock& clock);
  // One registration attempt; sets keeper_ or status_.
  absl::Status TryRegister() ABSL_LOCKS_EXCLUDED(mu_);
  // One background attempt; the pause before the next, or nullopt when done.
  std::optional<Millis> Retry();
  void Event(const std::string& message) const;
  bool Settled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::unique_ptr<registry::RegistryClient> client_;
  const RegistrationOptions options_;
  const Clock& clock_;

  mutable absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Uses client_; stopped before client_ goes away.
  std::unique_ptr<registry::LeaseKeeper> keeper_ ABSL_GUARDED_BY(mu_);
  std::optional<PeriodicLoop> retry_loop_;  // Set once in Start().
};

}  // namespace chat::greeter

#endif  // CHAT_GREETER_REGISTRATION_H_
