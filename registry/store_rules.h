// The rules of the Store contract that do not depend on how names are
// stored: who may take, renew or free a name, what a refusal says, which
// TTL a lease gets and which watch events a change makes. Written once,
// shared by the SQLite store and by any later backend (etcd); the contract
// suite (tests/registry/store_test.cc) judges them through every backend.

#ifndef CHAT_REGISTRY_STORE_RULES_H_
#define CHAT_REGISTRY_STORE_RULES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "registry/store.h"
#include "registry/types.h"

namespace chat::registry {

// One name as a backend keeps it.
struct Record {
  std::string name;  // As first registered.
  std::string address;
  std::string lease_id;  // Empty for static entries.
  Millis ttl{0};
  MonoTime expires_at;  // Meaningless for static entries.
  // Watchers were already told this lease expired (a record restored by an
  // undone write can be present, expired and reported). Memory only.
  bool expiry_reported = false;

  bool is_static() const { return lease_id.empty(); }
  bool LiveAt(MonoTime now) const { return is_static() || expires_at > now; }
};

// `record` as readers see it at `now`.
Entry ToEntry(const Record& record, MonoTime now);

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

// kInvalidArgument unless the request's name and address are valid and its
// TTL is not negative.
absl::Status ValidateRegisterRequest(const RegisterRequest& request);

// The record `request` makes, given what holds its name now (`current`,
// perhaps expired): a new lease with id new_lease_id() on a free name, or the
// holder's renewal (and move) of its own; HeldError otherwise. The request
// must be valid.
absl::StatusOr<Record> DecideRegister(
    const RegisterRequest& request, const std::optional<Record>& current,
    const LeasePolicy& policy, MonoTime now, absl::Time wall_now,
    absl::FunctionRef<std::string()> new_lease_id);

// The static entry PutStatic(name, address) makes; HeldError when a live
// lease holds the name.
absl::StatusOr<Record> DecidePutStatic(const std::string& name,
                                       const std::string& address,
                                       const std::optional<Record>& current,
                                       MonoTime now, absl::Time wall_now);

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

// What takes watchers back when a change is undone: memory held `current`
// (nullptr: none) and holds `restored` (nullptr: none) again. A `restored`
// that ran out meanwhile stays out of the watchers' view: it is marked
// reported.
std::vector<WatchEvent> UndoEvents(const Record* current, Record* restored,
                                   MonoTime now);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_STORE_RULES_H_
