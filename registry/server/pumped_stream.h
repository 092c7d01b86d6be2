// A server stream fed by a source that announces when it has more (a store
// watch, a mailbox): one write in flight at a time, a clean finish when the
// client goes away or the source ends. Shared by Watch and Listen.

#ifndef CHAT_REGISTRY_SERVER_PUMPED_STREAM_H_
#define CHAT_REGISTRY_SERVER_PUMPED_STREAM_H_

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
  // lock and acts outside it, so gRPC never runs a reaction while we hold it;
  // fills outside it too (see Fill()).
  void Pump() {
    while (true) {
      enum { kNothing, kWrite, kFinish, kFill } action = kNothing;
      absl::Status end;
      Source* filled = nullptr;
      {
        absl::MutexLock lock(&mu_);
        if (filling_) {
          pump_again_ = true;  // The filler looks again when it is done.
          return;
        }
        // No source yet: its callback fired before Attach() stored it, and
        // Attach() pumps again.
        if (source_ == nullptr || writing_ || finished_) return;
        if (broken_) {
          end = absl::CancelledError("the client went away");
        } else if (Next(*source_, &out_, &end)) {
          writing_ = true;
          action = kWrite;
        } else if (end.ok() && WantsFill()) {
          filling_ = true;
          pump_again_ = false;
          filled = source_.get();
          action = kFill;
        }
        if (!end.ok()) {
          finished_ = true;
          action = kFinish;
        }
      }
      if (action == kWrite) this->StartWrite(&out_);
      if (action == kFinish) this->Finish(ToGrpcStatus(end));
      if (action != kFill) return;
      // The source stays: OnDone() (which drops it) comes only after Finish().
      const bool look_again = Fill(*filled);
      absl::MutexLock lock(&mu_);
      filling_ = false;
      if (!look_again && !pump_again_) return;  // Wait for an announcement.
    }
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
  // leaves `end` OK to wait for the next announcement (or for a Fill()), or
  // sets `end` to finish the stream with it.
  virtual bool Next(Source& source, Proto* out, absl::Status* end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;

  // Whether Next() found nothing because it waits for a Fill(). Then Fill()
  // runs without the lock (one at a time), for sources that must take
  // locks an announcement may be made under (the store's, for a Watch:
  // taking them under mu_ would order mu_ both before and after them), and
  // Next() is asked again when it returns true or an announcement came
  // meanwhile.
  virtual bool WantsFill() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return false; }
  virtual bool Fill(Source& /*source*/) ABSL_LOCKS_EXCLUDED(mu_) {
    return false;
  }

  absl::Mutex mu_;

 private:
  std::unique_ptr<Source> source_ ABSL_GUARDED_BY(mu_);
  Proto out_;  // The message being written; only while writing_.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool filling_ ABSL_GUARDED_BY(mu_) = false;
  bool pump_again_ ABSL_GUARDED_BY(mu_) = false;  // Pumped while filling.
};

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_SERVER_PUMPED_STREAM_H_
