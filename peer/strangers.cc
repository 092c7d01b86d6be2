#include "peer/strangers.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "peer/plain_words.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

// Where keys go when the map is full of busy ones.
constexpr char kShared[] = "";

}  // namespace

StrangerGate::StrangerGate(Options options, EventSink* events,
                           const Clock& clock)
    : options_(options), events_(events), clock_(clock) {}

MonoTime& StrangerGate::BucketLocked(Buckets& buckets, const std::string& key,
                                     MonoTime now) {
  auto it = buckets.find(key);
  if (it != buckets.end()) return it->second;
  if (buckets.size() >= options_.max_tracked) {
    // A bucket that has filled up again (its theoretical arrival time is
    // past) says nothing the next message needs.
    for (auto at = buckets.begin(); at != buckets.end();) {
      if (at->second <= now && at->first != kShared) {
        buckets.erase(at++);
      } else {
        ++at;
      }
    }
    if (buckets.size() >= options_.max_tracked) {
      return buckets.try_emplace(kShared, now).first->second;
    }
  }
  return buckets.try_emplace(key, now).first->second;
}

absl::Status StrangerGate::Admit(const std::string& sender,
                                 const std::string& host) {
  std::string notice;
  bool admitted;
  {
    absl::MutexLock lock(&mu_);
    const MonoTime now = clock_.Monotonic();
    // May a message go on `tat` (the theoretical arrival time)? Then this
    // is its next value.
    auto next = [now](MonoTime tat, const Limit& limit) -> MonoTime {
      tat = std::max(tat, now);
      if (tat - now > limit.every * (std::max(limit.burst, 1) - 1)) {
        return MonoTime::max();  // Refused.
      }
      return tat + limit.every;
    };
    const Limit by_host{options_.host_burst, options_.host_every};
    const Limit by_sender{options_.sender_burst, options_.sender_every};
    // The host first: a flood of new names from one host is refused before
    // any of them takes room among the names.
    MonoTime& host_tat = BucketLocked(hosts_, host, now);
    const MonoTime host_next = next(host_tat, by_host);
    admitted = host_next != MonoTime::max();
    if (admitted) {
      MonoTime& sender_tat =
          BucketLocked(senders_, registry::NameKey(sender), now);
      const MonoTime sender_next = next(sender_tat, by_sender);
      admitted = sender_next != MonoTime::max();
      if (admitted) {
        sender_tat = sender_next;
        host_tat = host_next;
      }
    }
    if (!admitted) {
      ++refused_;
      notice = DueNoticeLocked(now);
    }
  }
  if (!notice.empty()) events_->OnEvent(InfoEvent(notice));
  if (admitted) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      "too many messages from strangers at once; try again later");
}

std::string StrangerGate::DueNoticeLocked(MonoTime now) {
  if (refused_ == told_) return "";
  if (ever_told_ && now - last_told_ < options_.notice_every) return "";
  ever_told_ = true;
  last_told_ = now;
  told_ = refused_;
  return absl::StrCat(WithCommas(refused_),
                      refused_ == 1 ? " message" : " messages",
                      " from strangers refused (too many at once)");
}

void StrangerGate::Tick() {
  std::string notice;
  {
    absl::MutexLock lock(&mu_);
    notice = DueNoticeLocked(clock_.Monotonic());
  }
  if (!notice.empty()) events_->OnEvent(InfoEvent(notice));
}

int64_t StrangerGate::refused() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

}  // namespace chat::peer
