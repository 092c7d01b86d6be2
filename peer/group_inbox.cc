#include "peer/group_inbox.h"

#include <utility>

namespace chat::peer {

GroupCheckedInbox::GroupCheckedInbox(Inbox* inbox, GroupGate* gate,
                                     GroupChangeListener* changes,
                                     Options options)
    : inbox_(*inbox), gate_(*gate), changes_(*changes), options_(options) {
  if (options_.fetch_in_background) {
    fetcher_ = std::thread([this] { RunFetches(); });
  }
}

GroupCheckedInbox::~GroupCheckedInbox() { Stop(); }

void GroupCheckedInbox::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (fetcher_.joinable()) fetcher_.join();
}

void GroupCheckedInbox::Receive(ChatMessage message, ReceivedCallback done) {
  if (options_.fetch_in_background && gate_.NeedsFetch(message)) {
    {
      absl::MutexLock lock(&mu_);
      if (!stopping_ && waiting_.size() < options_.max_waiting) {
        waiting_.push_back({std::move(message), std::move(done)});
        return;
      }
    }
    done(absl::UnavailableError(
        "the recipient is busy learning its groups' states; try again"));
    return;
  }
  JudgeAndKeep(std::move(message), std::move(done));
}

void GroupCheckedInbox::JudgeAndKeep(ChatMessage message,
                                     ReceivedCallback done) {
  if (!message.group_id.empty()) {
    absl::StatusOr<GroupVerdict> verdict = gate_.Admit(message);
    if (!verdict.ok()) {
      done(verdict.status());
      return;
    }
    if (!verdict->advanced.empty()) changes_.OnGroupAdvanced(verdict->advanced);
  }
  inbox_.Receive(std::move(message), std::move(done));
}

void GroupCheckedInbox::RunFetches() {
  while (true) {
    Waiting next;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !waiting_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) break;
      next = std::move(waiting_.front());
      waiting_.pop_front();
    }
    JudgeAndKeep(std::move(next.message), std::move(next.done));
  }
  std::deque<Waiting> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(waiting_);
  }
  for (Waiting& waiting : left) {
    waiting.done(absl::UnavailableError("the recipient is shutting down"));
  }
}

}  // namespace chat::peer
