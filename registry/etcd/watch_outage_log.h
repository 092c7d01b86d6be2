// What a loop that keeps an etcd watch open says about the watch's outages,
// so that an operator reading the log sees a watch go down and come back
// (after a partition heals, say) without one line per retry.

#ifndef CHAT_REGISTRY_ETCD_WATCH_OUTAGE_LOG_H_
#define CHAT_REGISTRY_ETCD_WATCH_OUTAGE_LOG_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "common/clock.h"

namespace chat::registry::etcd {

// WatchOutageLog: the first failure to open the watch again, then one line
// every 10 s while that lasts, and one line when it is open again (on which
// member, from which revision, after how long, after how many failures).
// How a watch ended is the loop's own to say: Ended() only starts the
// outage.
//
// Thread-compatible: the one thread of the loop calls it.
class WatchOutageLog {
 public:
  // Takes each line.
  using Sink = std::function<void(const std::string& line)>;

  // Lines name the watch `what` ("watch", "watch of mail"); the loop tries
  // to open it every `retry_every`, which the first failure's line says.
  // `clock` is not owned and must outlive this.
  WatchOutageLog(std::string what, Millis retry_every, const Clock& clock,
                 Sink sink);

  // The watch ended: an outage starts now.
  void Ended();
  // An attempt to open the watch failed with `status` (an outage starts
  // now, if none had).
  void OpenFailed(const absl::Status& status);
  // The watch is open on `member` from `revision`: the outage, if any, is
  // over.
  void Opened(const std::string& member, int64_t revision);

 private:
  const std::string what_;
  const Millis retry_every_;
  const Clock& clock_;
  const Sink sink_;

  bool down_ = false;
  MonoTime down_since_{};
  MonoTime next_still_down_{};
  int failed_opens_ = 0;
};

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_WATCH_OUTAGE_LOG_H_
