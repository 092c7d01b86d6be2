// The history's part of a running peer: what /history and /chat show, and
// what writes every state of our messages into the store's history.

#ifndef CHAT_PEER_HISTORY_H_
#define CHAT_PEER_HISTORY_H_

#include "peer/events.h"
#include "peer/history_store.h"
#include "peer/listeners.h"

namespace chat::peer {

// /history without N, the most /history shows, and what /chat shows first.
inline constexpr int kHistoryDefault = 20;
inline constexpr int kHistoryMost = 1000;
inline constexpr int kHistoryPreview = 5;

// Writes each state of our messages into the store's history
// (HistoryStore::RecordSendState), whatever the status and whoever changed
// it, then hands the event on to `screen`: the one place where states reach
// the history, so a new state (kRead, kExpired) needs nothing here. It sits
// on the path of a state change (DeliveryListener), before the front end,
// which only shows.
// Thread-safe.
class HistoryRecorder final : public DeliveryListener {
 public:
  // `store` and `screen` are not owned and must outlive this.
  HistoryRecorder(HistoryStore* store, EventSink* screen)
      : store_(store), screen_(screen) {}

  void OnSendState(const PeerEvent& event) override {
    if (!event.message.id.empty()) {
      // A group message's states come per copy, each with its member in
      // `to`.
      store_->RecordSendState(event.message.id, event.message.to, event.status);
    }
    screen_->OnEvent(event);
  }

 private:
  HistoryStore* const store_;  // Not owned.
  EventSink* const screen_;    // Not owned.
};

}  // namespace chat::peer

#endif  // CHAT_PEER_HISTORY_H_
