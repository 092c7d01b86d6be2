// The recent history of a store's committed changes, bounded in count, so a
// watcher that lost its stream resumes from the last revision it saw
// without a fresh snapshot (Store::Subscribe).

#ifndef CHAT_REGISTRY_STORE_CHANGE_RING_H_
#define CHAT_REGISTRY_STORE_CHANGE_RING_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "registry/types.h"

namespace chat::registry {

// How many changes a store keeps for resuming watches unless told otherwise
// (chat-registry --watch-history): at a few hundred bytes each, a few MB.
inline constexpr size_t kDefaultWatchHistory = 10000;

// The last `capacity` changes, in the order they were committed, each with
// its revision (WatchEvent::revision, never decreasing; several changes may
// share one). It knows the revision range it can replay: every change after
// floor() up to last() is held.
//
// Positions: each change held has a sequence number, one more than the
// change before it, never reused; a reader keeps the position of the next
// change to read, and learns when the changes it still had to read were
// dropped meanwhile.
//
// Not thread-safe (WatchHub guards it with its lock).
class ChangeRing {
 public:
  // Holds at most `capacity` changes (0: none, so nothing can be resumed);
  // empty, at `revision`.
  explicit ChangeRing(size_t capacity, int64_t revision = 0);

  // Forgets every change: the history now starts at `revision` (a store
  // that loaded a new snapshot cannot replay what led to it).
  void Reset(int64_t revision);

  // Adds a change of `key` at `event.revision`, which must not be below
  // last() (an older one resets the history to it: impossible in a store
  // that stamps in commit order, and safe if it happens). Drops the oldest
  // change when full; floor() rises to its revision.
  void Append(const std::string& key, const WatchEvent& event);

  // Raises last() to `revision` (a revision that changed no name).
  void Advance(int64_t revision);

  // Every change after floor() up to last() is held.
  int64_t floor() const { return floor_; }
  // The revision of the newest change, or what Advance()/Reset() set.
  int64_t last() const { return last_; }
  size_t size() const { return changes_.size(); }

  // Whether a watch may resume from `revision`: every change after it is
  // held (floor() <= revision <= last()). A revision ahead of last() is
  // not covered: the store cannot know what it names.
  bool Covers(int64_t revision) const {
    return floor_ <= revision && revision <= last_;
  }

  // The position of the first change after `revision` (Covers(revision)).
  uint64_t PositionAfter(int64_t revision) const;
  // The position the next change appended will have.
  uint64_t EndPosition() const { return first_position_ + changes_.size(); }

  struct Read {
    std::vector<WatchEvent> events;
    uint64_t next = 0;  // Where the next Read() starts.
    bool done = false;  // `next` reached `end` (or the newest change).
    bool lost = false;  // Changes at `position` were dropped: none read.
  };
  // Up to `max` (>= 1) changes from `position` on, before `end`, whose key
  // `matches`, in order; those that do not match are skipped.
  Read ReadFrom(uint64_t position, uint64_t end, size_t max,
                absl::FunctionRef<bool(const std::string&)> matches) const;

 private:
  struct Held {
    std::string key;
    WatchEvent event;
  };

  const size_t capacity_;
  std::deque<Held> changes_;
  uint64_t first_position_ = 0;  // Of changes_.front().
  int64_t floor_;
  int64_t last_;
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_STORE_CHANGE_RING_H_
