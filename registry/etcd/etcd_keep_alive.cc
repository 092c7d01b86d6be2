#include "registry/etcd/etcd_keep_alive.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace chat::registry::etcd {
namespace {

// How long the loop waits with nothing to renew, and before reopening a
// broken stream (etcd down: one attempt per pause, not a busy loop).
constexpr Millis kIdlePause{1000};
constexpr Millis kReconnectPause{250};

}  // namespace

struct EtcdKeepAlive::Stream {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::Lease::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<
      grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                               etcdserverpb::LeaseKeepAliveResponse>>
      stream;
};

EtcdKeepAlive::EtcdKeepAlive(EtcdClient* client, const Clock& clock,
                             LeaseLossListener* listener)
    : client_(client),
      clock_(clock),
      listener_(listener),
      answer_timeout_(std::max(
          Millis(1), absl::ToChronoMilliseconds(client->attempt_timeout()))) {
  loop_.emplace(clock_, Millis(0), [this] { return Step(); });
}

EtcdKeepAlive::~EtcdKeepAlive() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (stream_) stream_->context.TryCancel();
  }
  loop_->Stop();
  // The loop has stopped: nothing else touches reader_ or stream_.
  if (reader_.joinable()) reader_.join();
  std::unique_ptr<Stream> stream;
  std::vector<RenewCallback> unanswered;
  {
    absl::MutexLock lock(&mu_);
    stream = std::move(stream_);
    unanswered = TakeUnanswered(/*queued_too=*/true);
  }
  if (stream) (void)stream->stream->Finish();
  for (RenewCallback& done : unanswered) {
    done(absl::UnavailableError("etcd keep-alive: shutting down"));
  }
}

Millis EtcdKeepAlive::Interval(int64_t ttl_seconds) {
  return std::max(Millis(100), Millis(ttl_seconds * 1000 / 3));
}

std::vector<EtcdKeepAlive::RenewCallback> EtcdKeepAlive::TakeUnanswered(
    bool queued_too) {
  std::vector<RenewCallback> taken;
  for (auto& [lease, slots] : in_flight_) {
    for (auto& slot : slots) {
      for (RenewCallback& done : slot) taken.push_back(std::move(done));
    }
  }
  in_flight_.clear();
  if (queued_too) {
    for (auto& [lease, callbacks] : queued_) {
      for (RenewCallback& done : callbacks) taken.push_back(std::move(done));
    }
    queued_.clear();
  }
  return taken;
}

void EtcdKeepAlive::Keep(int64_t lease, int64_t ttl_seconds) {
  {
    absl::MutexLock lock(&mu_);
    Kept& kept = kept_[lease];
    kept.ttl_seconds = std::max<int64_t>(1, ttl_seconds);
    kept.next_due = clock_.Monotonic() + Interval(kept.ttl_seconds);
  }
  loop_->Wake();
}

void EtcdKeepAlive::Forget(int64_t lease) {
  absl::MutexLock lock(&mu_);
  kept_.erase(lease);
}

void EtcdKeepAlive::RenewOnce(int64_t lease, RenewCallback done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queued_[lease].push_back(std::move(done));
      done = nullptr;
    }
  }
  if (done) {
    done(absl::UnavailableError("etcd keep-alive: shutting down"));
    return;
  }
  loop_->Wake();
}

size_t EtcdKeepAlive::size() const {
  absl::MutexLock lock(&mu_);
  return kept_.size();
}

int64_t EtcdKeepAlive::renewals() const {
  absl::MutexLock lock(&mu_);
  return renewals_;
}

int64_t EtcdKeepAlive::streams_opened() const {
  absl::MutexLock lock(&mu_);
  return streams_opened_;
}

std::optional<Millis> EtcdKeepAlive::Step() {
  // A broken stream: end it (its reader has returned or will, once the
  // call is cancelled), then come back to open another after a pause.
  std::unique_ptr<Stream> old;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return std::nullopt;
    if (stream_ && broken_) {
      old = std::move(stream_);
      broken_ = false;
    }
  }
  if (old) {
    // Its member died, hung, or lost its leader: the next stream goes
    // elsewhere while it recovers.
    client_->ReportStreamFailure(old->channel);
    old->context.TryCancel();
    if (reader_.joinable()) reader_.join();
    (void)old->stream->Finish();
    // Renewals written to the old stream and not answered: their outcome
    // is unknown, and that stream will never tell.
    std::vector<RenewCallback> unanswered;
    {
      absl::MutexLock lock(&mu_);
      unanswered = TakeUnanswered(/*queued_too=*/false);
      unanswered_since_.reset();
    }
    for (RenewCallback& done : unanswered) {
      done(absl::UnavailableError(
          "etcd keep-alive: the stream to etcd broke before the answer"));
    }
    return kReconnectPause;
  }

  bool open = false;
  {
    absl::MutexLock lock(&mu_);
    // Keep() and RenewOnce() wake the loop. Renewals in flight keep it
    // going: below, it notices a member that leaves them unanswered.
    if (kept_.empty() && queued_.empty() && in_flight_.empty()) {
      return kIdlePause;
    }
    open = stream_ == nullptr;
  }
  if (open) {
    auto stream = std::make_unique<Stream>();
    stream->channel = client_->NextChannel();
    stream->stub = etcdserverpb::Lease::NewStub(stream->channel);
    // A member cut off from the majority cannot renew: with "hasleader" it
    // ends the stream instead of keeping it open and silent.
    AddRequireLeader(stream->context);
    stream->stream = stream->stub->LeaseKeepAlive(&stream->context);
    Stream* raw = stream.get();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        stream->context.TryCancel();
      } else {
        stream_ = std::move(stream);
        ++streams_opened_;
        // Renewals may have been missed while no stream ran: all due now.
        MonoTime now = clock_.Monotonic();
        for (auto& [lease, kept] : kept_) kept.next_due = now;
      }
    }
    if (stream) {  // Stopping: not kept.
      (void)stream->stream->Finish();
      return std::nullopt;
    }
    reader_ = std::thread([this, raw] { ReadLoop(raw); });
  }

  // The renewals asked for by RenewOnce() go first, with their callbacks,
  // then the periodic ones due now. Each write's slot is queued in
  // in_flight_ before the write, so its answer (read on the reader thread)
  // always finds it.
  std::vector<int64_t> due;
  Stream* stream = nullptr;
  Millis pause = kIdlePause;
  {
    absl::MutexLock lock(&mu_);
    stream = stream_.get();
    MonoTime now = clock_.Monotonic();
    // Renewals written and unanswered for a call attempt's deadline: the member
    // hangs (frozen, or its connection is gone without a reset). The
    // stream is treated as broken, and the next one opens elsewhere.
    if (unanswered_since_) {
      const Millis waited =
          std::chrono::duration_cast<Millis>(now - *unanswered_since_);
      if (waited >= answer_timeout_) {
        broken_ = true;
        return Millis(0);
      }
    }
    if (!queued_.empty() && in_flight_.empty()) unanswered_since_ = now;
    for (auto& [lease, callbacks] : queued_) {
      due.push_back(lease);
      in_flight_[lease].push_back(std::move(callbacks));
      // This renewal serves as the periodic one too.
      if (auto kept = kept_.find(lease); kept != kept_.end()) {
        kept->second.next_due = now + Interval(kept->second.ttl_seconds);
      }
    }
    queued_.clear();
    for (auto& [lease, kept] : kept_) {
      if (kept.next_due <= now) {
        if (in_flight_.empty()) unanswered_since_ = now;
        due.push_back(lease);
        in_flight_[lease].emplace_back();
        kept.next_due = now + Interval(kept.ttl_seconds);
      }
      pause = std::min(pause,
                       std::chrono::duration_cast<Millis>(kept.next_due - now));
    }
    if (unanswered_since_) {
      pause =
          std::min(pause, answer_timeout_ - std::chrono::duration_cast<Millis>(
                                                now - *unanswered_since_));
    }
  }
  // Only this thread writes, and only it replaces stream_.
  for (int64_t lease : due) {
    etcdserverpb::LeaseKeepAliveRequest request;
    request.set_id(lease);
    if (!stream->stream->Write(request)) {
      // The slots of this write and those after it stay in in_flight_ and
      // are failed with the stream's other unanswered renewals.
      absl::MutexLock lock(&mu_);
      broken_ = true;
      return Millis(0);
    }
  }
  return std::max(pause, Millis(1));
}

void EtcdKeepAlive::ReadLoop(Stream* stream) {
  etcdserverpb::LeaseKeepAliveResponse response;
  bool answered_once = false;
  while (stream->stream->Read(&response)) {
    // The member answers: its endpoint's pause ends (once per stream).
    if (!answered_once) {
      answered_once = true;
      client_->ReportStreamAnswering(stream->channel);
    }
    bool lost = false;
    std::vector<RenewCallback> answered;
    {
      absl::MutexLock lock(&mu_);
      if (auto slots = in_flight_.find(response.id());
          slots != in_flight_.end()) {
        answered = std::move(slots->second.front());
        slots->second.pop_front();
        if (slots->second.empty()) in_flight_.erase(slots);
      }
      // An answer: the member is alive; what is still in flight waits anew.
      if (in_flight_.empty()) {
        unanswered_since_.reset();
      } else {
        unanswered_since_ = clock_.Monotonic();
      }
      if (response.ttl() > 0) ++renewals_;
      auto it = kept_.find(response.id());
      if (it != kept_.end()) {  // Else forgotten meanwhile, or never kept.
        if (response.ttl() <= 0) {
          kept_.erase(it);
          lost = true;
        } else {
          it->second.ttl_seconds = response.ttl();
          it->second.next_due = clock_.Monotonic() + Interval(response.ttl());
        }
      }
    }
    for (RenewCallback& done : answered) {
      if (response.ttl() > 0) {
        done(response.ttl());
      } else {
        done(absl::NotFoundError(
            absl::StrCat("etcd lease ", response.id(), " does not exist")));
      }
    }
    if (lost && listener_ != nullptr) listener_->OnLeaseLost(response.id());
  }
  {
    absl::MutexLock lock(&mu_);
    broken_ = true;
  }
  loop_->Wake();
}

}  // namespace chat::registry::etcd
