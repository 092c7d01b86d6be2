// The etcd Store (etcd_store_internal.h): opening it, the reads served from
// the index, renewals, and forgetting bindings that are over; and the
// deployment's one admin token.

#include "registry/etcd/etcd_store.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/identity.h"
#include "common/status.h"
#include "registry/etcd/etcd_layout.h"
#include "registry/etcd/etcd_store_internal.h"
#include "registry/names.h"
#include "registry/store/store_rules.h"

namespace chat::registry::etcd {
namespace store_internal {
namespace {

// How often ExpireDue() looks for bindings to forget, and how many it
// deletes at most each time (one Txn each).
constexpr Millis kSweepEvery(1000);
constexpr size_t kForgetPerSweep = 100;

// How readers see a record at `now`: every record the index holds, as
// live.
auto Shown(MonoTime now) {
  return [now](const Record& record) -> std::optional<Entry> {
    return ToEntry(Live(record, now), now);
  };
}

}  // namespace

EtcdStore::EtcdStore(const EtcdStoreOptions& options, const Clock& clock,
                     std::unique_ptr<EtcdClient> client)
    : options_(options),
      clock_(clock),
      layout_(StoreRoot(options.prefix)),
      ends_prefix_(layout_.root() + "ends/"),
      owner_rev_prefix_(layout_.root() + "owner_rev/"),
      client_(std::move(client)),
      // On the real clock: its pauses wait for etcd, not for the rules.
      keep_alive_(client_.get(), RealClock(), nullptr),
      // On the real clock too: a pooled lease ages in etcd's time.
      lease_pool_(client_.get(), RealClock()),
      txn_batcher_([client = client_.get()](const TxnRequest& txn) {
        return client->Txn(txn);
      }),
      hub_(this, options.max_watch_backlog_bytes, "max-watch-backlog-kb",
           options.watch_history),
      workers_(options.workers) {}

EtcdStore::~EtcdStore() {
  // How well the pool kept up: a registration that found none ready waited
  // for a LeaseGrant of its own before its Txn.
  if (const int64_t hits = lease_pool_.hits(), misses = lease_pool_.misses();
      hits + misses > 0) {
    Log(absl::StrCat("lease pool: ", hits, " leases taken ready, ", misses,
                     " granted while a registration waited"));
  }
  // How much group commit saved: writes that went to etcd together.
  if (const int64_t sent = txn_batcher_.merged_sent(); sent > 0) {
    Log(absl::StrCat("group commit: ", txn_batcher_.merged_txns(),
                     " writes in ", sent, " etcd Txns, ",
                     txn_batcher_.sent_again(),
                     " sent again alone after theirs failed"));
  }
  hub_.CancelAll();
  {
    absl::MutexLock lock(&watch_mu_);
    stopping_ = true;
    if (watch_ != nullptr) watch_->Cancel();
  }
  if (watcher_.joinable()) watcher_.join();
}

absl::Status EtcdStore::Start() {
  CHAT_ASSIGN_OR_RETURN(int64_t revision, LoadSnapshot(/*resync=*/false));
  {
    absl::MutexLock lock(&mu_);
    applied_ = revision;
  }
  watcher_ = std::thread([this] { WatchLoop(); });
  WriteMissedReservations();
  return absl::OkStatus();
}

absl::StatusOr<Millis> EtcdStore::KeepAlive(const std::string& name,
                                            const std::string& lease_id) {
  absl::StatusOr<Millis> answer;
  absl::Notification answered;
  KeepAliveAsync(name, lease_id, [&](absl::StatusOr<Millis> ttl) {
    answer = std::move(ttl);
    answered.Notify();
  });
  answered.WaitForNotification();
  return answer;
}

void EtcdStore::KeepAliveAsync(const std::string& name,
                               const std::string& lease_id, TtlCallback done) {
  if (absl::Status valid = ValidateName(name); !valid.ok()) {
    done(valid);
    return;
  }
  std::string key = NameKey(name);
  absl::StatusOr<ReadState> read = ReadHolder(name, key, lease_id);
  if (!read.ok()) {
    done(read.status());
    return;
  }
  const MonoTime deadline = RealClock().Monotonic() +
                            absl::ToChronoMilliseconds(client_->call_timeout());
  Renew(name, std::move(key), *std::move(read), 0, deadline, std::move(done));
}

void EtcdStore::Renew(std::string name, std::string key, ReadState read,
                      int attempt, MonoTime deadline, TtlCallback done) {
  // A renewal is idempotent: one lost with a stream that broke (its
  // member died, hung, or answered too slowly) goes again on the stream
  // that replaces it, as often as the call's deadline allows and at least
  // twice. Each new stream starts at a member not failing at the time, but
  // under load a healthy member may be passed over too and a hung one come
  // back into the rotation, so two tries can both meet a broken stream.
  // Bounded in count too: a keep-alive shutting down answers at once.
  constexpr int kMaxAttempts = 8;
  const int64_t etcd_lease = read.etcd_lease;
  keep_alive_.RenewOnce(
      etcd_lease,
      [this, name = std::move(name), key = std::move(key),
       read = std::move(read), attempt, deadline,
       done = std::move(done)](absl::StatusOr<int64_t> ttl_seconds) mutable {
        if (ttl_seconds.status().code() == absl::StatusCode::kUnavailable &&
            attempt + 1 < kMaxAttempts &&
            (attempt < 1 || RealClock().Monotonic() < deadline)) {
          Renew(std::move(name), std::move(key), std::move(read), attempt + 1,
                deadline, std::move(done));
          return;
        }
        if (!ttl_seconds.ok()) {
          if (ttl_seconds.status().code() == absl::StatusCode::kNotFound) {
            done(absl::NotFoundError(
                absl::StrCat("no live lease holds \"", name,
                             "\" (it expired; register again)")));
            return;
          }
          done(ttl_seconds.status());
          return;
        }
        const Millis ttl = read.state.record->ttl;
        {
          absl::MutexLock lock(&mu_);
          if (auto it = records_.find(key);
              it != records_.end() &&
              it->second.etcd_lease == read.etcd_lease) {
            it->second.record.expires_at = clock_.Monotonic() + ttl;
          }
        }
        done(ttl);
      });
}

absl::Status EtcdStore::VerifyLease(const std::string& name,
                                    const std::string& lease_id) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  return ReadHolder(name, NameKey(name), lease_id).status();
}

absl::StatusOr<std::vector<Entry>> EtcdStore::ExpireDue() {
  ForgetEndedBindings();
  return std::vector<Entry>{};
}

absl::StatusOr<Binding> EtcdStore::GetBinding(const std::string& name) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  const ReadState read = Read(NameKey(name), "");
  return BindingOf(name, read.state, options_.lease_policy, clock_.Monotonic(),
                   clock_.Wall());
}

absl::StatusOr<Entry> EtcdStore::Resolve(const std::string& name) {
  CHAT_RETURN_IF_ERROR(ValidateName(name));
  absl::ReaderMutexLock lock(&mu_);
  const MonoTime now = clock_.Monotonic();
  std::optional<Entry> entry = records_.Resolve(NameKey(name), Shown(now));
  if (!entry) {
    return absl::NotFoundError(
        absl::StrCat("no peer named \"", name, "\" is registered"));
  }
  return *std::move(entry);
}

ListPage EtcdStore::List(const std::string& prefix, size_t page_size,
                         const std::string& page_token,
                         const std::string& service) {
  absl::ReaderMutexLock lock(&mu_);
  return records_.List(NameKey(prefix), page_size, page_token, service,
                       Shown(clock_.Monotonic()));
}

std::unique_ptr<Watch> EtcdStore::Subscribe(const WatchScope& scope,
                                            int64_t resume_after,
                                            std::function<void()> on_ready) {
  return hub_.Subscribe(WatchKeys(scope), resume_after, std::move(on_ready));
}

void EtcdStore::ReadSnapshotPage(const WatchKeys& scope,
                                 const std::string& after, size_t max,
                                 PageTaker take) {
  // Shared is enough: Publish() runs under mu_ held exclusively.
  absl::ReaderMutexLock lock(&mu_);
  IndexPage page =
      records_.ReadSnapshotPage(scope, after, max, Shown(clock_.Monotonic()));
  take(std::move(page.entries), page.last_key, page.done);
}

size_t EtcdStore::Size() {
  absl::ReaderMutexLock lock(&mu_);
  return records_.size();
}

size_t EtcdStore::CountOffering(const std::string& service) {
  absl::ReaderMutexLock lock(&mu_);
  return records_.counts().Offering(service);
}

size_t EtcdStore::WatchBacklogBytes() { return hub_.QueuedBytes(); }

void EtcdStore::CancelWatches() { hub_.CancelAll(); }

void EtcdStore::ForgetEndedBindings() {
  const MonoTime now = clock_.Monotonic();
  {
    absl::MutexLock lock(&sweep_mu_);
    if (now < next_sweep_) return;
    next_sweep_ = now + kSweepEvery;
  }
  const absl::Time wall_now = clock_.Wall();
  std::vector<std::pair<std::string, int64_t>> over;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [key, slot] : bindings_) {
      if (over.size() == kForgetPerSweep) break;
      if (slot.online_lease == 0 &&
          BindingForgetAt(slot.binding, options_.lease_policy) <= wall_now) {
        over.emplace_back(key, slot.mod_revision);
      }
    }
  }
  for (const auto& [key, mod_revision] : over) {
    TxnRequest txn;
    txn.compares.push_back(
        Compare::ModifiedAt(layout_.Binding(key), mod_revision));
    txn.success.push_back(Op::Delete(layout_.Binding(key)));
    if (absl::StatusOr<TxnResult> result = client_->Txn(txn); !result.ok()) {
      Log(absl::StrCat(
          "forgetting the binding of ", key,
          " failed (tried again later): ", result.status().ToString()));
      return;
    }
  }
}

}  // namespace store_internal

absl::StatusOr<std::unique_ptr<Store>> OpenEtcdStore(
    const EtcdStoreOptions& options, const Clock& clock) {
  CHAT_ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> client,
                        EtcdClient::Create(options.etcd));
  auto store = std::make_unique<store_internal::EtcdStore>(options, clock,
                                                           std::move(client));
  CHAT_RETURN_IF_ERROR(store->Start());
  return store;
}

absl::Status AgreeOnAdminToken(const EtcdStoreOptions& options,
                               const std::string& token) {
  CHAT_ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> client,
                        EtcdClient::Create(options.etcd));
  const EtcdLayout layout(StoreRoot(options.prefix));
  const std::string hash = ContentDigest(token);
  TxnRequest txn;
  txn.compares.push_back(Compare::Absent(layout.AdminTokenHash()));
  txn.success.push_back(Op::Put(layout.AdminTokenHash(), hash));
  txn.failure.push_back(Op::Get(layout.AdminTokenHash()));
  CHAT_ASSIGN_OR_RETURN(TxnResult result, client->Txn(txn));
  if (result.succeeded) return absl::OkStatus();
  const std::vector<KeyValue>& kvs = result.results.at(0).kvs;
  if (!kvs.empty() && SameSecret(kvs[0].value, hash)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "this registry's admin token is not the one of the deployment under ",
      layout.root(),
      " (etcd keeps the hash of the token of the first registry that "
      "started, at ",
      layout.AdminTokenHash(),
      "): give every registry the same --admin-token-file"));
}

}  // namespace chat::registry::etcd
