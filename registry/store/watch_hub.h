// Fan-out of store changes to watchers, each with its own queue bounded in
// bytes, so a slow watcher never slows the store or other watchers, and a
// snapshot read from the store a page at a time, so a watch costs the same
// however many names there are. Shared by every Store implementation.
//
// The consistency rule. A watch reads its snapshot in key order, a page per
// Take(), each page under the lock its store publishes changes under; the
// watch remembers the last key read (its cursor). A change published while
// the snapshot is being read is
//  - dropped when its key is after the cursor: the page that reads that key
//    later shows its state, change included;
//  - queued when its key is at or before the cursor: it happened after the
//    page that showed that key, and comes after kSynced.
// So each change reaches the watcher exactly once, in the snapshot or as an
// event, and after kSynced and the changes queued meanwhile the watcher holds
// exactly what the store holds. The snapshot itself is not one instant: each
// entry is as it was when its page was read. A kDelete may name an entry the
// snapshot did not show (one that had expired but was not removed yet).
//
// Revisions. Every change is published with its revision (never
// decreasing) and kept in a bounded history (change_ring.h). kSynced
// carries the revision the hub was at when the watch began: every change
// after it is either in the snapshot (a page read after it) or queued after
// kSynced, so a watcher resuming from it misses nothing (it may see again a
// change the snapshot showed). A watch that resumes from a revision the
// history covers reads the history after it instead of a snapshot, a page
// per Take(), then kSynced (resumed, at the revision the hub was at when
// it began), then the changes published since, which all come after it.

#ifndef CHAT_REGISTRY_STORE_WATCH_HUB_H_
#define CHAT_REGISTRY_STORE_WATCH_HUB_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "registry/store/change_ring.h"
#include "registry/store/store.h"

namespace chat::registry {

class HubWatch;

// A WatchScope in keys (registry/names.h NameKey): what the hub compares.
struct WatchKeys {
  explicit WatchKeys(const WatchScope& scope);

  // Whether changes of `key` belong to the watch.
  bool Matches(const std::string& key) const;

  std::string key_prefix;
  // Sorted, without duplicates; empty: every key under key_prefix.
  std::vector<std::string> keys;
};

// Where watches read their snapshots: the store.
class SnapshotSource {
 public:
  // `entries`: live entries in key order; `last_key`: every key of the scope
  // up to it has been read; `done`: no key of the scope comes after it.
  using PageTaker = absl::FunctionRef<void(
      std::vector<Entry> entries, const std::string& last_key, bool done)>;

  virtual ~SnapshotSource() = default;

  // Reads the live entries of `scope` whose keys come after `after` (from the
  // first when empty), in key order, until it has `max` (>= 1) of them or the
  // scope ends, and calls `take` with them once, while it holds the lock that
  // WatchHub::Publish() is called under (so no change falls between the read
  // and the watch's cursor moving). Returns no entries only when done.
  virtual void ReadSnapshotPage(const WatchKeys& scope,
                                const std::string& after, size_t max,
                                PageTaker take) = 0;
};

// Bytes an event holds while it waits in a queue (an estimate: the struct,
// its strings, the queue's own overhead).
size_t QueuedEventBytes(const WatchEvent& event);

// Thread-safe. Must outlive every Watch it hands out.
// Lock order: the store's lock (Publish, ReadSnapshotPage), then the hub's,
// then a watch's.
class WatchHub {
 public:
  // A watcher whose queued changes would pass `max_backlog_bytes` is ended
  // with kResourceExhausted (LimitError naming `backlog_option`, in KiB) and
  // its queue freed. The last `history` changes are kept for resuming
  // watches; the history starts at `revision`. `source` is not owned and
  // must outlive this.
  WatchHub(SnapshotSource* source, size_t max_backlog_bytes,
           std::string backlog_option = "max-watch-backlog-kb",
           size_t history = kDefaultWatchHistory, int64_t revision = 0);
  ~WatchHub();

  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // A watch of the keys of `scope`: its snapshot (read from the source a page
  // per Take()), one kSynced, then the changes (see the rule at the top).
  // `on_ready` is called once the watch has handed out kSynced, whenever
  // events are queued or the status changes; never before (the taker keeps
  // taking until then: Take() comes back empty before kSynced only when the
  // watch has ended), so it never runs while a taker waits for the store.
  // With `resume_after` (> 0) that the history covers (ChangeRing::Covers),
  // the changes after it instead of the snapshot (see Revisions above).
  // A watch whose history to replay is dropped while it reads it (more
  // than `history` changes meanwhile) ends with kResourceExhausted; the
  // watcher watches again and gets a snapshot.
  std::unique_ptr<Watch> Subscribe(WatchKeys scope, int64_t resume_after,
                                   std::function<void()> on_ready);
  std::unique_ptr<Watch> Subscribe(WatchKeys scope,
                                   std::function<void()> on_ready) {
    return Subscribe(std::move(scope), 0, std::move(on_ready));
  }

  // Queues `event` for every watcher whose scope matches `key` (or drops it,
  // see the rule) and keeps it in the history. `event.revision` is the
  // change's, not below the last one published. Called under the store's
  // lock, in the order the changes were committed.
  void Publish(const std::string& key, const WatchEvent& event);

  // The history starts again at `revision` (a store that loaded a new
  // snapshot). Called under the store's lock.
  void ResetHistory(int64_t revision);

  // The store is at `revision`, which changed no name. Called under the
  // store's lock.
  void Advance(int64_t revision);

  // The revision of the last change published (or Reset/Advance).
  int64_t revision();

  // Ends every watch with kUnavailable.
  void CancelAll();

  // Bytes queued for all watches together.
  size_t QueuedBytes();

 private:
  friend class HubWatch;
  void Remove(HubWatch* watch);
  ChangeRing::Read ReadHistory(const WatchKeys& scope, uint64_t position,
                               uint64_t end, size_t max);

  SnapshotSource* const source_;  // Not owned.
  const size_t max_backlog_bytes_;
  const std::string backlog_option_;
  const size_t history_capacity_;
  absl::Mutex mu_;
  absl::flat_hash_set<HubWatch*> watches_ ABSL_GUARDED_BY(mu_);
  ChangeRing history_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_STORE_WATCH_HUB_H_
