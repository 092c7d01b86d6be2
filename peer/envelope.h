// What turns our messages into what goes on the wire and back: sealed to a
// recipient with a key, plain to one without (a lab peer); on arrival,
// opened and checked against the sender's pinned key, or refused.

#ifndef CHAT_PEER_ENVELOPE_H_
#define CHAT_PEER_ENVELOPE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/identity.h"
#include "peer/key_book.h"
#include "peer/message.h"
#include "proto/chat.pb.h"

namespace chat::peer {

// What a receipt or a delivery proof says about the recipient of ours.
enum class Proof {
  kValid,    // Made by the recipient's key: it has the message.
  kInvalid,  // Not made by that key (forged, or another message's): ignored.
  kNoKey,    // The recipient is bound to no key: nothing can prove it, so
             // its word counts only as unverified.
};

// How an arriving Message becomes a ChatMessage we may show. Thread-safe.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // The message `proto` carries, with `unverified` set when nothing proves
  // who wrote it. Errors: kInvalidArgument (malformed, naming the field; a
  // plain message that carries group fields, since group messages are
  // always sealed), kUnauthenticated (not from who it claims: never shown),
  // kUnavailable (the sender's key cannot be looked up now, or the sender is
  // blocked until /trust: try again later).
  // Without `may_wait` it answers from memory (a gRPC callback thread):
  // kUnavailable when the sender's key would have to be looked up.
  virtual absl::StatusOr<ChatMessage> Unwrap(const ::Message& proto,
                                             bool may_wait) = 0;
  // Whether Unwrap() without `may_wait` refuses a message from `sender`
  // only because its key would have to be looked up (a name met for the
  // first time), so that waiting would answer it.
  virtual bool WouldAsk(const std::string& /*sender*/) { return false; }
  // The proof of delivery (peer/sealing.h MakeDeliveryProof) of `message`,
  // which Unwrap() made and the inbox has kept, for its sender's peer; from
  // memory. nullopt when there is none to give: the message is unverified
  // (its sender has no key), or this peer holds no key.
  virtual std::optional<std::string> DeliveryProof(
      const ChatMessage& /*message*/) {
    return std::nullopt;
  }
};

// Accepts every plain message as unverified (sealed ones, and plain ones
// with group fields, are refused): the ChattingService of a program without
// an identity, and tests.
class PlainAuthenticator final : public Authenticator {
 public:
  absl::StatusOr<ChatMessage> Unwrap(const ::Message& proto,
                                     bool may_wait) override;
};

// Seals and opens with our identity; keys from a KeyBook (memory, except
// for a name met for the first time). Refusals of sealed or spoofed
// messages are logged (stderr), at most once per sender per minute.
// Thread-safe.
class Envelope final : public Authenticator {
 public:
  // `keys` is not owned and, with `clock`, must outlive this.
  Envelope(std::string own_name, const Identity& identity, KeyBook* keys,
           const Clock& clock);

  // `message` as it goes on the wire to message.to: sealed when the
  // recipient has a key, plain when it has none. kUnavailable when its key
  // cannot be known now or it is blocked (KeyBook::KeyFor). A group message
  // (group fields set) is only ever sealed: kFailedPrecondition to a
  // recipient without a key, kInvalidArgument for malformed group fields
  // (SealMessage). A direct message is wrapped as before.
  // For the mailbox (`for_mailbox`), a recipient without a key (other than
  // a static entry) gets
  // kUnavailable instead: it has never registered with one, and a plain
  // message from us would be refused as spoofed when it comes for it.
  absl::StatusOr<::Message> Wrap(const ChatMessage& message,
                                 bool for_mailbox = false);

  absl::StatusOr<ChatMessage> Unwrap(const ::Message& proto,
                                     bool may_wait) override;
  bool WouldAsk(const std::string& sender) override {
    return keys_->WouldAsk(sender);
  }
  std::optional<std::string> DeliveryProof(const ChatMessage& message) override;

  // Whether `proof` (empty: none came) shows that message.to's peer has our
  // `message`: kValid when its key made it, kInvalid when not (or none
  // came), kNoKey when message.to is bound to no key. kUnavailable when its
  // key cannot be known now.
  absl::StatusOr<Proof> CheckDelivered(const ChatMessage& message,
                                       const std::string& proof);

  // The receipt for `sender`'s message `id`, which we took from our
  // mailbox; nullopt when the sender has no key (nothing to seal to).
  absl::StatusOr<std::optional<std::string>> Receipt(const std::string& sender,
                                                     const std::string& id);

  // Whether `payload` is `recipient`'s receipt for our message `id`: kValid
  // when it opens with `recipient`'s key, kInvalid when not, kNoKey when
  // `recipient` is bound to no key (then only the registry vouches for it:
  // an unverified delivery at most). kUnavailable when its key cannot be
  // known now.
  absl::StatusOr<Proof> CheckReceipt(const std::string& recipient,
                                     const std::string& id,
                                     const std::string& payload);

  // Read receipts for `sender`'s messages `ids` (1..kMaxReadIds), sealed
  // for it; nullopt when `sender` has no key (a lab peer: it gets none).
  // kUnavailable when its key cannot be known now or it is blocked.
  absl::StatusOr<std::optional<::ReadReceipts>> SealReadReceipts(
      const std::string& sender, const std::vector<std::string>& ids);

  // The ids `receipts` says its sender read, checked against that sender's
  // pinned key. kUnauthenticated (not sealed by that key for us, or the
  // sender has no key) and kInvalidArgument (malformed) are logged as a
  // refusal (once a minute per sender); kUnavailable when the key cannot be
  // known now (try again later; without `may_wait`, also when it would
  // have to be looked up).
  absl::StatusOr<std::vector<std::string>> OpenReadReceipts(
      const ::ReadReceipts& receipts, bool may_wait);

  const PublicKey& own_key() const { return own_key_; }

  // How many refusals were logged so far (tests).
  int refusals_logged() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return refusals_logged_;
  }

 private:
  // Logs a refusal of `sender`'s message, unless one was logged within the
  // last minute.
  absl::Status Refuse(const std::string& sender, absl::Status status)
      ABSL_LOCKS_EXCLUDED(mu_);

  const std::string own_name_;
  const PublicKey own_key_;
  KeyBook* const keys_;  // Not owned.
  const Clock& clock_;
  PairCipher cipher_;  // One per peer: it caches the per-pair keys.

  mutable absl::Mutex mu_;
  int refusals_logged_ ABSL_GUARDED_BY(mu_) = 0;
  // Sender name key -> when its last refusal was logged (bounded).
  absl::flat_hash_map<std::string, absl::Time> logged_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::peer

#endif  // CHAT_PEER_ENVELOPE_H_
