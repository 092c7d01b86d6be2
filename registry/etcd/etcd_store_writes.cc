// The etcd Store's writes (etcd_store_internal.h): each decided on the
// index and committed as one etcd Txn whose compares say that what was read
// is still what etcd holds (CommitDecided), Register with its etcd leases.

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/random.h"
#include "common/status.h"
#include "registry/etcd/etcd_layout.h"
#include "registry/etcd/etcd_store_internal.h"
#include "registry/names.h"
#include "registry/store/store_rules.h"

namespace chat::registry::etcd::store_internal {
namespace {

// What DecideRegister's new_lease_id() returns: the etcd lease is granted
// only once the decision says a new lease is needed.
constexpr char kNewLease[] = "new";
// 32 random bytes: the secret half of a lease id.
constexpr int kSecretBytes = 32;
// Rounds of one write whose Txn's outcome was unknown and that was surely
// not applied, each decided again, before the error is answered: a member
// that hangs costs one round; every member failing in turn is an outage.
constexpr int kMaxUnknownOutcomes = 3;

Compare AtOrAbsent(std::string key, int64_t mod_revision) {
  return mod_revision == 0 ? Compare::Absent(std::move(key))
                           : Compare::ModifiedAt(std::move(key), mod_revision);
}

}  // namespace

void EtcdStore::RegisterAsync(const RegisterRequest& request,
                              LeaseCallback done) {
  if (absl::Status valid = ValidateRegisterRequest(request); !valid.ok()) {
    done(valid);
    return;
  }
  workers_.Post(NameKey(request.name), [this, request, done = std::move(done)] {
    done(DoRegister(request));
  });
}

absl::StatusOr<Lease> EtcdStore::Register(const RegisterRequest& request) {
  CHAT_RETURN_IF_ERROR(ValidateRegisterRequest(request));
  return DoRegister(request);
}

void EtcdStore::UnregisterAsync(const std::string& name,
                                const std::string& lease_id,
                                DoneCallback done) {
  if (absl::Status valid = ValidateName(name); !valid.ok()) {
    done(valid);
    return;
  }
  workers_.Post(NameKey(name), [this, name, lease_id, done = std::move(done)] {
    done(Unregister(name, lease_id));
  });
}

absl::Status EtcdStore::Unregister(const std::string& name,
                                   const std::string& lease_id) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  const std::string key = NameKey(name);
  int64_t ended_lease = 0;
  const absl::Status committed =
      CommitDecided(name, [&]() -> absl::StatusOr<Round> {
        CHAT_ASSIGN_OR_RETURN(ReadState read, ReadHolder(name, key, lease_id));
        const absl::Time wall_now = clock_.Wall();
        Round round;
        TxnRequest& txn = round.txn;
        txn.compares.push_back(
            Compare::ModifiedAt(layout_.Name(key), read.name_mod));
        txn.compares.push_back(
            AtOrAbsent(layout_.Binding(key),
                       read.binding ? read.binding->mod_revision : 0));
        txn.success.push_back(Op::Delete(layout_.Name(key)));
        // On the name's own lease: it goes when the lease ends.
        txn.success.push_back(
            Op::Put(layout_.End(key), "unregistered", read.etcd_lease));
        if (read.binding) {
          std::optional<BindingRecord> after =
              BindingAfterLeaseEnds(read.state.binding, *read.state.record,
                                    options_.lease_policy, wall_now);
          if (after != read.state.binding) {
            txn.success.push_back(
                Op::Put(layout_.Binding(key), EncodeBinding(*after, 0)));
          }
        }
        ended_lease = read.etcd_lease;
        round.applied_anyway =
            [this, &key, name_mod = read.name_mod]() -> std::optional<int64_t> {
          auto back = client_->Range(RangeRequest::Key(layout_.Name(key)));
          if (!back.ok()) return std::nullopt;
          // Still the incarnation read: not applied. Gone or replaced:
          // the name this call ended is gone either way.
          if (!back->kvs.empty() && back->kvs[0].mod_revision == name_mod) {
            return int64_t{0};
          }
          return back->kvs.empty() ? back->revision : back->kvs[0].mod_revision;
        };
        return round;
      });
  if (!committed.ok()) return committed;
  // The Txn deleted the name: nobody waits for the lease to end.
  lease_pool_.Discard(ended_lease);
  return absl::OkStatus();
}

absl::StatusOr<Entry> EtcdStore::PutStatic(
    const std::string& name, const std::string& address,
    const std::vector<std::string>& services) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  CHAT_RETURN_IF_ERROR(ValidateAddress(address));
  const std::string key = NameKey(name);
  Entry entry;
  const absl::Status committed =
      CommitDecided(name, [&]() -> absl::StatusOr<Round> {
        const ReadState read = Read(key, "");
        const MonoTime now = clock_.Monotonic();
        const absl::Time wall_now = clock_.Wall();
        CHAT_ASSIGN_OR_RETURN(
            Record record,
            DecidePutStatic(name, address, services, read.state,
                            options_.lease_policy, options_.name_quotas,
                            read.counts, now, wall_now));
        const bool is_new = read.name_mod == 0;
        Round round;
        TxnRequest& txn = round.txn;
        txn.compares.push_back(AtOrAbsent(layout_.Name(key), read.name_mod));
        txn.compares.push_back(
            AtOrAbsent(layout_.Binding(key),
                       read.binding ? read.binding->mod_revision : 0));
        txn.success.push_back(Op::Put(layout_.Name(key), EncodeName(record)));
        if (is_new) {
          // Static entries are counted exactly: every new one bumps this key,
          // so two that pass on the same count cannot both commit.
          txn.compares.push_back(
              AtOrAbsent(layout_.StaticRev(), read.static_rev_mod));
          txn.success.push_back(Op::Put(layout_.StaticRev(), ""));
        }
        if (read.binding &&
            BindingForgetAt(read.binding->binding, options_.lease_policy) <=
                wall_now) {
          // Over (DecidePutStatic refuses a name still bound) and its last
          // proof out of the skew window: forget it. One still in the window
          // stays, so a proof captured before cannot be used again.
          txn.success.push_back(Op::Delete(layout_.Binding(key)));
        }
        entry = ToEntry(record, now);
        return round;
      });
  if (!committed.ok()) return committed;
  return entry;
}

absl::Status EtcdStore::RemoveStatic(const std::string& name) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  const std::string key = NameKey(name);
  return CommitDecided(name, [&]() -> absl::StatusOr<Round> {
    const ReadState read = Read(key, "");
    CHAT_RETURN_IF_ERROR(
        CheckRemoveStatic(name, read.state.record, clock_.Monotonic()));
    Round round;
    round.txn.compares.push_back(
        Compare::ModifiedAt(layout_.Name(key), read.name_mod));
    round.txn.success.push_back(Op::Delete(layout_.Name(key)));
    return round;
  });
}

absl::Status EtcdStore::Release(const std::string& name) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  const std::string key = NameKey(name);
  int64_t ended_lease = 0;
  const absl::Status committed =
      CommitDecided(name, [&]() -> absl::StatusOr<Round> {
        const ReadState read = Read(key, "");
        const MonoTime now = clock_.Monotonic();
        const absl::Time wall_now = clock_.Wall();
        CHAT_RETURN_IF_ERROR(CheckRelease(
            name, read.state, options_.lease_policy, now, wall_now));
        Round round;
        TxnRequest& txn = round.txn;
        txn.compares.push_back(AtOrAbsent(layout_.Name(key), read.name_mod));
        txn.compares.push_back(Compare::ModifiedAt(layout_.Binding(key),
                                                   read.binding->mod_revision));
        // What it leaves keeps the last proof time for the skew window.
        if (std::optional<BindingRecord> after = BindingAfterRelease(
                read.binding->binding, options_.lease_policy, wall_now)) {
          txn.success.push_back(
              Op::Put(layout_.Binding(key), EncodeBinding(*after, 0)));
        } else {
          txn.success.push_back(Op::Delete(layout_.Binding(key)));
        }
        // The lease of the bound key goes with the binding.
        const bool lease_goes =
            read.state.record && !read.state.record->is_static() &&
            read.state.record->public_key == read.state.binding->key;
        ended_lease = 0;
        if (lease_goes) {
          txn.success.push_back(Op::Delete(layout_.Name(key)));
          txn.success.push_back(
              Op::Put(layout_.End(key), "released", read.etcd_lease));
          ended_lease = read.etcd_lease;
        }
        return round;
      });
  if (!committed.ok()) return committed;
  lease_pool_.Discard(ended_lease);
  return absl::OkStatus();
}

absl::Status EtcdStore::Contended(const std::string& name) {
  return absl::UnavailableError(absl::StrCat(
      "\"", name,
      "\" kept changing at other registries while this one decided; try "
      "again"));
}

absl::Status EtcdStore::CommitDecided(
    const std::string& name,
    absl::FunctionRef<absl::StatusOr<Round>()> decide) {
  int unknown_outcomes = 0;
  for (int attempt = 0; attempt < options_.max_rounds; ++attempt) {
    CHAT_ASSIGN_OR_RETURN(Round round, decide());
    // A lost compare reads what the compares were about, so the wait
    // below is for the writes that won, not for the store's revision
    // (which may be a key outside the store's root, bringing no event).
    for (const Compare& compare : round.txn.compares) {
      round.txn.failure.push_back(Op::Get(compare.key));
    }
    // With the writes of other names made at the same moment: one raft
    // proposal for all (etcd_txn_batcher.h).
    absl::StatusOr<TxnResult> result = txn_batcher_.Commit(round.txn);
    if (!result.ok()) {
      if (!MaybeApplied(result.status())) return result.status();
      const std::optional<int64_t> revision =
          round.applied_anyway ? round.applied_anyway() : ReadBack(round.txn);
      if (revision && *revision > 0) {
        WaitApplied(*revision);
        if (round.committed) round.committed();
        return absl::OkStatus();
      }
      if (!revision || ++unknown_outcomes >= kMaxUnknownOutcomes) {
        return result.status();
      }
      Log(absl::StrCat("a write about \"", name, "\" is not in etcd after ",
                       result.status().ToString(), "; deciding again"));
      continue;
    }
    if (result->succeeded) {
      WaitApplied(result->revision);
      if (round.committed) round.committed();
      return absl::OkStatus();
    }
    WaitApplied(RevisionThatWon(round.txn, *result));
  }
  return Contended(name);
}

std::optional<int64_t> EtcdStore::ReadBack(const TxnRequest& txn) {
  TxnRequest read;
  for (const Op& op : txn.success) read.success.push_back(Op::Get(op.key));
  absl::StatusOr<TxnResult> back = client_->Txn(read);
  if (!back.ok() || back->results.size() != txn.success.size()) {
    return std::nullopt;
  }
  int64_t put_at = 0;
  for (size_t i = 0; i < txn.success.size(); ++i) {
    const Op& op = txn.success[i];
    const std::vector<KeyValue>& kvs = back->results[i].kvs;
    if (op.kind == Op::Kind::kDelete) {
      if (!kvs.empty()) return int64_t{0};
      continue;
    }
    if (op.kind != Op::Kind::kPut) continue;
    if (kvs.empty() || kvs[0].value != op.value || kvs[0].lease != op.lease ||
        (put_at != 0 && kvs[0].mod_revision != put_at)) {
      return int64_t{0};
    }
    put_at = kvs[0].mod_revision;
  }
  return put_at != 0 ? put_at : back->revision;
}

int64_t EtcdStore::RevisionThatWon(const TxnRequest& txn,
                                   const TxnResult& lost) {
  int64_t revision = 0;
  for (size_t i = 0; i < txn.compares.size(); ++i) {
    if (i >= lost.results.size()) return lost.revision;
    const std::vector<KeyValue>& kvs = lost.results[i].kvs;
    if (kvs.empty()) {
      const Compare& compare = txn.compares[i];
      const bool expected_absent =
          compare.target == Compare::Target::kCreateRevision &&
          compare.number == 0;
      if (!expected_absent) return lost.revision;
      continue;
    }
    revision = std::max(revision, kvs[0].mod_revision);
  }
  return revision;
}

absl::StatusOr<Lease> EtcdStore::DoRegister(const RegisterRequest& request) {
  const std::string key = NameKey(request.name);
  const std::string owner = NameOwner(request);
  // An etcd lease taken for this call, kept across rounds; discarded when
  // no round used it.
  std::optional<LeaseGrant> taken;
  // A Txn on `taken` whose outcome is unknown: the lease must stay (it
  // ends at its TTL).
  bool maybe_attached = false;
  bool taken_used = false;
  const std::string secret = RandomHex(kSecretBytes);
  std::optional<Lease> granted;
  absl::Status committed =
      CommitDecided(request.name, [&]() -> absl::StatusOr<Round> {
        const ReadState read = Read(key, owner);
        const MonoTime now = clock_.Monotonic();
        const absl::Time wall_now = clock_.Wall();
        CHAT_ASSIGN_OR_RETURN(
            RegisterDecision decision,
            DecideRegister(request, read.state, options_.lease_policy,
                           options_.name_quotas, read.counts, now, wall_now,
                           [] { return std::string(kNewLease); }));
        Record& record = decision.record;
        const int64_t seconds = LeaseSeconds(record.ttl);
        int64_t etcd_lease = read.etcd_lease;
        // A new lease, or a renewal asking for more than etcd's lease has
        // (etcd cannot lengthen a lease: the name moves to a new one).
        const bool fresh =
            record.lease_id == kNewLease ||
            (read.etcd_lease != 0 && seconds > LeaseGrantedSeconds(read));
        if (fresh) {
          if (!taken || taken->ttl_seconds < seconds) {
            if (taken) lease_pool_.Discard(taken->id);
            taken.reset();
            CHAT_ASSIGN_OR_RETURN(taken, lease_pool_.Take(seconds));
          }
          etcd_lease = taken->id;
          record.lease_id = MakeLeaseId(taken->id, secret);
        }
        Round round;
        TxnRequest& txn = round.txn;
        txn.compares.push_back(AtOrAbsent(layout_.Name(key), read.name_mod));
        txn.compares.push_back(
            AtOrAbsent(layout_.Binding(key),
                       read.binding ? read.binding->mod_revision : 0));
        txn.success.push_back(
            Op::Put(layout_.Name(key), EncodeName(record), etcd_lease));
        if (decision.binding && request.public_key) {
          // Online under the lease that now holds the name, with the proof
          // time DecideRegister checked (CheckProofFreshness) and records.
          // The compare of the binding's revision above makes check and
          // record one step across registries: of two registrations with one
          // proof, the second reads the first's binding and is refused.
          txn.success.push_back(
              Op::Put(layout_.Binding(key),
                      EncodeBinding(*decision.binding, etcd_lease)));
        } else if (read.binding &&
                   BindingForgetAt(read.binding->binding,
                                   options_.lease_policy) <= wall_now) {
          // A keyless registration takes only a name whose binding is over;
          // the binding is forgotten once its last proof is out of the skew
          // window too, and kept (binding nothing) until then.
          txn.success.push_back(Op::Delete(layout_.Binding(key)));
        }
        if (!owner.empty()) {
          // Names per owner are counted exactly: every registration of the
          // owner bumps this key, so two that pass on the same count cannot
          // both commit.
          txn.compares.push_back(
              AtOrAbsent(layout_.OwnerRev(owner), read.owner_rev_mod));
          txn.success.push_back(Op::Put(layout_.OwnerRev(owner), ""));
        }
        const int64_t replaced = fresh ? read.etcd_lease : 0;
        round.applied_anyway =
            [this, &maybe_attached, &key, etcd_lease, fresh,
             value = EncodeName(record)]() -> std::optional<int64_t> {
          // Applied after all when the name hangs on our lease now.
          auto back = client_->Range(RangeRequest::Key(layout_.Name(key)));
          if (back.ok() && !back->kvs.empty() &&
              back->kvs[0].lease == etcd_lease && back->kvs[0].value == value) {
            return back->kvs[0].mod_revision;
          }
          // A write that may yet be applied must keep its lease.
          if (fresh) maybe_attached = true;
          if (!back.ok()) return std::nullopt;
          // Not there as of this linearizable read: not applied.
          return int64_t{0};
        };
        round.committed = [this, &granted, &taken_used, record, now, fresh,
                           etcd_lease, replaced] {
          taken_used = fresh;
          if (!fresh) {
            // A renewal by Register renews the etcd lease too.
            absl::Notification renewed;
            keep_alive_.RenewOnce(
                etcd_lease, [&](absl::StatusOr<int64_t>) { renewed.Notify(); });
            renewed.WaitForNotification();
          }
          granted = Granted(record, now, replaced);
        };
        return round;
      });
  if (!committed.ok()) {
    if (taken && !maybe_attached) lease_pool_.Discard(taken->id);
    return committed;
  }
  // A round that renewed the lease it read left `taken` unused.
  if (taken && !taken_used) lease_pool_.Discard(taken->id);
  return *std::move(granted);
}

Lease EtcdStore::Granted(Record record, MonoTime now, int64_t replaced) {
  if (replaced != 0) lease_pool_.Discard(replaced);
  record.expires_at = now + record.ttl;
  return Lease{record.lease_id, ToEntry(record, now)};
}

int64_t EtcdStore::LeaseGrantedSeconds(const ReadState& read) {
  absl::ReaderMutexLock lock(&mu_);
  auto it = lease_seconds_.find(read.etcd_lease);
  return it == lease_seconds_.end() ? LeaseSeconds(read.state.record->ttl)
                                    : it->second;
}

}  // namespace chat::registry::etcd::store_internal
