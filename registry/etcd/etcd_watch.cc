#include "registry/etcd/etcd_watch.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "registry/etcd/etcd_convert.h"

namespace chat::registry::etcd {

// Everything of the gRPC stream, kept out of the header.
struct EtcdWatch::Stream {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::Watch::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest,
                                           etcdserverpb::WatchResponse>>
      stream;
  bool finished = false;

  // The stream's final status, as ours (once; later calls repeat it).
  absl::Status Finish(const std::string& what) {
    if (finished) return absl::UnavailableError(what + ": stream over");
    finished = true;
    grpc::Status status = stream->Finish();
    if (status.ok()) {
      return absl::UnavailableError(what + ": etcd closed the stream");
    }
    if (status.error_code() == grpc::StatusCode::CANCELLED) {
      return absl::CancelledError(what + ": cancelled");
    }
    return FromEtcdStatus(status.error_code(), status.error_message(), what);
  }
};

WatchOptions WatchOptions::Prefix(const std::string& prefix,
                                  int64_t start_revision) {
  WatchOptions options;
  options.key = prefix;
  options.range_end = PrefixEnd(prefix);
  options.start_revision = start_revision;
  return options;
}

// What the hang check does to this watch: asks for progress on the
// stream; gives up by reporting the member and cancelling the stream.
class EtcdWatch::LivenessStream final : public WatchLiveness::Stream {
 public:
  // Neither is owned; both must outlive this.
  LivenessStream(EtcdWatch* watch, EtcdClient* client)
      : watch_(watch), client_(client) {}

  bool AskForProgress() override { return watch_->RequestProgress().ok(); }

  void GiveUp() override {
    // Reported first, so the watch the caller opens next goes elsewhere.
    client_->ReportStreamFailure(watch_->channel());
    watch_->Cancel();
  }

 private:
  EtcdWatch* const watch_;
  EtcdClient* const client_;
};

EtcdWatch::EtcdWatch(std::unique_ptr<Stream> stream, EtcdClient* client,
                     const WatchOptions& options)
    : stream_(std::move(stream)) {
  if (!options.detect_hang) return;
  liveness_ = std::make_unique<WatchLiveness>(
      options.clock != nullptr ? *options.clock : RealClock(),
      absl::ToChronoMilliseconds(client->attempt_timeout()));
  liveness_stream_ = std::make_unique<LivenessStream>(this, client);
  checker_ = std::thread([this] { liveness_->Run(*liveness_stream_); });
}

EtcdWatch::~EtcdWatch() {
  Cancel();
  if (liveness_ != nullptr) {
    liveness_->Stop();
    checker_.join();
  }
  if (!stream_->finished) (void)stream_->Finish("etcd Watch");
}

absl::StatusOr<std::unique_ptr<EtcdWatch>> EtcdWatch::Open(
    EtcdClient* client, const WatchOptions& options) {
  auto stream = std::make_unique<Stream>();
  stream->channel = client->NextChannel();
  stream->stub = etcdserverpb::Watch::NewStub(stream->channel);
  // No deadline: the stream lives until cancelled. "hasleader": a member
  // cut off from the leader would otherwise keep the watch open and silent;
  // with it etcd ends the stream (kUnavailable) and we move elsewhere.
  stream->context.AddMetadata("hasleader", "true");
  stream->stream = stream->stub->Watch(&stream->context);

  etcdserverpb::WatchRequest request;
  auto* create = request.mutable_create_request();
  create->set_key(options.key);
  create->set_range_end(options.range_end);
  create->set_start_revision(options.start_revision);
  create->set_prev_kv(options.prev_kv);
  create->set_progress_notify(options.progress_notify);
  // A member that hangs (stopped, or cut off without a reset) would keep
  // the creation waiting until gRPC's keepalive gives the connection up:
  // past one call attempt's deadline, it counts as failing and the caller
  // opens the watch elsewhere. The stream itself has no deadline, so a
  // watchdog cancels it.
  absl::Notification answered;
  std::atomic<bool> timed_out{false};
  std::thread watchdog([&] {
    if (!answered.WaitForNotificationWithTimeout(client->attempt_timeout())) {
      timed_out = true;
      stream->context.TryCancel();
    }
  });
  etcdserverpb::WatchResponse response;
  const bool created =
      stream->stream->Write(request) && stream->stream->Read(&response);
  answered.Notify();
  watchdog.join();
  if (!created || timed_out) {
    if (created) stream->context.TryCancel();
    absl::Status finished = stream->Finish("etcd Watch");
    if (timed_out) {
      finished = absl::UnavailableError(
          "etcd Watch: the member did not answer the creation in time");
    }
    if (finished.code() == absl::StatusCode::kUnavailable) {
      client->ReportStreamFailure(stream->channel);
    }
    return finished;
  }
  if (!response.created()) {
    stream->context.TryCancel();
    (void)stream->Finish("etcd Watch");
    return absl::InternalError("etcd Watch: the first answer was no creation");
  }
  if (response.canceled()) {
    stream->context.TryCancel();
    (void)stream->Finish("etcd Watch");
    if (response.compact_revision() != 0) {
      return CompactedError("etcd Watch: start revision compacted",
                            response.compact_revision());
    }
    return absl::AbortedError("etcd Watch: refused: " +
                              response.cancel_reason());
  }
  // The member answered: its endpoint is used again at once, whatever
  // pause its failures (say, refusals without a leader during a partition)
  // had put on it.
  client->ReportStreamAnswering(stream->channel);
  return std::unique_ptr<EtcdWatch>(
      new EtcdWatch(std::move(stream), client, options));
}

absl::StatusOr<WatchBatch> EtcdWatch::Next() {
  if (!ended_.ok()) return ended_;
  etcdserverpb::WatchResponse response;
  while (true) {
    if (liveness_ != nullptr) liveness_->WaitStarted();
    const bool read = stream_->stream->Read(&response);
    if (liveness_ != nullptr) liveness_->WaitEnded();
    if (!read) {
      ended_ = stream_->Finish("etcd Watch");
      if (liveness_ != nullptr && liveness_->gave_up()) {
        ended_ = absl::UnavailableError(absl::StrCat(
            "etcd Watch: the member answered nothing, not even a progress "
            "request, for ",
            absl::FormatDuration(2 * absl::FromChrono(liveness_->patience())),
            "; it may hang"));
      }
      return ended_;
    }
    if (response.canceled() || response.compact_revision() != 0) {
      if (response.compact_revision() != 0) {
        ended_ = CompactedError(
            absl::StrCat("etcd Watch: revisions before ",
                         response.compact_revision(), " were compacted"),
            response.compact_revision());
      } else {
        ended_ = absl::AbortedError("etcd Watch: cancelled by etcd: " +
                                    response.cancel_reason());
      }
      Cancel();
      (void)stream_->Finish("etcd Watch");
      return ended_;
    }
    // A second "created" cannot come on a stream with one watch; skip it.
    if (response.created()) continue;
    WatchBatch batch;
    batch.revision = response.header().revision();
    for (const auto& event : response.events()) {
      WatchEvent ours;
      ours.type = event.type() == mvccpb::Event::DELETE
                      ? WatchEvent::Type::kDelete
                      : WatchEvent::Type::kPut;
      ours.kv = FromProto(event.kv());
      if (event.has_prev_kv()) ours.prev_kv = FromProto(event.prev_kv());
      batch.events.push_back(std::move(ours));
    }
    return batch;
  }
}

absl::Status EtcdWatch::RequestProgress() {
  absl::MutexLock lock(&write_mu_);
  if (cancelled_) return absl::UnavailableError("etcd Watch: over");
  etcdserverpb::WatchRequest request;
  request.mutable_progress_request();
  if (!stream_->stream->Write(request)) {
    return absl::UnavailableError("etcd Watch: the stream broke");
  }
  return absl::OkStatus();
}

const std::shared_ptr<grpc::Channel>& EtcdWatch::channel() const {
  return stream_->channel;
}

int64_t EtcdWatch::progress_requests() const {
  return liveness_ != nullptr ? liveness_->progress_requests() : 0;
}

void EtcdWatch::Cancel() {
  absl::MutexLock lock(&write_mu_);
  if (cancelled_) return;
  cancelled_ = true;
  stream_->context.TryCancel();
}

}  // namespace chat::registry::etcd
