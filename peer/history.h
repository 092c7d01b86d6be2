// The history's part of a running peer: what /history and /chat show, and
// the sink that keeps every state of our messages in the store's history.

#ifndef CHAT_PEER_HISTORY_H_
#define CHAT_PEER_HISTORY_H_

#include <atomic>

#include "peer/events.h"
#include "peer/history_store.h"

namespace chat::peer {

// /history without N, the most /history shows, and what /chat shows first.
inline constexpr int kHistoryDefault = 20;
inline constexpr int kHistoryMost = 1000;
inline constexpr int kHistoryPreview = 5;

// Passes every event on to `next`, and records each kSendResult's status
// in the store's history first (HistoryStore::RecordSendState), whatever the
// status and whoever emits it: the one place where states reach the
// history, so a new state (kRead, kExpired) needs nothing here.
// Thread-safe.
class HistoryRecorder final : public EventSink {
 public:
  // `next` is not owned and must outlive this.
  explicit HistoryRecorder(EventSink* next) : next_(next) {}

  // Records into `store` from now on (null: records nothing). Not owned;
  // must outlive this or be unset first.
  void SetStore(HistoryStore* store) { store_.store(store); }

  void OnEvent(const PeerEvent& event) override {
    HistoryStore* store = store_.load();
    if (store != nullptr && event.kind == EventKind::kSendResult &&
        !event.message.id.empty()) {
      store->RecordSendState(event.message.id, event.status);
    }
    next_->OnEvent(event);
  }

 private:
  EventSink* const next_;
  std::atomic<HistoryStore*> store_{nullptr};
};

}  // namespace chat::peer

#endif  // CHAT_PEER_HISTORY_H_
