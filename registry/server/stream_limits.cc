#include "registry/server/stream_limits.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/limits.h"

namespace chat::registry {

StreamGate::Ticket::~Ticket() { gate_->Release(host_, lease_); }

StreamGate::StreamGate(std::string kind, size_t per_client,
                       std::string per_client_option, size_t per_lease,
                       std::string per_lease_option)
    : kind_(std::move(kind)),
      per_client_(per_client),
      per_client_option_(std::move(per_client_option)),
      per_lease_(per_lease),
      per_lease_option_(std::move(per_lease_option)) {}

absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> StreamGate::Admit(
    const std::string& host, const std::string& lease) {
  const std::string counted_lease = per_lease_ == 0 ? "" : lease;
  absl::MutexLock lock(&mu_);
  size_t& from_host = by_host_[host];
  if (from_host >= per_client_) {
    if (from_host == 0) by_host_.erase(host);
    return LimitError(absl::StrCat("too many ", kind_, " streams from ", host),
                      static_cast<int64_t>(per_client_), per_client_option_);
  }
  if (!counted_lease.empty()) {
    auto it = by_lease_.find(counted_lease);
    if (it != by_lease_.end() && it->second >= per_lease_) {
      if (from_host == 0) by_host_.erase(host);
      // Never the lease id itself: it is a secret.
      return LimitError(
          absl::StrCat("too many ", kind_, " streams on one lease"),
          static_cast<int64_t>(per_lease_), per_lease_option_);
    }
    ++by_lease_[counted_lease];
  }
  ++from_host;
  return std::unique_ptr<Ticket>(new Ticket(this, host, counted_lease));
}

size_t StreamGate::OpenFrom(const std::string& host) {
  absl::MutexLock lock(&mu_);
  auto it = by_host_.find(host);
  return it == by_host_.end() ? 0 : it->second;
}

void StreamGate::Release(const std::string& host, const std::string& lease) {
  absl::MutexLock lock(&mu_);
  if (auto it = by_host_.find(host);
      it != by_host_.end() && --it->second == 0) {
    by_host_.erase(it);
  }
  if (lease.empty()) return;
  if (auto it = by_lease_.find(lease);
      it != by_lease_.end() && --it->second == 0) {
    by_lease_.erase(it);
  }
}

}  // namespace chat::registry
