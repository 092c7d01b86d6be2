// A map that keeps at most a fixed number of entries, evicting the least
// recently used: the peer's channel cache (one gRPC channel per peer).

#ifndef CHAT_PEER_LRU_MAP_H_
#define CHAT_PEER_LRU_MAP_H_

#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace chat::peer {

// At most `capacity` (at least 1) values by string key. Find() and Put()
// make an entry the most recently used; Put() beyond the capacity evicts
// the least recently used one and returns its key.
//
// Not thread-safe: its owner locks around it.
template <typename Value>
class LruMap {
 public:
  explicit LruMap(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  LruMap(const LruMap&) = delete;
  LruMap& operator=(const LruMap&) = delete;

  // The value under `key` (now the most recently used), or nullptr. The
  // pointer holds until the next Put() or Erase().
  Value* Find(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  // Sets `key` to `value`, the most recently used; returns the key it
  // evicted to stay within the capacity, if any.
  std::optional<std::string> Put(const std::string& key, Value value) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      it->second->second = std::move(value);
      order_.splice(order_.begin(), order_, it->second);
      return std::nullopt;
    }
    order_.emplace_front(key, std::move(value));
    index_.emplace(key, order_.begin());
    if (order_.size() <= capacity_) return std::nullopt;
    std::string evicted = std::move(order_.back().first);
    index_.erase(evicted);
    order_.pop_back();
    return evicted;
  }

  // Removes `key`; returns whether it was there.
  bool Erase(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    order_.erase(it->second);
    index_.erase(it);
    return true;
  }

  size_t size() const { return order_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<std::string, Value>;
  const size_t capacity_;
  std::list<Entry> order_;  // Most recently used first.
  absl::flat_hash_map<std::string, typename std::list<Entry>::iterator> index_;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_LRU_MAP_H_
