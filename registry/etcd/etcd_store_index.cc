// The etcd Store's index (etcd_store_internal.h): a snapshot of the store's
// keys, kept current by one etcd Watch; the wait of a write for its own
// revision there; the reservations written when a bound name's lease ends.

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "registry/etcd/etcd_layout.h"
#include "registry/etcd/etcd_store_internal.h"
#include "registry/etcd/etcd_watch.h"
#include "registry/etcd/watch_outage_log.h"
#include "registry/store/store_rules.h"

namespace chat::registry::etcd::store_internal {
namespace {

// Keys read per page of a snapshot.
constexpr int64_t kSnapshotPage = 1000;

}  // namespace

ReadState EtcdStore::Read(const std::string& key, const std::string& owner) {
  absl::ReaderMutexLock lock(&mu_);
  const MonoTime now = clock_.Monotonic();
  ReadState read;
  if (auto it = records_.find(key); it != records_.end()) {
    read.state.record = Live(it->second.record, now);
    read.name_mod = it->second.mod_revision;
    read.etcd_lease = it->second.etcd_lease;
  }
  if (auto it = bindings_.find(key); it != bindings_.end()) {
    read.binding = it->second;
    read.state.binding = it->second.binding;
  }
  read.counts = records_.counts().For(owner);
  if (!owner.empty()) {
    if (auto it = owner_revs_.find(layout_.OwnerRev(owner));
        it != owner_revs_.end()) {
      read.owner_rev_mod = it->second;
    }
  }
  read.static_rev_mod = static_rev_;
  return read;
}

absl::StatusOr<ReadState> EtcdStore::ReadHolder(const std::string& name,
                                                const std::string& key,
                                                const std::string& lease_id) {
  ReadState read = Read(key, "");
  absl::Status holder = CheckHolder(
      name, lease_id, read.state.record ? &*read.state.record : nullptr,
      clock_.Monotonic());
  if (holder.ok() || holder.code() == absl::StatusCode::kInvalidArgument) {
    CHAT_RETURN_IF_ERROR(holder);
    return read;
  }
  auto now = client_->Range(RangeRequest::Key(layout_.Name(key)));
  if (!now.ok()) return holder;
  // The name's own write when it is there; gone, it went at a revision
  // the Range does not say.
  WaitApplied(now->kvs.empty() ? now->revision : now->kvs[0].mod_revision);
  read = Read(key, "");
  CHAT_RETURN_IF_ERROR(CheckHolder(
      name, lease_id, read.state.record ? &*read.state.record : nullptr,
      clock_.Monotonic()));
  return read;
}

void EtcdStore::WaitApplied(int64_t revision) {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (applied_ >= revision) return;
  }
  // The watch this wait relies on: only it is reopened when it brings
  // nothing, not one that another wait has reopened already.
  const EtcdWatch* watching;
  {
    absl::MutexLock lock(&watch_mu_);
    watching = watch_;
  }
  auto caught_up = [this, revision]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return applied_ >= revision;
  };
  {
    // Usually the write's own event comes within a millisecond or two.
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&caught_up),
                             absl::Milliseconds(50))) {
      return;
    }
  }
  // A revision made by keys outside the store's root (the mailbox's,
  // another deployment's) brings no event: write one under it, which comes
  // through the watch after every event before it. (Not a progress
  // notification: etcd 3.4.23 may send one with a revision ahead of events it
  // has not sent yet.)
  // The key's value does not matter, so a Put that timed out is sent
  // again (to another member: the client passes over the one that timed
  // out).
  absl::StatusOr<int64_t> synced = client_->Put(layout_.root() + "sync", "");
  if (!synced.ok()) synced = client_->Put(layout_.root() + "sync", "");
  if (!synced.ok()) {
    Log(absl::StrCat("cannot write the sync key: ",
                     synced.status().ToString()));
  }
  {
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&caught_up),
                             client_->attempt_timeout())) {
      return;
    }
  }
  // The watch brought nothing for a whole call attempt: its member may
  // hang (stopped, or cut off without a reset, which gRPC's keepalive
  // notices only after 15 s, and the watch's own hang check after two call
  // attempts; a write need not wait that long). It is reopened elsewhere
  // from the last revision applied, and its member passed over for a while.
  ReopenWatch(
      watching,
      absl::StrCat("the watch has not brought revision ", revision, " within ",
                   absl::FormatDuration(client_->attempt_timeout())));
  absl::MutexLock lock(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(&caught_up), options_.index_wait)) {
    Log(absl::StrCat("the index is behind revision ", revision, " after ",
                     absl::FormatDuration(options_.index_wait),
                     "; answering anyway"));
  }
}

void EtcdStore::ReopenWatch(const EtcdWatch* watch, const std::string& why) {
  absl::MutexLock lock(&watch_mu_);
  if (watch_ == nullptr || watch_ != watch || stopping_) return;
  Log(why + "; reopening it on another member");
  client_->ReportStreamFailure(watch_->channel());
  watch_->Cancel();
}

absl::StatusOr<int64_t> EtcdStore::LoadSnapshot(bool resync) {
  std::vector<KeyValue> kvs;
  RangeRequest page;
  page.key = layout_.root();
  page.range_end = PrefixEnd(layout_.root());
  page.limit = kSnapshotPage;
  int64_t revision = 0;
  while (true) {
    CHAT_ASSIGN_OR_RETURN(RangeResult result, client_->Range(page));
    if (revision == 0) revision = result.revision;
    page.revision = revision;
    for (KeyValue& kv : result.kvs) kvs.push_back(std::move(kv));
    if (!result.more || kvs.empty()) break;
    page.key = kvs.back().key + std::string(1, '\0');
  }
  std::vector<WatchEvent> events;
  absl::flat_hash_set<std::string> present;
  for (KeyValue& kv : kvs) {
    present.insert(kv.key);
    WatchEvent event;
    event.type = WatchEvent::Type::kPut;
    event.kv = std::move(kv);
    events.push_back(std::move(event));
  }
  absl::MutexLock lock(&mu_);
  if (resync) {
    // What the index holds and the snapshot does not: gone meanwhile.
    auto gone = [&](const std::string& key) {
      if (present.contains(key)) return;
      WatchEvent event;
      event.type = WatchEvent::Type::kDelete;
      event.kv.key = key;
      event.kv.mod_revision = revision;
      events.push_back(std::move(event));
    };
    for (const auto& [key, slot] : records_) gone(layout_.Name(key));
    for (const auto& [key, slot] : bindings_) gone(layout_.Binding(key));
    for (const auto& [key, mod] : owner_revs_) gone(key);
  }
  std::vector<PendingReservation> reservations;
  for (const WatchEvent& event : events) {
    CHAT_RETURN_IF_ERROR(
        ApplyEvent(event, {}, reservations, !resync, revision));
  }
  applied_ = std::max(applied_, revision);
  // Watchers were told the differences, at the snapshot's revision; what
  // led to it cannot be replayed.
  hub_.ResetHistory(revision);
  return revision;
}

absl::Status EtcdStore::ApplyEvent(
    const WatchEvent& event,
    const absl::flat_hash_set<std::pair<std::string, int64_t>>& ended,
    std::vector<PendingReservation>& reservations, bool strict,
    int64_t revision) {
  const std::string& key = event.kv.key;
  const bool put = event.type == WatchEvent::Type::kPut;
  const MonoTime now = clock_.Monotonic();
  if (absl::StartsWith(key, owner_rev_prefix_)) {
    if (put) {
      owner_revs_[key] = event.kv.mod_revision;
    } else {
      owner_revs_.erase(key);
    }
    return absl::OkStatus();
  }
  if (key == layout_.StaticRev()) {
    static_rev_ = put ? event.kv.mod_revision : 0;
    return absl::OkStatus();
  }
  const EtcdLayout::Parsed parsed = layout_.Parse(key);
  if (parsed.kind == EtcdLayout::Parsed::Kind::kBinding) {
    if (!put) {
      bindings_.erase(parsed.name_key);
      return absl::OkStatus();
    }
    absl::StatusOr<DecodedBinding> decoded = DecodeBinding(event.kv.value);
    if (!decoded.ok()) {
      if (strict) return decoded.status();
      Log(absl::StrCat("ignoring ", key, ": ", decoded.status().ToString()));
      return absl::OkStatus();
    }
    BindingSlot& slot = bindings_[parsed.name_key];
    slot.binding = std::move(decoded->binding);
    slot.online_lease = decoded->online_lease;
    slot.mod_revision = event.kv.mod_revision;
    return absl::OkStatus();
  }
  if (parsed.kind != EtcdLayout::Parsed::Kind::kName) {
    return absl::OkStatus();
  }
  const std::string& name_key = parsed.name_key;
  auto it = records_.find(name_key);
  std::optional<Record> before;
  if (it != records_.end()) before = Live(it->second.record, now);
  if (!put) {
    if (it == records_.end()) return absl::OkStatus();
    EventReason reason = EventReason::kExpired;
    if (before->is_static() ||
        ended.contains(std::make_pair(name_key, event.kv.mod_revision))) {
      reason = EventReason::kUnregistered;
    }
    for (auto& change : ChangeEvents(&*before, nullptr, now, reason)) {
      change.revision = revision;
      hub_.Publish(name_key, change);
    }
    if (reason == EventReason::kExpired) {
      if (auto binding = bindings_.find(name_key);
          binding != bindings_.end() && binding->second.online_lease != 0) {
        reservations.push_back(
            PendingReservation{name_key, binding->second, *before});
      }
    }
    lease_seconds_.erase(it->second.etcd_lease);
    records_.Erase(name_key);
    return absl::OkStatus();
  }
  absl::StatusOr<Record> decoded = DecodeName(event.kv.value, event.kv.lease);
  if (!decoded.ok()) {
    if (strict) return decoded.status();
    Log(absl::StrCat("ignoring ", key, ": ", decoded.status().ToString()));
    return absl::OkStatus();
  }
  Record& after = *decoded;
  after.expires_at = now + after.ttl;
  for (auto& change : ChangeEvents(before ? &*before : nullptr, &after, now,
                                   EventReason::kUnregistered)) {
    change.revision = revision;
    hub_.Publish(name_key, change);
  }
  if (it != records_.end() && it->second.etcd_lease != event.kv.lease) {
    lease_seconds_.erase(it->second.etcd_lease);
  }
  if (event.kv.lease != 0 && !lease_seconds_.contains(event.kv.lease)) {
    lease_seconds_[event.kv.lease] = LeaseSeconds(after.ttl);
  }
  records_.Put(name_key, std::move(after),
               NameSlotExtra{event.kv.mod_revision, event.kv.lease});
  return absl::OkStatus();
}

void EtcdStore::WriteReservation(const PendingReservation& pending) {
  {
    // Not at shutdown: another registry, or this one's next start, writes
    // it (WriteMissedReservations).
    absl::MutexLock lock(&watch_mu_);
    if (stopping_) return;
  }
  BindingRecord reserved = pending.slot.binding;
  reserved.reserved_until = clock_.Wall() + options_.lease_policy.reserve;
  TxnRequest txn;
  txn.compares.push_back(Compare::ModifiedAt(layout_.Binding(pending.name_key),
                                             pending.slot.mod_revision));
  txn.compares.push_back(Compare::Absent(layout_.Name(pending.name_key)));
  txn.success.push_back(
      Op::Put(layout_.Binding(pending.name_key), EncodeBinding(reserved, 0)));
  absl::StatusOr<TxnResult> result = txn_batcher_.Commit(txn);
  if (!result.ok()) {
    // Not lost: the binding stays online (it holds the name, for its key
    // only) until a registry writes it, at the latest at its next start.
    Log(absl::StrCat("the reservation of ", pending.name_key,
                     " was not written (", result.status().ToString(),
                     "); another registry, or the next start, writes it"));
  }
}

void EtcdStore::WriteMissedReservations() {
  std::vector<PendingReservation> missed;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [key, slot] : bindings_) {
      if (slot.online_lease != 0 && !records_.contains(key)) {
        missed.push_back(PendingReservation{key, slot, Record{}});
      }
    }
  }
  PostReservations(std::move(missed));
}

void EtcdStore::WatchLoop() {
  // While the watch is down its opening is tried every 200 ms; the log
  // says when it is down and when it is back, not every try.
  constexpr Millis kRetryPause{200};
  WatchOutageLog outages("watch", kRetryPause, clock_,
                         [](const std::string& line) { Log(line); });
  while (true) {
    int64_t next;
    {
      absl::ReaderMutexLock lock(&mu_);
      next = applied_ + 1;
    }
    WatchOptions options = WatchOptions::Prefix(layout_.root(), next);
    options.progress_notify = true;
    absl::StatusOr<std::unique_ptr<EtcdWatch>> opened =
        EtcdWatch::Open(client_.get(), options);
    {
      absl::MutexLock lock(&watch_mu_);
      if (stopping_) return;
      if (!opened.ok()) {
        outages.OpenFailed(opened.status());
        watch_mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                                   absl::FromChrono(kRetryPause));
        continue;
      }
      watch_ = opened->get();
    }
    outages.Opened(client_->EndpointName((*opened)->channel()), next);
    absl::Status ended;
    while (true) {
      absl::StatusOr<WatchBatch> batch = (*opened)->Next();
      if (!batch.ok()) {
        ended = batch.status();
        break;
      }
      ApplyBatch(*batch);
    }
    {
      absl::MutexLock lock(&watch_mu_);
      watch_ = nullptr;
      if (stopping_) return;
    }
    outages.Ended();
    if (IsCompacted(ended)) {
      Log("the watch fell behind etcd's compaction; reading a snapshot");
      absl::StatusOr<int64_t> resynced = LoadSnapshot(/*resync=*/true);
      if (!resynced.ok()) {
        Log(absl::StrCat("resync failed (trying again): ",
                         resynced.status().ToString()));
      }
      WriteMissedReservations();
    } else if (ended.code() == absl::StatusCode::kUnavailable) {
      // Its member died or hangs (EtcdWatch's hang check): the next one
      // goes to another member and replays what this one missed.
      Log(absl::StrCat("watch ended (reopening on another member): ",
                       ended.ToString()));
    } else if (ended.code() != absl::StatusCode::kCancelled) {
      Log(absl::StrCat("watch ended: ", ended.ToString()));
    }
  }
}

void EtcdStore::ApplyBatch(const WatchBatch& batch) {
  // Unregister and Release put ends/<name> in the Txn that deletes the
  // name: a DELETE with that put at its revision is not an expiry.
  absl::flat_hash_set<std::pair<std::string, int64_t>> ended;
  for (const WatchEvent& event : batch.events) {
    if (event.type == WatchEvent::Type::kPut &&
        absl::StartsWith(event.kv.key, ends_prefix_)) {
      ended.emplace(event.kv.key.substr(ends_prefix_.size()),
                    event.kv.mod_revision);
    }
  }
  std::vector<PendingReservation> reservations;
  {
    absl::MutexLock lock(&mu_);
    for (const WatchEvent& event : batch.events) {
      ApplyEvent(event, ended, reservations, /*strict=*/false,
                 event.kv.mod_revision)
          .IgnoreError();
    }
    // A batch of events says it is complete only up to its last event (a
    // watch catching up may send a long history in several batches, each
    // with the newest revision in its header). An empty one (a progress
    // notification) is not believed: etcd 3.4.23 may send one ahead of
    // events still to come.
    if (!batch.events.empty()) {
      applied_ = std::max(applied_, batch.events.back().kv.mod_revision);
      hub_.Advance(applied_);
    }
  }
  PostReservations(std::move(reservations));
}

void EtcdStore::PostReservations(std::vector<PendingReservation> pending) {
  // Off the watch thread: written in order with the other writes of their
  // names, merged with each other by the batcher, while the index goes on
  // applying events. Written here one after another, the thousands that
  // end together after an outage held the index back for seconds, and
  // every write waiting to see itself in it.
  for (PendingReservation& reservation : pending) {
    const std::string name_key = reservation.name_key;
    workers_.Post(name_key, [this, reservation = std::move(reservation)] {
      WriteReservation(reservation);
    });
  }
}

}  // namespace chat::registry::etcd::store_internal
