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

absl::StatusOr<CallGate::Ticket> CallGate::Admit(absl::Time deadline) {
  if (deadline <= options_.clock->Wall()) {
    expired_.fetch_add(1, std::memory_order_relaxed);
    if (options_.log != nullptr) {
      options_.log->Log("overload:expired",
                        "overload: dropped a call that arrived past its "
                        "deadline");
    }
    return absl::DeadlineExceededError(
        "the call's deadline passed before the server could start on it");
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
