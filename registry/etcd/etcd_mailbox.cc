#include "registry/etcd/etcd_mailbox.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/status.h"
#include "registry/etcd/etcd_mailbox_internal.h"
#include "registry/etcd/etcd_watch.h"
#include "registry/etcd/mail_records.pb.h"
#include "registry/etcd/watch_outage_log.h"
#include "registry/mailbox/arrival_hub.h"
#include "registry/mailbox/mailbox_rules.h"
#include "registry/names.h"

namespace chat::registry::etcd {
namespace {

using mailbox_internal::DecodeItem;
using mailbox_internal::MailLayout;
using mailbox_internal::MailWrite;
using mailbox_internal::ReadKeys;
using mailbox_internal::StoredItem;

// A log line of the etcd mailbox's.
void Log(const std::string& message) { LogLine("etcd-mailbox", message); }

// How often one write reads again and decides again after another write
// changed what it read. Each round is read-only until it wins, so a loser
// changes nothing; within one registry writes take turns (write_mu_), so
// rounds are lost only to other registries.
constexpr int kMaxRounds = 32;
// Rounds of one write whose transaction's outcome was unknown (a member
// timed out), each read and decided again elsewhere, before the error is
// answered: a member that hangs costs one; every member failing in turn
// is an outage.
constexpr int kMaxUnknownOutcomes = 3;
// Items one Ack or expiry transaction removes. Each costs up to three
// deletes, a sender's counter and a receipt (three puts, a counter and a
// compare): 12 keep a transaction well under etcd's 128 operations
// (--max-txn-ops).
constexpr size_t kItemsPerTxn = 12;
// What ContentDigest() gives: BLAKE2b-256.
constexpr size_t kDigestBytes = 32;
// Deposits one transaction stores: each costs three puts, up to two
// counters and up to three compares.
constexpr size_t kDepositsPerTxn = 16;

absl::Status TooBusy(const std::string& what) {
  return absl::UnavailableError(
      absl::StrCat("the mailbox is too busy: ", what, " lost ", kMaxRounds,
                   " races with other registries in a row; try again"));
}

class EtcdMailbox final : public Mailbox {
 public:
  EtcdMailbox(EtcdClient* client, std::string root, const Clock& clock,
              const MailboxLimits& limits, std::unique_ptr<EtcdWatch> watch,
              int64_t watch_revision)
      : client_(*client),
        layout_(std::move(root)),
        clock_(clock),
        limits_(limits),
        watched_revision_(watch_revision),
        notified_revision_(watch_revision),
        watch_(std::move(watch)) {
    watcher_ = std::thread([this] { WatchArrivals(); });
  }

  ~EtcdMailbox() override {
    {
      absl::MutexLock lock(&watch_mu_);
      stopping_ = true;
      if (watch_ != nullptr) watch_->Cancel();
    }
    watcher_.join();
  }

  // Deposits waiting for their turn share it: whoever gets the turn
  // commits every deposit queued so far (up to kDepositsPerTxn, in the
  // order they came) in one transaction, so N concurrent deposits cost one
  // raft commit instead of N (a group commit, as the SQLite mailbox's).
  absl::Status Deposit(const MailItem& item) override {
    CHAT_RETURN_IF_ERROR(ValidateDeposit(item, limits_));
    PendingDeposit mine{&item, absl::OkStatus(), false};
    {
      absl::MutexLock lock(&queue_mu_);
      queue_.push_back(&mine);
    }
    absl::MutexLock turn(&write_mu_);
    while (true) {
      std::vector<PendingDeposit*> batch;
      {
        absl::MutexLock lock(&queue_mu_);
        if (mine.done) return mine.status;
        while (!queue_.empty() && batch.size() < kDepositsPerTxn) {
          batch.push_back(queue_.front());
          queue_.pop_front();
        }
      }
      CommitDeposits(batch);
      absl::MutexLock lock(&queue_mu_);
      for (PendingDeposit* pending : batch) pending->done = true;
    }
  }

  absl::StatusOr<std::vector<MailItem>> Peek(const std::string& recipient,
                                             int64_t after_seq,
                                             size_t max) override {
    CHAT_RETURN_IF_ERROR(ValidateName(recipient));
    std::vector<MailItem> items;
    if (max == 0 || after_seq >= INT64_MAX - 1) return items;
    const std::string key = NameKey(recipient);
    RangeRequest range;
    range.key = layout_.Item(key, std::max<int64_t>(after_seq, 0) + 1);
    range.range_end = PrefixEnd(layout_.RecipientItems(key));
    range.limit = static_cast<int64_t>(std::min<size_t>(max, INT64_MAX));
    absl::StatusOr<RangeResult> result = client_.Range(range);
    if (!result.ok()) return result.status();
    for (const KeyValue& kv : result->kvs) {
      absl::StatusOr<StoredItem> stored = DecodeItem(layout_, kv);
      if (!stored.ok()) return stored.status();
      items.push_back(std::move(stored->item));
    }
    return items;
  }

  absl::StatusOr<size_t> Ack(const std::string& recipient,
                             const std::vector<MailRef>& refs,
                             const std::vector<MailItem>& receipts) override {
    CHAT_RETURN_IF_ERROR(ValidateName(recipient));
    const std::string key = NameKey(recipient);
    // Which items the refs name, as seen now; each chunk reads them again
    // with the counters it compares.
    std::vector<std::string> lookups;
    for (const MailRef& ref : refs) {
      // Names no item a deposit could have made: nothing to look up.
      if (ref.id.empty() || ref.id.size() > 64 ||
          (!ref.digest.empty() && ref.digest.size() != kDigestBytes)) {
        continue;
      }
      lookups.push_back(ref.digest.empty()
                            ? layout_.IdPrefix(key, ref.id)
                            : layout_.Id(key, ref.id, ref.digest));
    }
    absl::StatusOr<std::map<std::string, KeyValue>> ids =
        ReadKeys(client_, lookups);
    if (!ids.ok()) return ids.status();
    std::vector<std::string> items;
    absl::flat_hash_set<std::string> seen;
    for (const auto& [id_key, kv] : *ids) {
      v1::MailIdValue value;
      if (!value.ParseFromString(kv.value)) continue;
      std::string item = layout_.Item(key, value.seq());
      if (seen.insert(item).second) items.push_back(std::move(item));
    }
    // The peer's receipts by the id they answer.
    absl::flat_hash_map<std::string, std::vector<const MailItem*>> by_id;
    for (const MailItem& receipt : receipts) {
      by_id[receipt.id].push_back(&receipt);
    }
    // The messages whose receipt was deposited (or dropped): one per id.
    absl::flat_hash_set<std::string> answered;
    size_t removed = 0;
    for (size_t start = 0; start < items.size(); start += kItemsPerTxn) {
      std::vector<std::string> chunk(
          items.begin() + static_cast<std::ptrdiff_t>(start),
          items.begin() + static_cast<std::ptrdiff_t>(
                              std::min(items.size(), start + kItemsPerTxn)));
      absl::StatusOr<size_t> done = RemoveChunk(
          chunk,
          [&](const MailItem& message, MailWrite& write,
              std::vector<std::string>& answered_now) -> absl::Status {
            auto candidates = by_id.find(message.id);
            if (candidates == by_id.end() || answered.contains(message.id) ||
                std::find(answered_now.begin(), answered_now.end(),
                          message.id) != answered_now.end()) {
              return absl::OkStatus();
            }
            for (const MailItem* candidate : candidates->second) {
              const MailItem& receipt = *candidate;
              if (!AcceptsReceipt(key, receipt, message.sender)) continue;
              answered_now.push_back(message.id);
              CHAT_RETURN_IF_ERROR(
                  write.Read(client_, write.KeysToInsert(receipt)));
              // Over its recipient's limits: dropped, the Ack stands.
              write.Insert(receipt).IgnoreError();
              break;
            }
            return absl::OkStatus();
          },
          &answered);
      if (!done.ok()) return done.status();
      removed += *done;
    }
    return removed;
  }

  absl::StatusOr<MailboxStats> Stat(const std::string& recipient) override {
    CHAT_RETURN_IF_ERROR(ValidateName(recipient));
    const std::string key = NameKey(recipient);
    absl::StatusOr<RangeResult> meta =
        client_.Range(RangeRequest::Key(layout_.Meta(key)));
    if (!meta.ok()) return meta.status();
    MailboxStats stats;
    if (meta->kvs.empty()) return stats;
    v1::MailMetaValue value;
    if (!value.ParseFromString(meta->kvs[0].value)) {
      return absl::DataLossError(
          absl::StrCat("etcd mailbox: unreadable counts of ", key));
    }
    stats.count = static_cast<size_t>(value.messages());
    stats.bytes = static_cast<size_t>(value.message_bytes());
    if (stats.count == 0) return stats;
    // The oldest message: the first in arrival order (receipts may come
    // before it), read a page at a time, at the revision the counts were
    // read at.
    RangeRequest range = RangeRequest::Prefix(layout_.RecipientItems(key));
    range.limit = 16;
    range.revision = meta->revision;
    while (true) {
      absl::StatusOr<RangeResult> page = client_.Range(range);
      if (!page.ok()) return page.status();
      for (const KeyValue& kv : page->kvs) {
        absl::StatusOr<StoredItem> stored = DecodeItem(layout_, kv);
        if (!stored.ok()) return stored.status();
        if (stored->item.kind == MailItem::Kind::kMessage) {
          stats.oldest_age = std::max(
              absl::ZeroDuration(), clock_.Wall() - stored->item.deposited_at);
          return stats;
        }
      }
      if (!page->more || page->kvs.empty()) return stats;
      range.key = page->kvs.back().key + '\0';
    }
  }

  std::unique_ptr<ArrivalSubscription> OnArrival(
      const std::string& recipient, std::function<void()> on_arrival) override {
    return std::make_unique<ArrivalHub::Entry>(&arrivals_, NameKey(recipient),
                                               std::move(on_arrival));
  }

  absl::StatusOr<size_t> ExpireOld() override {
    const int64_t cutoff = absl::ToUnixMillis(clock_.Wall() - limits_.max_age);
    size_t removed = 0;
    std::string from = layout_.AgePrefix();
    const std::string before = layout_.AgeBefore(cutoff);
    while (true) {
      RangeRequest range;
      range.key = from;
      range.range_end = before;
      range.limit = static_cast<int64_t>(kItemsPerTxn);
      range.keys_only = true;
      absl::StatusOr<RangeResult> ages = client_.Range(range);
      if (!ages.ok()) return ages.status();
      if (ages->kvs.empty()) return removed;
      std::vector<std::string> chunk;
      std::vector<std::string> orphans;  // Age keys whose item is gone.
      for (const KeyValue& kv : ages->kvs) {
        std::optional<std::string> item = layout_.ItemOfAge(kv.key);
        if (item.has_value()) {
          chunk.push_back(*item);
        } else {
          orphans.push_back(kv.key);
        }
      }
      absl::StatusOr<size_t> done = RemoveChunk(
          chunk,
          [&](const MailItem& message, MailWrite& write,
              std::vector<std::string>&) -> absl::Status {
            std::optional<MailItem> receipt =
                ExpiryReceipt(message, limits_.max_age);
            if (!receipt.has_value()) return absl::OkStatus();
            CHAT_RETURN_IF_ERROR(
                write.Read(client_, write.KeysToInsert(*receipt)));
            // Without room: dropped, like a receipt; the expiry stands.
            write.Insert(*std::move(receipt)).IgnoreError();
            return absl::OkStatus();
          },
          nullptr, orphans);
      if (!done.ok()) return done.status();
      removed += *done;
      if (!ages->more) return removed;
      from = ages->kvs.back().key + '\0';
    }
  }

 private:
  // One deposit waiting for its turn; its outcome is set by whoever
  // commits it.
  struct PendingDeposit {
    const MailItem* item;
    absl::Status status;
    bool done = false;
  };

  // Stores `batch` (validated items) in one transaction, each item decided
  // on the counters as the items before it leave them; sets each one's
  // status. Items refused by a limit fail alone; a failed transaction fails
  // them all (after reading back which ones etcd stored anyway).
  void CommitDeposits(const std::vector<PendingDeposit*>& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    int unknown_outcomes = 0;
    for (int round = 0; round < kMaxRounds; ++round) {
      MailWrite write(layout_, limits_, clock_.Wall());
      std::vector<std::string> keys;
      for (const PendingDeposit* pending : batch) {
        for (std::string& key : write.KeysToInsert(*pending->item)) {
          keys.push_back(std::move(key));
        }
      }
      if (absl::Status read = write.Read(client_, keys); !read.ok()) {
        for (PendingDeposit* pending : batch) pending->status = read;
        return;
      }
      for (PendingDeposit* pending : batch) {
        pending->status = write.Insert(*pending->item);
      }
      if (write.empty()) return;  // Copies of items waiting, or refusals.
      absl::StatusOr<TxnResult> result = client_.Txn(write.Build());
      if (result.status().code() == absl::StatusCode::kUnavailable &&
          ++unknown_outcomes < kMaxUnknownOutcomes) {
        // Maybe applied (the member timed out or broke under it): the next
        // round reads again, at another member (the client passes over the
        // one that failed), and an item found there is stored (Insert()
        // holds it), so nothing is stored twice.
        continue;
      }
      if (!result.ok()) {
        // Maybe applied (etcd full): an item that is there is stored,
        // whoever stored it.
        std::vector<std::string> id_keys;
        for (const PendingDeposit* pending : batch) {
          const MailItem& item = *pending->item;
          id_keys.push_back(layout_.Id(NameKey(item.recipient), item.id,
                                       ContentDigest(item.payload)));
        }
        absl::StatusOr<std::map<std::string, KeyValue>> stored =
            MaybeApplied(result.status()) ? ReadKeys(client_, id_keys)
                                          : std::map<std::string, KeyValue>();
        for (size_t i = 0; i < batch.size(); ++i) {
          if (!batch[i]->status.ok()) continue;
          if (!stored.ok() || stored->count(id_keys[i]) == 0) {
            batch[i]->status = result.status();
          }
        }
        return;
      }
      if (result->succeeded) {
        Announce(result->revision, write.arrivals());
        return;
      }
    }
    for (PendingDeposit* pending : batch) {
      pending->status = TooBusy("a deposit");
    }
  }

  // What a removal adds for one removed kMessage (its receipt), reading
  // what it needs; `answered_now` collects the ids answered by this round.
  using OnRemoved =
      std::function<absl::Status(const MailItem& message, MailWrite& write,
                                 std::vector<std::string>& answered_now)>;

  // Removes the items at `item_keys` that are still there (of any
  // recipients), with what `on_removed` adds for each message, in one
  // transaction; `stale_keys` are deleted with them. Reads again and
  // decides again when another write got in between. Returns how many
  // items it removed; adds the ids answered to `answered`.
  absl::StatusOr<size_t> RemoveChunk(
      const std::vector<std::string>& item_keys, const OnRemoved& on_removed,
      absl::flat_hash_set<std::string>* answered,
      const std::vector<std::string>& stale_keys = {}) {
    absl::MutexLock turn(&write_mu_);
    int unknown_outcomes = 0;
    for (int round = 0; round < kMaxRounds; ++round) {
      MailWrite write(layout_, limits_, clock_.Wall());
      // The recipients' counts first, then the items: a change to a
      // mailbox between the two reads changes its count's revision, so
      // the transaction's compare holds the items to what was read.
      std::vector<std::string> first;
      for (const std::string& item : item_keys) {
        if (std::optional<std::string> key = layout_.RecipientOfItem(item)) {
          first.push_back(layout_.Meta(*key));
        }
      }
      first.push_back(layout_.Total());
      CHAT_RETURN_IF_ERROR(write.Read(client_, first));
      CHAT_RETURN_IF_ERROR(write.Read(client_, item_keys, /*compare=*/false));
      std::vector<StoredItem> present;
      for (const std::string& item : item_keys) {
        const std::optional<KeyValue>& kv = write.Got(item);
        if (!kv.has_value()) continue;  // Removed already.
        absl::StatusOr<StoredItem> stored = DecodeItem(layout_, *kv);
        if (!stored.ok()) return stored.status();
        present.push_back(*std::move(stored));
      }
      for (const StoredItem& stored : present) {
        CHAT_RETURN_IF_ERROR(write.Read(client_, write.KeysToRemove(stored)));
        write.Remove(stored);
      }
      for (const std::string& key : stale_keys) write.Delete(key);
      std::vector<std::string> answered_now;
      for (const StoredItem& stored : present) {
        if (stored.item.kind != MailItem::Kind::kMessage) continue;
        CHAT_RETURN_IF_ERROR(on_removed(stored.item, write, answered_now));
      }
      if (write.empty()) return size_t{0};
      absl::StatusOr<TxnResult> result = client_.Txn(write.Build());
      // Maybe applied (the member timed out or broke under it): read and
      // decide again, at another member. An item the lost round removed is
      // gone then, and its receipt there (a receipt is stored once per id).
      if (result.status().code() == absl::StatusCode::kUnavailable &&
          ++unknown_outcomes < kMaxUnknownOutcomes) {
        continue;
      }
      if (!result.ok()) return result.status();
      if (!result->succeeded) continue;
      if (answered != nullptr) {
        answered->insert(answered_now.begin(), answered_now.end());
      }
      Announce(result->revision, write.arrivals());
      return write.removed();
    }
    return TooBusy("removing mail");
  }

  // Tells the subscribers of `keys` about items this registry committed at
  // `revision`, unless the watch has taken that revision already: each
  // commit is announced once, by whichever sees it first, and before the
  // write that made it returns. When the watch took it, this waits for the
  // watch's own Notify, which follows at once; should it not come within a
  // second (the watch thread stuck in a subscriber), this tells them too:
  // a second wake costs a look, a missing one a delay.
  void Announce(int64_t revision, const absl::flat_hash_set<std::string>& keys)
      ABSL_LOCKS_EXCLUDED(announce_mu_) {
    if (keys.empty()) return;
    {
      absl::MutexLock lock(&announce_mu_);
      if (revision > watched_revision_) {
        announced_.insert(revision);
      } else {
        auto told = [this, revision]()
                        ABSL_SHARED_LOCKS_REQUIRED(announce_mu_) {
                          return notified_revision_ >= revision;
                        };
        if (announce_mu_.AwaitWithTimeout(absl::Condition(&told),
                                          absl::Seconds(1))) {
          return;
        }
      }
    }
    arrivals_.Notify(keys);
  }

  // The watch thread: every item put under mail/ (by any registry) wakes
  // its recipient's subscribers, unless Announce() did already. What
  // happens to the watch is logged as the store's watch is, so that an
  // operator sees mail's watch come back too.
  void WatchArrivals() {
    constexpr Millis kRetryPause{1000};
    WatchOutageLog outages("watch of mail", kRetryPause, clock_,
                           [](const std::string& line) { Log(line); });
    while (true) {
      EtcdWatch* watch;
      {
        absl::MutexLock lock(&watch_mu_);
        if (stopping_) return;
        watch = watch_.get();
      }
      absl::Status ended;
      while (watch != nullptr) {
        absl::StatusOr<WatchBatch> batch = watch->Next();
        if (!batch.ok()) {
          ended = batch.status();
          break;
        }
        absl::flat_hash_map<int64_t, absl::flat_hash_set<std::string>> by_rev;
        for (const WatchEvent& event : batch->events) {
          if (event.type != WatchEvent::Type::kPut) continue;
          std::optional<std::string> key =
              layout_.RecipientOfItem(event.kv.key);
          if (key.has_value()) by_rev[event.kv.mod_revision].insert(*key);
        }
        absl::flat_hash_set<std::string> wake;
        int64_t batch_revision = 0;
        {
          absl::MutexLock lock(&announce_mu_);
          for (auto& [revision, keys] : by_rev) {
            if (announced_.erase(revision) > 0) continue;
            wake.insert(keys.begin(), keys.end());
          }
          for (const WatchEvent& event : batch->events) {
            watched_revision_ =
                std::max(watched_revision_, event.kv.mod_revision);
          }
          // Commits of ours the watch has passed without seeing their items
          // cannot be: a safety net against growth.
          announced_.erase(announced_.begin(),
                           announced_.upper_bound(watched_revision_));
          batch_revision = watched_revision_;
        }
        arrivals_.Notify(wake);
        absl::MutexLock lock(&announce_mu_);
        notified_revision_ = std::max(notified_revision_, batch_revision);
      }
      // The watch is over: open another from where it stopped. A revision
      // compacted away may hide arrivals: everyone looks once more.
      int64_t from;
      {
        absl::MutexLock lock(&announce_mu_);
        from = watched_revision_ + 1;
      }
      if (watch != nullptr) {
        outages.Ended();
        if (ended.code() != absl::StatusCode::kCancelled) {
          Log(absl::StrCat("watch of mail ended (reopening from revision ",
                           from, "): ", ended.ToString()));
        }
      }
      if (IsCompacted(ended)) {
        from = 0;
        arrivals_.NotifyAll();
      }
      {
        // Not at once: etcd may be down for a while. A real-time pause,
        // not the injected clock's: it paces reconnection, it decides
        // nothing.
        absl::MutexLock lock(&watch_mu_);
        watch_mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                                   absl::FromChrono(kRetryPause));
        if (stopping_) return;
      }
      absl::StatusOr<std::unique_ptr<EtcdWatch>> opened = EtcdWatch::Open(
          &client_, WatchOptions::Prefix(layout_.ItemsPrefix(), from));
      if (opened.ok()) {
        outages.Opened(client_.EndpointName((*opened)->channel()), from);
      } else {
        outages.OpenFailed(opened.status());
      }
      absl::MutexLock lock(&watch_mu_);
      watch_ = opened.ok() ? *std::move(opened) : nullptr;
      if (stopping_ && watch_ != nullptr) watch_->Cancel();
      if (from == 0 && watch_ != nullptr) arrivals_.NotifyAll();
    }
  }

  EtcdClient& client_;  // Not owned.
  const MailLayout layout_;
  const Clock& clock_;  // Not owned.
  const MailboxLimits limits_;
  ArrivalHub arrivals_;
  // Writes of this registry take turns: they would only make each other
  // read again, since each compares the counters the others write.
  absl::Mutex write_mu_;
  // Deposits waiting for the turn; the one who gets it commits them.
  absl::Mutex queue_mu_ ABSL_ACQUIRED_AFTER(write_mu_);
  std::deque<PendingDeposit*> queue_ ABSL_GUARDED_BY(queue_mu_);

  absl::Mutex announce_mu_;
  // The newest revision whose items the watch has reported.
  int64_t watched_revision_ ABSL_GUARDED_BY(announce_mu_);
  // The newest revision whose items the watch has told its subscribers of;
  // trails watched_revision_ while the watch thread is in Notify.
  int64_t notified_revision_ ABSL_GUARDED_BY(announce_mu_);
  // Revisions of our own commits announced before the watch saw them.
  absl::btree_set<int64_t> announced_ ABSL_GUARDED_BY(announce_mu_);

  absl::Mutex watch_mu_;
  std::unique_ptr<EtcdWatch> watch_ ABSL_GUARDED_BY(watch_mu_);
  bool stopping_ ABSL_GUARDED_BY(watch_mu_) = false;
  std::thread watcher_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Mailbox>> OpenEtcdMailbox(
    EtcdClient* client, const std::string& root, const Clock& clock,
    const MailboxLimits& limits) {
  if (root.empty()) {
    return absl::InvalidArgumentError("the etcd mailbox needs a key prefix");
  }
  const std::string prefix = absl::EndsWith(root, "/") ? root : root + "/";
  const MailLayout layout(prefix);
  // The revision now, so the watch reports what comes after it.
  RangeRequest now = RangeRequest::Key(layout.Total());
  now.count_only = true;
  absl::StatusOr<RangeResult> read = client->Range(now);
  if (!read.ok()) return read.status();
  absl::StatusOr<std::unique_ptr<EtcdWatch>> watch = EtcdWatch::Open(
      client, WatchOptions::Prefix(layout.ItemsPrefix(), read->revision + 1));
  if (!watch.ok()) return watch.status();
  return std::unique_ptr<Mailbox>(new EtcdMailbox(
      client, prefix, clock, limits, *std::move(watch), read->revision));
}

}  // namespace chat::registry::etcd
