// A server stream fed by a source that announces when it has more (a store
// watch, a mailbox): one write in flight at a time, a clean finish when the
// client goes away or the source ends. Shared by Watch and Listen.

#ifndef CHAT_REGISTRY_PUMPED_STREAM_H_
#define CHAT_REGISTRY_PUMPED_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"

namespace chat::registry {

// `Source` is whatever keeps the announcements coming; destroying it stops
// them. Subclasses call Attach() once in their constructor, with a source
// whose callback calls Pump(), and implement Next(). Deletes itself when
// gRPC is done with it. Thread-safe.
template <typename Proto, typename Source>
class PumpedStream : public grpc::ServerWriteReactor<Proto> {
 public:
  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) broken_ = true;  // The client went away.
    }
    Pump();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
    }
    Pump();
  }

  void OnDone() override {
    std::unique_ptr<Source> source;
    {
      absl::MutexLock lock(&mu_);
      source = std::move(source_);
    }
    source.reset();  // After this no announcement calls Pump() again.
    delete this;
  }

  // Starts the next write or the finish, whichever is due. Decides under the
  // lock and acts outside it, so gRPC never runs a reaction while we hold it.
  void Pump() {
    enum { kNothing, kWrite, kFinish } action = kNothing;
    absl::Status end;
    {
      absl::MutexLock lock(&mu_);
      // No source yet: its callback fired before Attach() stored it, and
      // Attach() pumps again.
      if (source_ == nullptr || writing_ || finished_) return;
      if (broken_) {
        end = absl::CancelledError("the client went away");
      } else if (Next(*source_, &out_, &end)) {
        writing_ = true;
        action = kWrite;
      }
      if (!end.ok()) {
        finished_ = true;
        action = kFinish;
      }
    }
    if (action == kWrite) this->StartWrite(&out_);
    if (action == kFinish) this->Finish(ToGrpcStatus(end));
  }

 protected:
  PumpedStream() = default;
  ~PumpedStream() override = default;

  // Stores the source and pumps once. Call once, from the constructor.
  void Attach(std::unique_ptr<Source> source) {
    {
      absl::MutexLock lock(&mu_);
      source_ = std::move(source);
    }
    Pump();
  }

  // The next message: fills `out` and returns true, or returns false and
  // leaves `end` OK to wait for the next announcement, or sets `end` to
  // finish the stream with it.
  virtual bool Next(Source& source, Proto* out, absl::Status* end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;

  absl::Mutex mu_;

 private:
  std::unique_ptr<Source> source_ ABSL_GUARDED_BY(mu_);
  Proto out_;  // The message being written; only while writing_.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_PUMPED_STREAM_H_
