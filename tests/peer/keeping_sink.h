// A MessageSink for ChatService tests: keeps every message it is handed and
// accepts it at once.

#ifndef CHAT_TESTS_PEER_KEEPING_SINK_H_
#define CHAT_TESTS_PEER_KEEPING_SINK_H_

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "peer/chat_service.h"
#include "peer/message.h"

namespace chat::peer::testing {

// Thread-safe: gRPC threads call Accept, the test reads messages().
class KeepingSink final : public MessageSink {
 public:
  void Accept(const ChatMessage& message, AcceptCallback done) override {
    {
      absl::MutexLock lock(&mu_);
      messages_.push_back(message);
    }
    done(absl::OkStatus());
  }
  std::vector<ChatMessage> messages() {
    absl::MutexLock lock(&mu_);
    return messages_;
  }

 private:
  absl::Mutex mu_;
  std::vector<ChatMessage> messages_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::peer::testing

#endif  // CHAT_TESTS_PEER_KEEPING_SINK_H_
