#include "common/overload.h"

#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/limits.h"
#include "common/log.h"

namespace chat {

CallGate::Ticket& CallGate::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    Release();
    gate_ = other.gate_;
    other.gate_ = nullptr;
  }
  return *this;
}

void CallGate::Ticket::Release() {
  if (gate_ == nullptr) return;
  gate_->in_progress_.fetch_sub(1, std::memory_order_relaxed);
  gate_ = nullptr;
}

CallGate::CallGate(const OverloadOptions& options) : options_(options) {}

namespace {

int64_t Nanos(MonoTime time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             time.time_since_epoch())
      .count();
}

}  // namespace

bool CallGate::ShedLate(bool late, MonoTime now) {
  if (!late) {
    // Load first: on a server that is keeping up, nearly every call lands
    // here, and a load does not take the cache line from the other cores.
    if (late_since_.load(std::memory_order_relaxed) != kOnTime) {
      late_since_.store(kOnTime, std::memory_order_relaxed);
    }
    return false;
  }
  int64_t since = late_since_.load(std::memory_order_relaxed);
  if (since == kOnTime) {
    // The first late call of a run starts the interval; a racing call that
    // started it first wins, which moves the start by microseconds at most.
    const int64_t start = Nanos(now);
    if (late_since_.compare_exchange_strong(since, start,
                                            std::memory_order_relaxed)) {
      return false;
    }
    if (since == kOnTime) return false;
  }
  return Nanos(now) - since >=
         std::chrono::duration_cast<std::chrono::nanoseconds>(
             options_.late_interval)
             .count();
}

bool CallGate::shedding() const {
  if (options_.late_target <= Millis(0)) return false;
  const int64_t since = late_since_.load(std::memory_order_relaxed);
  return since != kOnTime &&
         Nanos(options_.clock->Monotonic()) - since >=
             std::chrono::duration_cast<std::chrono::nanoseconds>(
                 options_.late_interval)
                 .count();
}

absl::StatusOr<CallGate::Ticket> CallGate::Admit(absl::Time deadline) {
  const absl::Time now = options_.clock->Wall();
  const bool judged =
      options_.late_target > Millis(0) && deadline != absl::InfiniteFuture();
  if (deadline <= now) {
    if (judged) ShedLate(true, options_.clock->Monotonic());
    expired_.fetch_add(1, std::memory_order_relaxed);
    if (options_.log != nullptr) {
      options_.log->Log("overload:expired",
                        "overload: dropped a call that arrived past its "
                        "deadline");
    }
    return absl::DeadlineExceededError(
        "the call's deadline passed before the server could start on it");
  }
  if (judged &&
      ShedLate(deadline - now < absl::FromChrono(options_.late_target),
               options_.clock->Monotonic())) {
    shed_.fetch_add(1, std::memory_order_relaxed);
    absl::Status refusal = absl::ResourceExhaustedError(absl::StrCat(
        "the server is overloaded: calls reach it late, and this one had "
        "less than ",
        options_.late_target.count(),
        " ms left before its deadline (--late-target-ms)"));
    if (options_.log != nullptr) {
      options_.log->Log(
          "overload:shed",
          absl::StrCat("overload: shed a late call: ", refusal.message()));
    }
    return refusal;
  }
  const int64_t before = in_progress_.fetch_add(1, std::memory_order_relaxed);
  if (options_.max_calls_in_progress > 0 &&
      before >= options_.max_calls_in_progress) {
    in_progress_.fetch_sub(1, std::memory_order_relaxed);
    refused_.fetch_add(1, std::memory_order_relaxed);
    absl::Status refusal =
        LimitError("too many calls in progress", options_.max_calls_in_progress,
                   "max-calls-in-progress");
    if (options_.log != nullptr) {
      options_.log->Log(
          "overload:refused",
          absl::StrCat("overload: refused a call: ", refusal.message()));
    }
    return refusal;
  }
  admitted_.fetch_add(1, std::memory_order_relaxed);
  return Ticket(this);
}

absl::StatusOr<CallGate::Ticket> CallGate::Admit(
    const grpc::ServerContextBase& context) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  return Admit(deadline == std::chrono::system_clock::time_point::max()
                   ? absl::InfiniteFuture()
                   : absl::FromChrono(deadline));
}

CallGate::Counts CallGate::counts() const {
  Counts counts;
  counts.in_progress = in_progress_.load(std::memory_order_relaxed);
  counts.admitted = admitted_.load(std::memory_order_relaxed);
  counts.expired = expired_.load(std::memory_order_relaxed);
  counts.refused = refused_.load(std::memory_order_relaxed);
  counts.shed = shed_.load(std::memory_order_relaxed);
  return counts;
}

absl::StatusOr<uint64_t> RaiseOpenFileLimit() {
  struct rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(
        absl::StrCat("getrlimit(RLIMIT_NOFILE): ", std::strerror(errno)));
  }
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t soft = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      return absl::InternalError(
          absl::StrCat("cannot raise the open file limit from ", soft, " to ",
                       limit.rlim_max, ": ", std::strerror(errno)));
    }
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

void ApplyProcessLimits(const std::string& component) {
  RouteLibraryLogs(component);
  absl::StatusOr<uint64_t> raised = RaiseOpenFileLimit();
  if (!raised.ok()) LogLine(component, std::string(raised.status().message()));
}

CallGate& DefaultCallGate() {
  static CallGate* const gate = new CallGate(OverloadOptions());
  return *gate;
}

}  // namespace chat
