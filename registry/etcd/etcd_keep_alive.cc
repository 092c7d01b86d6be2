#include "registry/etcd/etcd_keep_alive.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace chat::registry::etcd {
namespace {

// How long the loop waits with nothing to renew, and before reopening a
// broken stream (etcd down: one attempt per pause, not a busy loop).
constexpr Millis kIdlePause{1000};
constexpr Millis kReconnectPause{250};

}  // namespace

struct EtcdKeepAlive::Stream {
  std::unique_ptr<etcdserverpb::Lease::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<
      grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                               etcdserverpb::LeaseKeepAliveResponse>>
      stream;
};

EtcdKeepAlive::EtcdKeepAlive(EtcdClient* client, const Clock& clock,
                             LeaseLossListener* listener)
    : client_(client), clock_(clock), listener_(listener) {
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
  {
    absl::MutexLock lock(&mu_);
    stream = std::move(stream_);
  }
  if (stream) (void)stream->stream->Finish();
}

Millis EtcdKeepAlive::Interval(int64_t ttl_seconds) {
  return std::max(Millis(100), Millis(ttl_seconds * 1000 / 3));
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
    old->context.TryCancel();
    if (reader_.joinable()) reader_.join();
    (void)old->stream->Finish();
    return kReconnectPause;
  }

  bool open = false;
  {
    absl::MutexLock lock(&mu_);
    if (kept_.empty()) return kIdlePause;  // Keep() wakes the loop.
    open = stream_ == nullptr;
  }
  if (open) {
    auto stream = std::make_unique<Stream>();
    stream->stub = etcdserverpb::Lease::NewStub(client_->NextChannel());
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

  // The renewals due now; each is scheduled again a full interval later,
  // and sooner again if etcd's answer says so (ReadLoop).
  std::vector<int64_t> due;
  Stream* stream = nullptr;
  Millis pause = kIdlePause;
  {
    absl::MutexLock lock(&mu_);
    stream = stream_.get();
    MonoTime now = clock_.Monotonic();
    for (auto& [lease, kept] : kept_) {
      if (kept.next_due <= now) {
        due.push_back(lease);
        kept.next_due = now + Interval(kept.ttl_seconds);
      }
      pause = std::min(pause,
                       std::chrono::duration_cast<Millis>(kept.next_due - now));
    }
  }
  // Only this thread writes, and only it replaces stream_.
  for (int64_t lease : due) {
    etcdserverpb::LeaseKeepAliveRequest request;
    request.set_id(lease);
    if (!stream->stream->Write(request)) {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      return Millis(0);
    }
  }
  return std::max(pause, Millis(1));
}

void EtcdKeepAlive::ReadLoop(Stream* stream) {
  etcdserverpb::LeaseKeepAliveResponse response;
  while (stream->stream->Read(&response)) {
    bool lost = false;
    {
      absl::MutexLock lock(&mu_);
      auto it = kept_.find(response.id());
      if (it == kept_.end()) continue;  // Forgotten meanwhile.
      if (response.ttl() <= 0) {
        kept_.erase(it);
        lost = true;
      } else {
        ++renewals_;
        it->second.ttl_seconds = response.ttl();
        it->second.next_due = clock_.Monotonic() + Interval(response.ttl());
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
