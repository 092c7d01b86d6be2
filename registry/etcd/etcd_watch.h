// One etcd Watch stream over a key or a range of keys, read by pulling:
// the registry's index is fed by one of these, resumed from the revision it
// last saw.

#ifndef CHAT_REGISTRY_ETCD_ETCD_WATCH_H_
#define CHAT_REGISTRY_ETCD_ETCD_WATCH_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd/watch_liveness.h"

namespace chat::registry::etcd {

struct WatchOptions {
  std::string key;
  std::string range_end;  // Empty: `key` alone. See PrefixEnd().
  // The first revision to report (inclusive); 0 = changes after now. To
  // resume after revision R, ask R + 1.
  int64_t start_revision = 0;
  // Each DELETE and PUT also carries the key as it was before.
  bool prev_kv = false;
  // etcd sends an empty batch with the current revision now and then when
  // nothing changes (every 10 minutes unless the member is configured
  // otherwise), so an idle watcher's revision does not fall behind the
  // compaction point. RequestProgress() asks for one at once.
  bool progress_notify = false;
  // Notice a member that hangs (stopped, or cut off without a reset: it
  // keeps the connection and answers nothing), which gRPC's keepalive gives
  // up only after EtcdConfig::keepalive_time + 5 s: when Next() has waited the
  // client's attempt_timeout() with nothing, the watch asks for a progress
  // notification; when nothing at all comes within another, the member is
  // reported failing (EtcdClient::ReportStreamFailure) and Next() returns
  // kUnavailable, so the caller reopens elsewhere. The answers to those
  // requests are batches without events (WatchBatch): they prove the member
  // alive, never that every event up to their revision came.
  bool detect_hang = true;
  // The clock of that check; nullptr: the real one. Not owned; must outlive
  // the watch.
  const Clock* clock = nullptr;

  static WatchOptions Prefix(const std::string& prefix,
                             int64_t start_revision = 0);
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // For kDelete: the key, and mod_revision = the revision of the delete;
  // value and create_revision are empty.
  KeyValue kv;
  std::optional<KeyValue> prev_kv;  // With WatchOptions::prev_kv.
};

// What one response of the stream carried.
struct WatchBatch {
  // The store's revision when etcd sent this; every event is at or below.
  // A batch with no events is a progress notification: nothing in the
  // watched range changed up to `revision`.
  int64_t revision = 0;
  std::vector<WatchEvent> events;  // In commit order.
};

// EtcdWatch: a started watch; Next() hands its batches in order.
//
// Events come exactly as etcd committed them: once each, in revision order,
// and only committed changes. After an error the watch is over; open a new
// one from the last revision seen + 1, or from a snapshot when
// IsCompacted(error).
//
// Thread-safe in this shape: one thread calls Next(); any thread may call
// RequestProgress() and Cancel(). With detect_hang, a thread of the watch's
// own runs the check (WatchLiveness) until the watch is destroyed. Destroy it
// only when no Next() runs (call Cancel() and let the reader return first).
class EtcdWatch {
 public:
  // Opens the stream on the client's next endpoint and waits until etcd
  // has created the watch. Errors as FromEtcdStatus; kUnavailable too when
  // the member does not answer within the client's attempt_timeout() (it
  // is then reported failing, so the next Open goes elsewhere). `client` is
  // not owned and must outlive this.
  static absl::StatusOr<std::unique_ptr<EtcdWatch>> Open(
      EtcdClient* client, const WatchOptions& options);

  // Cancels the stream if it still runs.
  ~EtcdWatch();
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;

  // Blocks until the next batch. Errors (the watch is over after any):
  //   IsCompacted()   start_revision was compacted away (CompactRevision()
  //                   is the oldest revision left): resync from a snapshot;
  //   kCancelled      Cancel() was called;
  //   kUnavailable    the stream broke (member down, network), or its
  //                   member stopped answering (WatchOptions::detect_hang):
  //                   reopen from the last revision seen + 1, on another
  //                   endpoint;
  //   others          etcd cancelled the watch for its own reason (as
  //                   FromEtcdStatus, or kAborted with etcd's reason).
  absl::StatusOr<WatchBatch> Next();

  // Asks etcd for a progress notification now (a batch without events).
  // kUnavailable when the stream is over.
  absl::Status RequestProgress();

  // Ends the watch from any thread: a blocked Next() returns kCancelled.
  void Cancel();

  // The channel the stream runs on, for EtcdClient::ReportStreamFailure()
  // when the stream stops answering.
  const std::shared_ptr<grpc::Channel>& channel() const;

  // Progress requests the hang check sent so far (for tests and metrics).
  int64_t progress_requests() const;

 private:
  struct Stream;
  class LivenessStream;
  EtcdWatch(std::unique_ptr<Stream> stream, EtcdClient* client,
            const WatchOptions& options);

  const std::unique_ptr<Stream> stream_;
  // With detect_hang: the check, and the thread that runs it.
  std::unique_ptr<WatchLiveness> liveness_;
  std::unique_ptr<LivenessStream> liveness_stream_;
  std::thread checker_;
  absl::Mutex write_mu_;  // gRPC allows one writer at a time.
  bool cancelled_ ABSL_GUARDED_BY(write_mu_) = false;
  // Set once Next() returned an error (read only by the Next() thread).
  absl::Status ended_;
};

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_ETCD_WATCH_H_
