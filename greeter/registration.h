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
  std::string name = "greeter";
  // host:port clients should dial. Empty: worked out from `listen` and
  // `port` (registry::AdvertisedAddress(), with client->target()) at each
  // attempt, so a registry host that does not resolve yet is just
  // "unreachable".
  std::string address;
  std::string listen;  // host:port we serve on.
  int port = 0;
  Millis ttl{0};  // 0: the registry's default.
  // What the greeter offers: GreetService, not chat, so chat peers leave it
  // out of /peers and refuse to send it messages.
  std::vector<std::string> services = {"greet"};
  // The key the name is registered with (and bound to). Not owned; must
  // outlive the Registration. nullptr registers without a key, which the
  // registry refuses (INVALID_ARGUMENT: public_key is required).
  const Identity* identity = nullptr;
  // Pause between attempts while the registry cannot be reached.
  Millis retry_interval{1000};
  // One line per event: registered, unreachable, lost, registered again.
  // Called from any of our threads; must not call Stop().
  std::function<void(const std::string&)> on_event;
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
