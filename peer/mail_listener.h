// Listens to the peer's own mailbox in the registry: messages that waited
// for us while we were away, and receipts for ours that waited for others.

#ifndef CHAT_PEER_MAIL_LISTENER_H_
#define CHAT_PEER_MAIL_LISTENER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "peer/envelope.h"
#include "peer/events.h"
#include "peer/inbox.h"
#include "peer/listeners.h"
#include "peer/message.h"
#include "peer/outbox.h"
#include "peer/reconnecting_stream.h"
#include "registry/client/lease_keeper.h"
#include "registry/client/registry_client.h"

namespace chat::peer {

// The one line that says why a message expired: "it waited 7 days in bob's
// mailbox and expired" (`waited_ms` rounded down to days, hours, minutes or
// seconds).
std::string ExpiredText(const std::string& recipient, int64_t waited_ms);

// Keeps a Listen stream open on our mailbox, on its own thread, with the
// lease we hold now; reopens it after 200 ms, doubling to 5 s, when it ends
// (the registry went away, or our lease changed).
//
// A message is opened and checked (Envelope::Unwrap), kept in the inbox
// (Inbox::Receive), what that releases is told to `released`, and only
// then is the message acknowledged, with a receipt sealed to its sender. A
// receipt that opens with the key of the recipient it names, for one of
// our messages to that recipient, takes it out of the outbox and tells
// `deliveries` it is kDelivered "from the mailbox" (unless a direct copy was
// reported already); one from a recipient bound to no key proves nothing (only
// the registry vouches for it) and is kDelivered unverified. Read receipts go
// to `read_receipts`. An expiry receipt (made by the registry: the Listen
// stream is all that vouches for it) for one of our messages to its sender
// still in the outbox (stored: only deposited mail expires) ends it there,
// kExpired ("it waited 7 days in bob's mailbox and expired"); others
// are let go. Forged messages and receipts are acknowledged away unseen. What
// could not be kept or checked now (the sender's key cannot be looked up, or
// changed) is not acknowledged, so it comes again with the next stream, or at
// Reread().
//
// Thread-safe. What it tells (`released`, `deliveries`, `read_receipts`,
// `events`) is told from the listener's thread (`released` also from the
// store's writer thread), and must not call Stop().
class MailListener {
 public:
  // All must be set but `read_receipts`.
  struct Options {
    std::string own_name;
    // Holds our name: the stream is opened with the lease it holds now
    // (none: not opened yet). Not owned; must outlive this.
    const registry::LeaseKeeper* keeper = nullptr;
    // Opens messages and checks receipts. Not owned; must outlive this.
    Envelope* envelope = nullptr;
    // Told the messages the inbox released, in order. Not owned; must
    // outlive this.
    ReleaseListener* released = nullptr;
    // Told each state of ours the mail settles (kDelivered, kExpired),
    // right after the outbox changed. Not owned; must outlive this.
    DeliveryListener* deliveries = nullptr;
    // Takes read receipts (may wait: this is the listener's own thread);
    // kUnavailable leaves them in the mailbox for later. Null: acknowledged
    // unseen. Not owned; must outlive this.
    ReadReceiptTaker* read_receipts = nullptr;
  };

  // Starts listening. `registry`, `inbox`, `outbox` and `events` are not
  // owned; they and `clock` must outlive this. The inbox takes the
  // messages, the outbox gives up ours that receipts or expiries settle,
  // `events` (the front end) is told what went wrong.
  MailListener(registry::RegistryClient* registry, Inbox* inbox, Outbox* outbox,
               EventSink* events, const Clock& clock, Options options);

  // Same as Stop().
  ~MailListener();

  MailListener(const MailListener&) = delete;
  MailListener& operator=(const MailListener&) = delete;

  // Reads the mailbox again from its start, soon: what was left there
  // because it could not be checked then (its sender's key had changed, or
  // could not be looked up) comes again. The Listen stream hands out each
  // item once, so without this it would wait for the next stream (a new
  // lease, a registry restart). Peer::Trust calls it.
  void Reread() { stream_->Reopen(); }

  // Ends the stream and the thread. Idempotent.
  void Stop() { stream_->Stop(); }

 private:
  using Stream = ReconnectingStream<registry::MailStream, registry::MailItem>;

  // A stream with the lease we hold now; nullptr while we hold none.
  std::unique_ptr<registry::MailStream> Open();
  void Handle(const registry::MailItem& item);
  // A receipt for one of ours: whether to acknowledge it now.
  bool HandleReceipt(const registry::MailItem& item);
  // Read receipts for ours: whether to acknowledge them now.
  bool HandleReadReceipts(const registry::MailItem& item);
  // The registry's word that one of ours expired unread in the recipient's
  // mailbox: whether to acknowledge it now.
  bool HandleExpired(const registry::MailItem& item);
  // A message for us: whether to acknowledge it now, and with which receipt.
  bool HandleMessage(const registry::MailItem& item,
                     std::vector<registry::MailItem>& receipts);
  void Emit(const PeerEvent& event) { events_->OnEvent(event); }

  registry::RegistryClient* const registry_;  // Not owned.
  Inbox* const inbox_;                        // Not owned.
  Outbox* const outbox_;                      // Not owned.
  EventSink* const events_;                   // Not owned.
  const Clock& clock_;
  const Options options_;

  // The stream's thread only: the lease the current stream was opened with.
  std::string lease_id_;

  std::optional<Stream> stream_;  // Last: its thread uses the above.
};

}  // namespace chat::peer

#endif  // CHAT_PEER_MAIL_LISTENER_H_
