#include "registry/server/challenges.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "common/random.h"
#include "registry/names.h"

namespace chat::registry {

namespace {

ChallengeBook::Options AtLeastOne(ChallengeBook::Options options) {
  if (options.max_outstanding == 0) options.max_outstanding = 1;
  return options;
}

}  // namespace

ChallengeBook::ChallengeBook(const Clock& clock, Options options)
    : clock_(clock), options_(AtLeastOne(options)) {}

std::string ChallengeBook::Issue(const std::string& name) {
  std::string challenge =
      absl::HexStringToBytes(RandomHex(static_cast<int>(kChallengeBytes)));
  const MonoTime now = clock_.Monotonic();
  absl::MutexLock lock(&mu_);
  Prune(now, /*room=*/1);
  const uint64_t seq = ++next_seq_;
  issued_[challenge] = Issued{NameKey(name), now + options_.lifetime, seq};
  order_.emplace(seq, challenge);
  return challenge;
}

absl::Status ChallengeBook::Consume(const std::string& name,
                                    const std::string& challenge) {
  const MonoTime now = clock_.Monotonic();
  absl::MutexLock lock(&mu_);
  auto it = issued_.find(challenge);
  if (it == issued_.end()) {
    return absl::UnauthenticatedError(
        "challenge unknown, used or expired: ask for a new one (Challenge) "
        "and sign it");
  }
  const Issued issued = it->second;
  order_.erase(issued.seq);
  issued_.erase(it);
  if (issued.expires_at <= now) {
    return absl::UnauthenticatedError(
        "challenge expired: ask for a new one (Challenge) and sign it");
  }
  if (issued.name_key != NameKey(name)) {
    return absl::UnauthenticatedError("challenge was issued for another name");
  }
  return absl::OkStatus();
}

size_t ChallengeBook::size() const {
  absl::MutexLock lock(&mu_);
  return issued_.size();
}

void ChallengeBook::Prune(MonoTime now, size_t room) {
  while (!order_.empty()) {
    auto oldest = order_.begin();
    auto it = issued_.find(oldest->second);
    const bool expired = it == issued_.end() || it->second.expires_at <= now;
    if (!expired && issued_.size() + room <= options_.max_outstanding) break;
    if (it != issued_.end()) issued_.erase(it);
    order_.erase(oldest);
  }
}

}  // namespace chat::registry
