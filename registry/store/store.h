// The registry's state behind one interface: who holds which name, under
// which lease, until when; and a stream of changes for watchers. Two
// implementations: the SQLite store (one file, one registry) and the etcd
// store (registry/etcd/etcd_store.h: several registries share one etcd).

#ifndef CHAT_REGISTRY_STORE_STORE_H_
#define CHAT_REGISTRY_STORE_STORE_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "registry/types.h"

namespace chat::registry {

// A live subscription to a store's changes. Destroying it unsubscribes; after
// the destructor returns, `on_ready` is never called again.
// Thread-safe; Take() is called by one thread at a time.
class Watch {
 public:
  virtual ~Watch() = default;

  // Removes and returns up to `max` events, oldest first: the snapshot's
  // (read from the store as they are taken, a page at a time), kSynced, then
  // the queued changes. Empty only once the snapshot is over and no change
  // waits, or once the watch has ended (status()).
  virtual std::vector<WatchEvent> Take(size_t max) = 0;

  // OK while the subscription is live. kResourceExhausted once the watcher
  // fell too far behind (its queued changes passed the backlog bound),
  // kUnavailable once the store shuts down; either way the events still
  // queued are dropped and no further events come.
  virtual absl::Status status() = 0;
};

// Which names a watch follows: those whose key starts with the lowercased
// `prefix` and, when `names` is not empty, only those among `names`
// (compared case-insensitively, like every name).
struct WatchScope {
  WatchScope() = default;
  // Every name under `prefix`. Implicit: a prefix is the usual scope.
  WatchScope(std::string prefix_in)  // NOLINT(google-explicit-constructor)
      : prefix(std::move(prefix_in)) {}
  WatchScope(const char* prefix_in)  // NOLINT(google-explicit-constructor)
      : prefix(prefix_in) {}
  // Only `names_in` (valid names; duplicates and case do not matter).
  static WatchScope Names(std::vector<std::string> names_in) {
    WatchScope scope;
    scope.names = std::move(names_in);
    return scope;
  }

  std::string prefix;
  std::vector<std::string> names;
};

// Bounds on the TTL a client may ask for, and how long a name stays bound
// to its key after its last live lease.
struct LeasePolicy {
  Millis min_ttl{2000};
  Millis max_ttl{300000};
  Millis default_ttl{10000};
  // Measured on the wall clock, which outlives restarts (lease expiry does
  // not): a wall-clock step moves the end of a reservation with it.
  absl::Duration reserve = absl::Hours(24 * 30);
  // How far the time of a chat-register-v2 proof may be from the store's
  // wall clock, either way (chat-registry --proof-skew). A binding ended by
  // Release keeps its last proof time this long, so a proof captured just
  // before cannot take the name back for the old key.
  absl::Duration proof_skew = absl::Minutes(5);
};

// A requested TTL (0 = default) clamped to the policy's bounds.
Millis GrantedTtl(const LeasePolicy& policy, Millis requested);

// Maps names to addresses under leases.
//
// Contract (every implementation passes tests/registry/store/store_test.cc):
// - Names are unique case-insensitively and keep the spelling of the
//   registration (or static entry) that created them.
// - A lease lives until `ttl` after its last Register/KeepAlive, measured on
//   the monotonic clock; an expired lease is gone from Resolve and List at
//   once, and ExpireDue() reports and removes it. A backend that expires
//   leases on its own clock (etcd: at least `ttl`, in whole seconds) drops
//   them when it has ended them, and its ExpireDue() has nothing to do.
// - Every acknowledged mutation is durable before the call returns.
// - After a restart, every lease that was live gets a full TTL again.
// - Bindings: a registration with a key (RegisterRequest::public_key, taken
//   as proven: the service checks the proof) binds its name to that key.
//   The binding holds while a lease holds the name and for
//   LeasePolicy::reserve after the last lease ended (unregistered or
//   expired); meanwhile only that key may register the name, and no static
//   entry may take it. Release() ends it early. A registration without a
//   key takes only a name that is not bound.
// - Proof freshness (RegisterRequest::proof_unix_ms, a chat-register-v2
//   proof): the store refuses, with kUnauthenticated, a proof whose time is
//   more than LeasePolicy::proof_skew from its wall clock ("... the clock
//   of the registrant is N s ahead/behind ..."), or not later than the
//   last proof it took for that name and key ("... already used, or older
//   than the last ..."): CheckProofFreshness in store_rules.h. The check
//   and the write of the new last proof (BindingRecord::last_proof_unix_ms)
//   are one atomic step, so of two registrations with one proof at most one
//   succeeds, on any number of registries sharing the store. The last proof
//   time is kept with the binding, and for LeasePolicy::proof_skew after
//   the binding ends (BindingForgetAt), even by Release().
// - Errors: kInvalidArgument (bad name or address), kAlreadyExists (held by
//   another lease or a static entry), kNotFound, kPermissionDenied (wrong
//   lease; a name bound to another key), kUnauthenticated (a stale or
//   replayed proof), kFailedPrecondition, kUnavailable (storage failure). A
//   failed call changes nothing.
// Thread-safe: the gRPC server calls it from many threads at once.
class Store {
 public:
  virtual ~Store() = default;

  // Grants a new lease on a free name, or (with the lease_id that holds the
  // name) renews it and updates its address. kAlreadyExists, with the time
  // the holder's lease runs out, when another live lease or a static entry
  // holds the name; kPermissionDenied ("name bob belongs to another key
  // (fingerprint ...) until ...") when the name is bound to a key other than
  // request.public_key (or the request has none); kUnauthenticated when
  // request.proof_unix_ms is set and not fresh (see the contract above).
  virtual absl::StatusOr<Lease> Register(const RegisterRequest& request) = 0;

  // Register() and Unregister() without blocking the caller (a gRPC
  // callback thread) while the change is made durable: `done` gets what the
  // blocking call would return, exactly once, once that is known: on a
  // thread of the store's, or on the caller's before this returns when the
  // call is refused before anything is written. `done` must not wait for
  // the store.
  using LeaseCallback = std::function<void(absl::StatusOr<Lease>)>;
  using DoneCallback = std::function<void(absl::Status)>;
  virtual void RegisterAsync(const RegisterRequest& request,
                             LeaseCallback done) = 0;
  virtual void UnregisterAsync(const std::string& name,
                               const std::string& lease_id,
                               DoneCallback done) = 0;

  // Renews the lease on `name` for its full TTL and returns that TTL.
  // kNotFound when the name has no live lease; kPermissionDenied when
  // `lease_id` is not the lease that holds it.
  virtual absl::StatusOr<Millis> KeepAlive(const std::string& name,
                                           const std::string& lease_id) = 0;

  // KeepAlive() without blocking the caller (a gRPC callback thread) while
  // a store whose renewals go over the network waits for them: `done` gets
  // what KeepAlive() would return, exactly once, on a thread of the store's
  // or on the caller's before this returns. `done` must not wait for the
  // store. By default it is KeepAlive() on the caller's thread (a store
  // that renews in its own memory answers at once).
  using TtlCallback = std::function<void(absl::StatusOr<Millis>)>;
  virtual void KeepAliveAsync(const std::string& name,
                              const std::string& lease_id, TtlCallback done) {
    done(KeepAlive(name, lease_id));
  }

  // OK when `lease_id` holds the live lease on `name`; changes nothing.
  // Errors as for KeepAlive.
  virtual absl::Status VerifyLease(const std::string& name,
                                   const std::string& lease_id) = 0;

  // Frees `name`. Errors as for KeepAlive.
  virtual absl::Status Unregister(const std::string& name,
                                  const std::string& lease_id) = 0;

  // Adds or updates an entry that never expires, offering `services`
  // (empty: "chat"; kInvalidArgument for a bad one). kAlreadyExists when a
  // live lease holds the name; kPermissionDenied when the name is bound to
  // a key.
  virtual absl::StatusOr<Entry> PutStatic(
      const std::string& name, const std::string& address,
      const std::vector<std::string>& services) = 0;
  // A static entry offering "chat".
  absl::StatusOr<Entry> PutStatic(const std::string& name,
                                  const std::string& address) {
    return PutStatic(name, address, {});
  }

  // Removes a static entry. kNotFound when there is none; kFailedPrecondition
  // when a lease holds the name.
  virtual absl::Status RemoveStatic(const std::string& name) = 0;

  // The binding of `name`, online or reserved; kNotFound when there is none
  // (or its reservation is over).
  virtual absl::StatusOr<Binding> GetBinding(const std::string& name) = 0;

  // Ends the binding of `name` and removes the live lease that holds it, if
  // any (watchers: kDelete, kUnregistered). kNotFound when it is not bound.
  virtual absl::Status Release(const std::string& name) = 0;

  // The live entry for `name`, case-insensitively, or kNotFound.
  virtual absl::StatusOr<Entry> Resolve(const std::string& name) = 0;

  // Live entries whose key starts with the lowercased `prefix`, in key order,
  // after `page_token`, at most `page_size` (>= 1) of them; with `service`
  // not empty, only those that offer it (OffersService(): an entry without
  // services offers "chat"), and ListPage::service says so. total_size is
  // left 0 (see Size(), CountOffering()).
  virtual ListPage List(const std::string& prefix, size_t page_size,
                        const std::string& page_token,
                        const std::string& service) = 0;
  ListPage List(const std::string& prefix, size_t page_size,
                const std::string& page_token) {
    return List(prefix, page_size, page_token, "");
  }

  // Subscribes to changes of the names in `scope`. The returned watch first
  // gives every matching live entry (kPut, kInitial), then one kSynced, then
  // every later change. The snapshot is not copied: Take() reads it from the
  // store in key order as it is taken, so a watch costs the same however
  // many names there are, and each change reaches the watcher exactly once,
  // in the snapshot or after kSynced (the rule: registry/store/watch_hub.h).
  // Queued changes are bounded in bytes (kResourceExhausted past the bound).
  // `on_ready` is called (from the thread making the change, possibly under
  // the store's locks: it must not call back into the store) whenever events
  // are queued or the status changes, and only once kSynced has been taken:
  // take until then.
  //
  // Watchers see only committed changes, in commit order: a change is
  // published once it is durable, never before, so none is shown and then
  // taken back (a write that fails is never seen by watchers, though
  // Resolve and List on SQLite may show it while its commit is pending).
  //
  // Revisions. Every change carries the store's revision
  // (WatchEvent::revision), growing in commit order; kSynced carries the
  // revision the watcher's view is at. With `resume_after` > 0 that the
  // store's history of recent changes still covers (the last
  // `watch_history` changes, kDefaultWatchHistory by default), the watch
  // gives the changes after it that match `scope` (perhaps one the watcher
  // saw already) instead of the snapshot, then kSynced with
  // WatchEvent::resumed set. A revision the history does not cover (too
  // old, from another store, from before a SQLite restart, or ahead of the
  // store) gets the snapshot, as 0 does: never an error, so a watcher that
  // moves to another registry or outlives a restart simply resynchronises.
  // - etcd: etcd's revision, the same at every registry of a deployment,
  //   so a watch resumes at any of them. A compaction the index had to
  //   resynchronise across (or a restart) starts the history again.
  // - SQLite: (epoch << 40) + a counter of changes. The epoch is kept in
  //   the file and grows by one at every open (a new file starts at a
  //   random one; ":memory:" draws one each time), so a revision from
  //   before a restart is below every revision after it, and is never
  //   misread as current.
  virtual std::unique_ptr<Watch> Subscribe(const WatchScope& scope,
                                           int64_t resume_after,
                                           std::function<void()> on_ready) = 0;
  std::unique_ptr<Watch> Subscribe(const WatchScope& scope,
                                   std::function<void()> on_ready) {
    return Subscribe(scope, 0, std::move(on_ready));
  }

  // Removes every lease whose time is up, tells watchers (kDelete, kExpired),
  // and returns the entries removed; starts the reservation of their
  // bindings and forgets bindings whose reservation is over. Called often
  // by the expiry loop. On etcd it returns no entries (etcd ends the
  // leases, and every registry's watch tells its watchers and writes the
  // reservations) and only forgets bindings that are over.
  virtual absl::StatusOr<std::vector<Entry>> ExpireDue() = 0;

  // Number of live entries (leased and static).
  virtual size_t Size() = 0;

  // Number of live entries that offer `service` (as List() filters them).
  // Kept as a count, not a scan: it answers every peer's start-up summary.
  virtual size_t CountOffering(const std::string& service) = 0;

  // Bytes of changes queued for watchers, all watches together.
  virtual size_t WatchBacklogBytes() = 0;

  // Ends every watch with kUnavailable ("shutting down": clients watch
  // again, elsewhere or later), so streams finish before a shutdown.
  virtual void CancelWatches() = 0;
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_STORE_STORE_H_
