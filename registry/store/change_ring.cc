#include "registry/store/change_ring.h"

#include <algorithm>

namespace chat::registry {

ChangeRing::ChangeRing(size_t capacity, int64_t revision)
    : capacity_(capacity), floor_(revision), last_(revision) {}

void ChangeRing::Reset(int64_t revision) {
  first_position_ += changes_.size();
  changes_.clear();
  floor_ = revision;
  last_ = revision;
}

void ChangeRing::Append(const std::string& key, const WatchEvent& event) {
  if (event.revision < last_) {
    Reset(event.revision);
    return;
  }
  last_ = event.revision;
  if (capacity_ == 0) {
    floor_ = last_;
    return;
  }
  if (changes_.size() == capacity_) {
    floor_ = changes_.front().event.revision;
    changes_.pop_front();
    ++first_position_;
  }
  changes_.push_back(Held{key, event});
}

void ChangeRing::Advance(int64_t revision) {
  last_ = std::max(last_, revision);
}

uint64_t ChangeRing::PositionAfter(int64_t revision) const {
  auto first_after =
      std::upper_bound(changes_.begin(), changes_.end(), revision,
                       [](int64_t wanted, const Held& held) {
                         return wanted < held.event.revision;
                       });
  return first_position_ +
         static_cast<uint64_t>(first_after - changes_.begin());
}

ChangeRing::Read ChangeRing::ReadFrom(
    uint64_t position, uint64_t end, size_t max,
    absl::FunctionRef<bool(const std::string&)> matches) const {
  Read read;
  read.next = position;
  if (position < first_position_) {
    read.lost = true;
    return read;
  }
  max = std::max<size_t>(max, 1);
  end = std::min(end, EndPosition());
  while (read.next < end && read.events.size() < max) {
    const Held& held = changes_[read.next - first_position_];
    ++read.next;
    if (matches(held.key)) read.events.push_back(held.event);
  }
  read.done = read.next >= end;
  return read;
}

}  // namespace chat::registry
