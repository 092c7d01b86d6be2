// SqliteStore's writes as decisions: each is taken against memory under
// write_mu_, applied to memory at once and queued for the file
// (sqlite_store_commit.cc), in the order they were decided.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/random.h"
#include "common/status.h"
#include "registry/names.h"
#include "registry/store/sqlite_store_internal.h"
#include "registry/store/store_rules.h"

namespace chat::registry::sqlite_store_internal {
namespace {

Change RecordChange(const std::string& key, std::optional<Record> after,
                    absl::Time wall_now) {
  Change change;
  change.key = key;
  change.record_changes = true;
  change.after = std::move(after);
  change.updated_at_ms = absl::ToUnixMillis(wall_now);
  return change;
}

// Adds the binding's change to `change` when `after` differs from `before`.
void ChangeBinding(Change& change, const std::optional<BindingRecord>& before,
                   std::optional<BindingRecord> after) {
  if (before == after) return;
  change.binding_changes = true;
  change.binding_after = std::move(after);
}

// Blocks a caller until its write's commit is over: Callback() is handed
// to the write, Wait() returns what it was called with.
template <typename T>
class Waiter {
 public:
  std::function<void(T)> Callback() {
    return [this](T value) {
      value_ = std::move(value);
      done_.Notify();
    };
  }
  T Wait() {
    done_.WaitForNotification();
    return std::move(value_);
  }

 private:
  absl::Notification done_;
  T value_;  // Written before done_ is notified.
};

// Calls `start` with a callback and blocks until that is called; returns
// what it was given.
template <typename T, typename Start>
T Await(Start start) {
  Waiter<T> waiter;
  start(waiter.Callback());
  return waiter.Wait();
}

}  // namespace

void SqliteStore::RegisterAsync(const RegisterRequest& request,
                                LeaseCallback done) {
  if (absl::Status valid = ValidateRegisterRequest(request); !valid.ok()) {
    done(valid);
    return;
  }
  const std::string key = NameKey(request.name);
  absl::Status refused;
  {
    absl::MutexLock write_lock(&write_mu_);
    const MonoTime now = clock_.Monotonic();
    const absl::Time wall_now = clock_.Wall();
    const NameState state = Find(key);
    absl::StatusOr<RegisterDecision> decision =
        DecideRegister(request, state, options_.lease_policy,
                       options_.name_quotas, Counts(NameOwner(request)), now,
                       wall_now, [] { return RandomHex(16); });
    if (decision.ok()) {
      Lease lease{decision->record.lease_id, ToEntry(decision->record, now)};
      Change change = RecordChange(key, std::move(decision->record), wall_now);
      ChangeBinding(change, state.binding, std::move(decision->binding));
      Decide(std::move(change), now, EventReason::kUnregistered,
             [lease = std::move(lease),
              done = std::move(done)](const absl::Status& status) {
               if (status.ok()) {
                 done(lease);
               } else {
                 done(status);
               }
             });
      return;
    }
    refused = decision.status();
  }
  done(refused);
}

absl::StatusOr<Lease> SqliteStore::Register(const RegisterRequest& request) {
  return Await<absl::StatusOr<Lease>>(
      [&](LeaseCallback done) { RegisterAsync(request, std::move(done)); });
}

absl::StatusOr<Millis> SqliteStore::KeepAlive(const std::string& name,
                                              const std::string& lease_id) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  const std::string key = NameKey(name);
  absl::MutexLock lock(&mu_);
  const MonoTime now = clock_.Monotonic();
  auto it = records_.find(key);
  CHAT_RETURN_IF_ERROR(
      CheckHolder(name, lease_id,
                  it == records_.end() ? nullptr : &it->second.record, now));
  Record& record = it->second.record;
  expiry_.erase({record.expires_at, key});
  record.expires_at = now + record.ttl;
  expiry_.emplace(record.expires_at, key);
  return record.ttl;
}

void SqliteStore::UnregisterAsync(const std::string& name,
                                  const std::string& lease_id,
                                  DoneCallback done) {
  if (absl::Status valid = ValidateName(name); !valid.ok()) {
    done(valid);
    return;
  }
  const std::string key = NameKey(name);
  absl::Status refused;
  {
    absl::MutexLock write_lock(&write_mu_);
    const MonoTime now = clock_.Monotonic();
    const absl::Time wall_now = clock_.Wall();
    const NameState state = Find(key);
    refused = CheckHolder(name, lease_id,
                          state.record ? &*state.record : nullptr, now);
    if (refused.ok()) {
      Change change = RecordChange(key, std::nullopt, wall_now);
      ChangeBinding(change, state.binding,
                    BindingAfterLeaseEnds(state.binding, *state.record,
                                          options_.lease_policy, wall_now));
      Decide(std::move(change), now, EventReason::kUnregistered,
             [done = std::move(done)](const absl::Status& status) {
               done(status);
             });
      return;
    }
  }
  done(refused);
}

absl::Status SqliteStore::Unregister(const std::string& name,
                                     const std::string& lease_id) {
  return Await<absl::Status>([&](DoneCallback done) {
    UnregisterAsync(name, lease_id, std::move(done));
  });
}

absl::StatusOr<Entry> SqliteStore::PutStatic(
    const std::string& name, const std::string& address,
    const std::vector<std::string>& services) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  CHAT_RETURN_IF_ERROR(ValidateAddress(address));
  const std::string key = NameKey(name);
  Waiter<absl::Status> waiter;
  Entry entry;
  {
    absl::MutexLock write_lock(&write_mu_);
    const MonoTime now = clock_.Monotonic();
    const absl::Time wall_now = clock_.Wall();
    absl::StatusOr<Record> record = DecidePutStatic(
        name, address, services, Find(key), options_.lease_policy,
        options_.name_quotas, Counts(""), now, wall_now);
    if (!record.ok()) return record.status();
    entry = ToEntry(*record, now);
    Decide(RecordChange(key, *std::move(record), wall_now), now,
           EventReason::kUnregistered, waiter.Callback());
  }
  CHAT_RETURN_IF_ERROR(waiter.Wait());
  return entry;
}

absl::Status SqliteStore::RemoveStatic(const std::string& name) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  const std::string key = NameKey(name);
  Waiter<absl::Status> waiter;
  {
    absl::MutexLock write_lock(&write_mu_);
    const MonoTime now = clock_.Monotonic();
    CHAT_RETURN_IF_ERROR(CheckRemoveStatic(name, Find(key).record, now));
    Decide(RecordChange(key, std::nullopt, clock_.Wall()), now,
           EventReason::kUnregistered, waiter.Callback());
  }
  return waiter.Wait();
}

absl::Status SqliteStore::Release(const std::string& name) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  const std::string key = NameKey(name);
  Waiter<absl::Status> waiter;
  {
    absl::MutexLock write_lock(&write_mu_);
    const MonoTime now = clock_.Monotonic();
    const absl::Time wall_now = clock_.Wall();
    const NameState state = Find(key);
    CHAT_RETURN_IF_ERROR(
        CheckRelease(name, state, options_.lease_policy, now, wall_now));
    Change change;
    change.key = key;
    change.updated_at_ms = absl::ToUnixMillis(wall_now);
    // The lease of the bound key goes with the binding.
    if (state.record && !state.record->is_static() &&
        state.record->public_key == state.binding->key) {
      change.record_changes = true;
    }
    // What it leaves keeps the last proof time for the skew window.
    ChangeBinding(
        change, state.binding,
        BindingAfterRelease(*state.binding, options_.lease_policy, wall_now));
    Decide(std::move(change), now, EventReason::kUnregistered,
           waiter.Callback());
  }
  return waiter.Wait();
}

absl::StatusOr<std::vector<Entry>> SqliteStore::ExpireDue() {
  Waiter<absl::Status> waiter;
  std::vector<Entry> expired;
  {
    absl::MutexLock write_lock(&write_mu_);
    const MonoTime now = clock_.Monotonic();
    const absl::Time wall_now = clock_.Wall();
    std::vector<std::string> due;
    std::vector<std::string> reservations_over;
    {
      absl::ReaderMutexLock lock(&mu_);
      for (auto it = expiry_.begin(); it != expiry_.end() && it->first <= now;
           ++it) {
        due.push_back(it->second);
      }
      for (auto it = reservations_.begin();
           it != reservations_.end() && it->first <= wall_now; ++it) {
        reservations_over.push_back(it->second);
      }
    }
    // A due lease cannot be renewed (KeepAlive refuses it) and every other
    // change waits for write_mu_, so the due records are still here.
    if (due.empty() && reservations_over.empty()) return expired;
    auto write = std::make_unique<PendingWrite>();
    {
      absl::MutexLock lock(&mu_);
      for (std::string& key : due) {
        Change change = RecordChange(key, std::nullopt, wall_now);
        const Record& record = records_.find(key)->second.record;
        ChangeBinding(change, FindBinding(key),
                      BindingAfterLeaseEnds(
                          FindBinding(key), record, options_.lease_policy,
                          LeaseEndWall(record, now, wall_now)));
        write->changes.push_back(std::move(change));
        Apply(write->changes.back(), now, EventReason::kExpired);
        expired.push_back(ToEntry(*write->changes.back().before, now));
      }
      for (std::string& key : reservations_over) {
        Change change;
        change.key = std::move(key);
        change.updated_at_ms = absl::ToUnixMillis(wall_now);
        ChangeBinding(change, FindBinding(change.key), std::nullopt);
        write->changes.push_back(std::move(change));
        Apply(write->changes.back(), now, EventReason::kExpired);
      }
    }
    write->done = waiter.Callback();
    Submit(std::move(write));
  }
  CHAT_RETURN_IF_ERROR(waiter.Wait());
  return expired;
}

void SqliteStore::SetBinding(const std::string& key,
                             std::optional<BindingRecord> binding) {
  if (auto it = bindings_.find(key); it != bindings_.end()) {
    reservations_.erase(
        {BindingForgetAt(it->second, options_.lease_policy), key});
    bindings_.erase(it);
  }
  if (!binding) return;
  const absl::Time forget_at = BindingForgetAt(*binding, options_.lease_policy);
  if (forget_at != absl::InfiniteFuture()) {
    reservations_.emplace(forget_at, key);
  }
  bindings_.emplace(key, *std::move(binding));
}

void SqliteStore::Decide(Change change, MonoTime now, EventReason delete_reason,
                         std::function<void(const absl::Status&)> done) {
  auto write = std::make_unique<PendingWrite>();
  write->changes.push_back(std::move(change));
  write->done = std::move(done);
  {
    absl::MutexLock lock(&mu_);
    Apply(write->changes.back(), now, delete_reason);
  }
  Submit(std::move(write));
}

void SqliteStore::Apply(Change& change, MonoTime now,
                        EventReason delete_reason) {
  if (change.binding_changes) {
    change.binding_before = FindBinding(change.key);
    SetBinding(change.key, change.binding_after);
  }
  if (change.record_changes) ApplyRecord(change, now, delete_reason);
}

void SqliteStore::ApplyRecord(Change& change, MonoTime now,
                              EventReason delete_reason) {
  const std::string& key = change.key;
  // Read again under mu_: a KeepAlive may have moved the expiry since the
  // decision (it cannot change whether the record is live).
  auto it = records_.find(key);
  if (it != records_.end()) {
    change.before = it->second.record;
    if (!change.before->is_static()) {
      expiry_.erase({change.before->expires_at, key});
    }
  }
  if (pending_changes_[key]++ == 0) committed_[key] = change.before;
  // On a copy: ChangeEvents marks an expiry reported, which must not
  // stick to what an undo would put back (watchers never heard of it).
  std::optional<Record> shown_before = change.before;
  change.events =
      ChangeEvents(shown_before ? &*shown_before : nullptr,
                   change.after ? &*change.after : nullptr, now, delete_reason);
  if (!change.after) {
    records_.Erase(key);
    return;
  }
  const Record& record = *change.after;
  if (!record.is_static()) expiry_.emplace(record.expires_at, key);
  records_.Put(key, record);
}

}  // namespace chat::registry::sqlite_store_internal
