// The rules of the Store contract that do not depend on how names are
// stored: who may take, renew or free a name, what a refusal says, which
// TTL a lease gets and which watch events a change makes. Written once,
// shared by the SQLite store and by any later backend (etcd); the contract
// suite (tests/registry/store/store_test.cc) judges them through every backend.

#ifndef CHAT_REGISTRY_STORE_STORE_RULES_H_
#define CHAT_REGISTRY_STORE_STORE_RULES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "registry/quotas.h"
#include "registry/store/store.h"
#include "registry/types.h"

namespace chat::registry {

// One name as a backend keeps it.
struct Record {
  std::string name;  // As first registered.
  std::string address;
  std::string lease_id;  // Empty for static entries.
  // The key its binding holds (never for static entries).
  std::optional<PublicKey> public_key;
  // Watchers were already told this lease expired (a record restored by an
  // undone write can be present, expired and reported). Memory only.
  // Here, in the optional's padding: 8 bytes less per name, 8 MB at a
  // million (docs/benchmarks.md).
  bool expiry_reported = false;
  Millis ttl{0};
  MonoTime expires_at;  // Meaningless for static entries.
  // For a lease without a key: the client host that registered it (what it
  // counts against). Memory only: after a restart such a lease counts
  // against nobody until its holder renews it by Register.
  std::string client;
  // What it offers, JoinServices() of the canonical list ("chat",
  // "chat,greet"; empty: registered by a client older than services). One
  // string, not a vector: "chat" fits in it without a heap block, which
  // counts at a million names.
  std::string services;

  bool is_static() const { return lease_id.empty(); }
  bool LiveAt(MonoTime now) const { return is_static() || expires_at > now; }
};

// One name's binding to a key, as a backend keeps it.
struct BindingRecord {
  std::string name;  // As first bound.
  PublicKey key;
  // absl::InfiniteFuture() while a lease of `key` holds the name (then the
  // reservation starts when the lease ends); else the end of the
  // reservation.
  absl::Time reserved_until = absl::InfiniteFuture();
  // The time of the last chat-register-v2 proof taken for this name and
  // key (RegisterRequest::proof_unix_ms); 0 when none was (bound by a v1
  // proof). A proof must be later than this one (CheckProofFreshness).
  int64_t last_proof_unix_ms = 0;

  friend bool operator==(const BindingRecord& a, const BindingRecord& b) {
    return a.name == b.name && a.key == b.key &&
           a.reserved_until == b.reserved_until &&
           a.last_proof_unix_ms == b.last_proof_unix_ms;
  }
  friend bool operator!=(const BindingRecord& a, const BindingRecord& b) {
    return !(a == b);
  }
};

// Everything a backend keeps for one name, as a decision reads it.
struct NameState {
  std::optional<Record> record;          // Perhaps expired.
  std::optional<BindingRecord> binding;  // Perhaps over.
};

// When `state.binding` stops holding its name: its reserved_until; for one
// whose lease ended without that being recorded yet (the expiry loop has not
// run), that lease's end plus the reserve. InfiniteFuture while a live lease
// holds it. InfinitePast without a binding.
absl::Time BindingEnd(const NameState& state, const LeasePolicy& policy,
                      MonoTime now, absl::Time wall_now);

// Whether `state` has a binding that still holds its name at `wall_now`.
bool IsBound(const NameState& state, const LeasePolicy& policy, MonoTime now,
             absl::Time wall_now);

// The binding as GetBinding reports it; kNotFound when not bound.
absl::StatusOr<Binding> BindingOf(const std::string& name,
                                  const NameState& state,
                                  const LeasePolicy& policy, MonoTime now,
                                  absl::Time wall_now);

// kPermissionDenied: "name bob belongs to another key (fingerprint
// 7f3a9c21...) until 2026-12-31 12:00 UTC", or "... and is online" while a
// live lease holds it. `state` must be bound.
absl::Status BoundError(const NameState& state, const LeasePolicy& policy,
                        MonoTime now, absl::Time wall_now);

// The binding once the lease `ended` (which held the name) ended at
// `ended_at` (wall clock): its reservation starts. `binding` unchanged when
// it is not that lease's.
std::optional<BindingRecord> BindingAfterLeaseEnds(
    const std::optional<BindingRecord>& binding, const Record& ended,
    const LeasePolicy& policy, absl::Time ended_at);

// OK unless `request` carries a chat-register-v2 proof time
// (request.proof_unix_ms, not 0) that is not fresh. kUnauthenticated when it
// lies more than policy.proof_skew from `wall_now` (the message says by how
// much the registrant's clock is ahead or behind), or, when `binding` (bound
// or not: a reservation that ran out, or what Release left) is of
// request.public_key, when it is not later than its last_proof_unix_ms (a
// replay, or a clock that went back). A binding of another key constrains
// nothing here: whether that key still holds the name is BoundError's.
absl::Status CheckProofFreshness(const RegisterRequest& request,
                                 const std::optional<BindingRecord>& binding,
                                 const LeasePolicy& policy,
                                 absl::Time wall_now);

// What Release() leaves of `binding` at `wall_now`: nothing, or, while its
// last proof is still within policy.proof_skew of `wall_now`, a tombstone
// that binds nothing (reserved_until = wall_now: IsBound is false) but
// keeps last_proof_unix_ms, so that a proof captured just before the
// release cannot bind the name to the old key again.
std::optional<BindingRecord> BindingAfterRelease(const BindingRecord& binding,
                                                 const LeasePolicy& policy,
                                                 absl::Time wall_now);

// When a backend may forget `binding` (ExpireDue): once its reservation is
// over and its last proof is out of the skew window, whichever is later.
// InfiniteFuture while a lease holds it.
absl::Time BindingForgetAt(const BindingRecord& binding,
                           const LeasePolicy& policy);

// When the lease of `record` (perhaps expired) ends or ended, on the wall
// clock (`wall_now` at `now`).
absl::Time LeaseEndWall(const Record& record, MonoTime now,
                        absl::Time wall_now);

// `record` as readers see it at `now`.
Entry ToEntry(const Record& record, MonoTime now);

// Whether `record` offers `service` (OffersService() without making the
// list: List() asks this of every record it passes).
bool RecordOffers(const Record& record, const std::string& service);

// Lease ids are secrets: compares without leaking where they differ.
bool SameSecret(const std::string& a, const std::string& b);

// kAlreadyExists saying who holds the name: a static entry (and how an
// operator removes it), or a live lease and until when (`wall_now` is the
// wall clock at `now`, for people).
absl::Status HeldError(const Record& holder, MonoTime now, absl::Time wall_now);

// OK when `record` (nullptr: none) is a live lease held by `lease_id`;
// kInvalidArgument (empty id), kNotFound (no live lease), kPermissionDenied
// (another lease, or a static entry).
absl::Status CheckHolder(const std::string& name, const std::string& lease_id,
                         const Record* record, MonoTime now);

// kInvalidArgument unless the request's name, address and services are
// valid and its TTL is not negative.
absl::Status ValidateRegisterRequest(const RegisterRequest& request);

// Who a live name counts against (NameQuotas): its key ("k" + its bytes),
// else the client host that registered it ("c" + host). Empty for static
// entries (which count against NameQuotas::max_static together) and for a
// keyless lease whose host is unknown (restored from the file).
std::string NameOwner(const Record& record);
std::string NameOwner(const RegisterRequest& request);

// What a backend counts for the name quotas: records (live, or expired and
// not yet removed by ExpireDue) per NameOwner, and static entries.
struct NameCounts {
  size_t owner_names = 0;  // Records of NameOwner(request) (Register).
  size_t static_names = 0;
};

// What a registration makes of a name: its record, and its binding.
struct RegisterDecision {
  Record record;
  std::optional<BindingRecord> binding;  // What the binding becomes.
};

// What `request` makes, given what the backend holds for its name
// (`current`): CheckProofFreshness's refusal when its proof is not fresh;
// BoundError when the name is bound to another key (or the
// request has none); else a new lease with id new_lease_id() on a free
// name, or the holder's renewal (and move) of its own, HeldError otherwise.
// A request with a key binds the name to it (afresh when an earlier
// binding's reservation is over). A name new to its owner (NameOwner) is
// refused with LimitError (kResourceExhausted) when the owner already holds
// its quota (`counts.owner_names`). The binding made records
// request.proof_unix_ms as its last proof (a request without one keeps the
// last proof of its key's binding). The request must be valid.
absl::StatusOr<RegisterDecision> DecideRegister(
    const RegisterRequest& request, const NameState& current,
    const LeasePolicy& policy, const NameQuotas& quotas,
    const NameCounts& counts, MonoTime now, absl::Time wall_now,
    absl::FunctionRef<std::string()> new_lease_id);

// The static entry PutStatic(name, address) makes; HeldError when a live
// lease holds the name, kPermissionDenied when it is bound to a key,
// LimitError when it would be a new static entry beyond
// NameQuotas::max_static (`counts.static_names`).
// `services` empty gives ["chat"]; else they must be valid
// (CanonicalServices()).
absl::StatusOr<Record> DecidePutStatic(
    const std::string& name, const std::string& address,
    const std::vector<std::string>& services, const NameState& current,
    const LeasePolicy& policy, const NameQuotas& quotas,
    const NameCounts& counts, MonoTime now, absl::Time wall_now);

// OK when Release(name) may end the binding in `current`; kNotFound when
// the name is not bound. Release removes the binding and, when it is live,
// the lease holding the name.
absl::Status CheckRelease(const std::string& name, const NameState& current,
                          const LeasePolicy& policy, MonoTime now,
                          absl::Time wall_now);

// OK when RemoveStatic(name) may remove `current`: kNotFound without a live
// entry, kFailedPrecondition when a lease holds it.
absl::Status CheckRemoveStatic(const std::string& name,
                               const std::optional<Record>& current,
                               MonoTime now);

// What watchers are told when a name goes from `before` to `after`
// (nullptr: no record) at `now`; `delete_reason` says why it went, if it
// did. A `before` that expired unreported is reported expired first, and
// marked so.
std::vector<WatchEvent> ChangeEvents(Record* before, const Record* after,
                                     MonoTime now, EventReason delete_reason);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_STORE_STORE_RULES_H_
