#include "registry/etcd/watch_outage_log.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace chat::registry::etcd {
namespace {

// While a watch stays down, a line this often: a retry every 200 ms is no
// rate for log lines.
constexpr Millis kStillDownEvery{10000};

std::string Duration(Millis duration) {
  return absl::FormatDuration(absl::FromChrono(duration));
}

}  // namespace

WatchOutageLog::WatchOutageLog(std::string what, Millis retry_every,
                               const Clock& clock, Sink sink)
    : what_(std::move(what)),
      retry_every_(retry_every),
      clock_(clock),
      sink_(std::move(sink)) {}

void WatchOutageLog::Ended() {
  down_ = true;
  down_since_ = clock_.Monotonic();
}

void WatchOutageLog::OpenFailed(const absl::Status& status) {
  const MonoTime now = clock_.Monotonic();
  if (!down_) {
    down_ = true;
    down_since_ = now;
  }
  if (failed_opens_ == 0) {
    sink_(absl::StrCat(what_, " failed to open (trying again every ",
                       Duration(retry_every_), "): ", status.ToString()));
    next_still_down_ = now + kStillDownEvery;
  } else if (now >= next_still_down_) {
    sink_(absl::StrCat(
        what_, " still failing to open (", failed_opens_ + 1, " attempts in ",
        Duration(std::chrono::duration_cast<Millis>(now - down_since_)),
        "), the last: ", status.ToString()));
    next_still_down_ = now + kStillDownEvery;
  }
  ++failed_opens_;
}

void WatchOutageLog::Opened(const std::string& member, int64_t revision) {
  if (!down_) return;
  sink_(absl::StrCat(
      what_, " open again on ", member, " from revision ", revision, ", ",
      Duration(
          std::chrono::duration_cast<Millis>(clock_.Monotonic() - down_since_)),
      " after the last one ended (", failed_opens_, " failed attempts)"));
  down_ = false;
  failed_opens_ = 0;
}

}  // namespace chat::registry::etcd
