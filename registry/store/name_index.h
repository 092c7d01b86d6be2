// The in-memory index of names that every store serves its reads from
// (Resolve, List, a watch's snapshot pages) and keeps the counts of (name
// quotas, CountOffering). One data structure, no storage: each store decides
// what goes in and when, and how an entry shows at the time of a read.

#ifndef CHAT_REGISTRY_STORE_NAME_INDEX_H_
#define CHAT_REGISTRY_STORE_NAME_INDEX_H_

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "registry/names.h"
#include "registry/store/store_rules.h"
#include "registry/store/watch_hub.h"
#include "registry/types.h"

namespace chat::registry {

// What the index counts of the records it holds, kept in step by
// NameIndex::Put() and Erase(): records per NameOwner (the name quotas),
// static entries, and records per service they offer (none counts as
// "chat"). A handful of services; one entry per owner.
class IndexCounts {
 public:
  void Add(const Record& record) { Count(record, +1); }
  void Remove(const Record& record) { Count(record, -1); }

  // The quota counts for a decision about `owner`'s name (empty: none of
  // its own).
  NameCounts For(const std::string& owner) const;
  // Records that offer `service` (RecordOffers()).
  size_t Offering(const std::string& service) const;

 private:
  void Count(const Record& record, int delta);

  absl::flat_hash_map<std::string, size_t> owned_;
  size_t static_names_ = 0;
  absl::flat_hash_map<std::string, size_t> offering_;
};

// How a record shows to readers at the time of a read: its entry, or
// nullopt to leave it out (SQLite: a lease run out and not yet removed;
// etcd shows every record until etcd deletes it).
using ShowRecord = absl::FunctionRef<std::optional<Entry>(const Record&)>;

// One page of a watch's snapshot, as SnapshotSource::PageTaker takes it.
struct IndexPage {
  std::vector<Entry> entries;
  std::string last_key;  // Every key of the scope up to it was read.
  bool done = true;      // No key of the scope comes after last_key.
};

// Records by NameKey (registry/names.h), in key order. `Extra` is what a
// store keeps beside each record (etcd: its revision and lease); its slot
// derives from it, so an empty one costs nothing.
//
// Mutable access (find(), begin()) is for fields the counts do not read
// (expires_at, expiry_reported, Extra); a change of name, services,
// lease_id, public_key or client goes through Put().
//
// Not thread-safe: the store guards it with the lock its watch hub
// publishes under.
struct NoIndexExtra {};

template <typename Extra = NoIndexExtra>
class NameIndex {
 public:
  struct Slot : Extra {
    Slot() = default;
    Slot(Record record_in, Extra extra) : Extra(extra), record(record_in) {}
    Record record;
  };
  using Map = absl::btree_map<std::string, Slot>;
  using iterator = typename Map::iterator;
  using const_iterator = typename Map::const_iterator;

  // Readers' view of keys that differs from the index (SQLite: the
  // committed state of names whose write is still in flight); nullopt: no
  // record.
  using Overrides = absl::btree_map<std::string, std::optional<Record>>;

  NameIndex() = default;
  // Takes `records` whole (no second copy at a million names).
  explicit NameIndex(absl::btree_map<std::string, Record> records) {
    for (auto& [key, record] : records) {
      counts_.Add(record);
      map_.emplace_hint(map_.end(), key, Slot(std::move(record), Extra{}));
    }
  }

  iterator find(const std::string& key) { return map_.find(key); }
  const_iterator find(const std::string& key) const { return map_.find(key); }
  bool contains(const std::string& key) const { return map_.contains(key); }
  iterator begin() { return map_.begin(); }
  iterator end() { return map_.end(); }
  const_iterator begin() const { return map_.begin(); }
  const_iterator end() const { return map_.end(); }
  size_t size() const { return map_.size(); }
  const IndexCounts& counts() const { return counts_; }

  // Makes `key` hold `record` with `extra`, replacing what it held; the
  // counts follow.
  Slot& Put(const std::string& key, Record record, Extra extra = {}) {
    auto it = map_.find(key);
    if (it == map_.end()) {
      it = map_.emplace(key, Slot(std::move(record), extra)).first;
    } else {
      counts_.Remove(it->second.record);
      it->second.record = std::move(record);
      static_cast<Extra&>(it->second) = extra;
    }
    counts_.Add(it->second.record);
    return it->second;
  }

  // Removes what `key` holds and returns it; nullopt when nothing.
  std::optional<Slot> Erase(const std::string& key) {
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    counts_.Remove(it->second.record);
    std::optional<Slot> removed = std::move(it->second);
    map_.erase(it);
    return removed;
  }

  // Store::List over the index: entries whose key starts with `key_prefix`
  // (lowercase), after `page_token`, at most `page_size` (>= 1), only those
  // that offer `service` when it is not empty, as `show` shows them.
  ListPage List(const std::string& key_prefix, size_t page_size,
                const std::string& page_token, const std::string& service,
                ShowRecord show) const {
    page_size = std::max<size_t>(page_size, 1);
    ListPage page;
    page.service = service;
    // The token is the last key of the previous page; resume after it.
    auto it = page_token.empty() || page_token < key_prefix
                  ? map_.lower_bound(key_prefix)
                  : map_.upper_bound(page_token);
    for (; it != map_.end() && absl::StartsWith(it->first, key_prefix); ++it) {
      if (!service.empty() && !RecordOffers(it->second.record, service)) {
        continue;
      }
      std::optional<Entry> entry = show(it->second.record);
      if (!entry) continue;
      if (page.entries.size() == page_size) {
        page.next_page_token = NameKey(page.entries.back().name);
        break;
      }
      page.entries.push_back(*std::move(entry));
    }
    return page;
  }

  // The live entry under `key`, as `show` shows it; nullopt when none.
  std::optional<Entry> Resolve(const std::string& key, ShowRecord show) const {
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return show(it->second.record);
  }

  // A page of a watch's snapshot (SnapshotSource::ReadSnapshotPage): the
  // entries of `scope` after `after`, in key order, until `max` (>= 1) of
  // them, as `show` shows them, with `overrides` (may be null) taking the
  // place of the index for the keys it holds.
  IndexPage ReadSnapshotPage(const WatchKeys& scope, const std::string& after,
                             size_t max, ShowRecord show,
                             const Overrides* overrides = nullptr) const {
    max = std::max<size_t>(max, 1);
    IndexPage page;
    page.last_key = after;
    auto take = [&](const std::string& key, const Record* record) {
      page.last_key = key;
      if (record == nullptr) return;
      if (std::optional<Entry> entry = show(*record)) {
        page.entries.push_back(*std::move(entry));
      }
    };
    if (scope.keys.empty()) {
      auto it = after.empty() ? map_.lower_bound(scope.key_prefix)
                              : map_.upper_bound(after);
      typename Overrides::const_iterator over, over_end;
      if (overrides != nullptr) {
        over = after.empty() ? overrides->lower_bound(scope.key_prefix)
                             : overrides->upper_bound(after);
        over_end = overrides->end();
      }
      auto in_scope = [&](const std::string& key) {
        return absl::StartsWith(key, scope.key_prefix);
      };
      while (true) {
        const bool index_left = it != map_.end() && in_scope(it->first);
        const bool over_left =
            overrides != nullptr && over != over_end && in_scope(over->first);
        if (!index_left && !over_left) break;
        if (page.entries.size() == max) {
          page.done = false;
          break;
        }
        if (over_left && (!index_left || over->first <= it->first)) {
          if (index_left && over->first == it->first) ++it;
          take(over->first, over->second ? &*over->second : nullptr);
          ++over;
        } else {
          take(it->first, &it->second.record);
          ++it;
        }
      }
    } else {
      for (auto key = after.empty() ? scope.keys.begin()
                                    : std::upper_bound(scope.keys.begin(),
                                                       scope.keys.end(), after);
           key != scope.keys.end(); ++key) {
        if (page.entries.size() == max) {
          page.done = false;
          break;
        }
        if (!scope.Matches(*key)) {
          page.last_key = *key;
          continue;
        }
        if (overrides != nullptr) {
          if (auto over = overrides->find(*key); over != overrides->end()) {
            take(*key, over->second ? &*over->second : nullptr);
            continue;
          }
        }
        auto it = map_.find(*key);
        take(*key, it == map_.end() ? nullptr : &it->second.record);
      }
    }
    return page;
  }

 private:
  Map map_;
  IndexCounts counts_;
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_STORE_NAME_INDEX_H_
