// End-to-end sealing of chat messages and mailbox receipts between two
// identities (docs/peer.md, "What is sealed"): the wire format only, no key
// lookup. PairCipher (common/identity.h) does the cryptography.

#ifndef CHAT_PEER_SEALING_H_
#define CHAT_PEER_SEALING_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/identity.h"
#include "peer/message.h"
#include "proto/chat.pb.h"

namespace chat::peer {

// Domain tags in front of every sealed plaintext, so bytes sealed for one
// purpose never pass for another.
inline constexpr absl::string_view kMessageTag{"chat-msg-v1\0", 12};
inline constexpr absl::string_view kReceiptTag{"chat-receipt-v1\0", 16};
inline constexpr absl::string_view kReadTag{"chat-read-v1\0", 13};
inline constexpr absl::string_view kDeliveredTag{"chat-delivered-v1\0", 18};

// At most this many message ids in one ReadReceipts (a batch).
inline constexpr size_t kMaxReadIds = 64;
// The largest sealed ReadReceipts accepted: kMaxReadIds ids of 64 bytes,
// two names, with room to spare.
inline constexpr size_t kMaxSealedReadBytes = 6144;

// The largest sealed field accepted: an inner Message with the longest text,
// names and ids, with room to spare.
inline constexpr size_t kMaxSealedBytes = 8192;

// `message` (id, from, to set) sealed for `recipient_key`: the outer Message
// carries sender, recipient, id and the sequence fields for routing and
// `sealed`; everything the recipient shows or uses is inside, the group
// fields (group_id, group_version, group_state_hash) too, and only there.
// Errors: kInvalidArgument for group fields ValidateGroupFields refuses;
// what PairCipher::Seal returns (kInvalidArgument for an unusable key).
absl::StatusOr<::Message> SealMessage(PairCipher& cipher,
                                      const PublicKey& recipient_key,
                                      const ChatMessage& message);

// Opens `outer` (with `sealed` set), which `sender_key` must have sealed for
// us (`own_name`). Errors, each naming the field:
//   kInvalidArgument: `sealed` too short or too long, `time`/`msg` set
//     outside, the inside is not a Message or has `sealed` itself, or its
//     group fields are malformed (ValidateGroupFields).
//   kUnauthenticated: not sealed by `sender_key` for us, changed on the way,
//     or the inside disagrees with the routing fields outside (the group
//     fields, when any is outside, must all equal the inside's), or names
//     another recipient (a message sealed for us, forwarded to someone else).
// The result has every field from the inside (received_at is not set), the
// group fields included: group_id empty for a direct message.
absl::StatusOr<ChatMessage> OpenMessage(PairCipher& cipher,
                                        const PublicKey& sender_key,
                                        const ::Message& outer,
                                        const std::string& own_name);

// The receipt the recipient `own_name` makes for message `id` when it takes
// it from its mailbox: Seal(sender_key, kReceiptTag + id + own_name).
absl::StatusOr<std::string> MakeReceipt(PairCipher& cipher,
                                        const PublicKey& sender_key,
                                        const std::string& id,
                                        const std::string& own_name);

// True when `payload` is the receipt `recipient` (holder of
// `recipient_key`) made for our message `id`. The name is compared as a
// name key (case-insensitively).
bool CheckReceipt(PairCipher& cipher, const PublicKey& recipient_key,
                  const std::string& payload, const std::string& id,
                  const std::string& recipient);

// The trailing metadata of a SendMessage answer that carries the recipient's
// proof of delivery (MakeDeliveryProof): sent only with OK, once the message
// is kept, for a message its sender sealed. A -bin key: gRPC carries any
// bytes in it.
inline constexpr char kDeliveredMetadata[] = "chat-delivered-bin";

// The proof a recipient (`recipient`, ourselves) gives the sender of message
// `id` (`sender`, holder of `sender_key`) once the message is kept: the pair
// key's MAC (PairCipher::Mac) of kDeliveredTag, then the id, the sender's
// and the recipient's name keys, each after its length (u32, big-endian).
// Only the two holders of the pair's keys can make it, and the sender never
// makes one for its own message; the names in this order keep a proof from
// passing for one the other way. kInvalidArgument for an unusable key.
absl::StatusOr<std::string> MakeDeliveryProof(PairCipher& cipher,
                                              const PublicKey& sender_key,
                                              const std::string& id,
                                              const std::string& sender,
                                              const std::string& recipient);

// True when `proof` is what `recipient` (holder of `recipient_key`) made
// for our (`sender`'s) message `id` (MakeDeliveryProof).
bool CheckDeliveryProof(PairCipher& cipher, const PublicKey& recipient_key,
                        const std::string& proof, const std::string& id,
                        const std::string& sender,
                        const std::string& recipient);

// Read receipts from the reader `own_name` to `sender` for its messages
// `ids` (1..kMaxReadIds, each 1-64 bytes), sealed for `sender_key`: outside
// only the two names, inside the names and the ids. Errors:
// kInvalidArgument (no ids, too many, a bad id or an unusable key).
absl::StatusOr<::ReadReceipts> SealReadReceipts(
    PairCipher& cipher, const PublicKey& sender_key,
    const std::string& own_name, const std::string& sender,
    const std::vector<std::string>& ids);

// The ids in `outer`, which `reader_key` (the key of outer.sender()) must
// have sealed for us (`own_name`). Errors: kInvalidArgument (malformed,
// sizes, not read receipts inside), kUnauthenticated (another key, changed
// on the way, or the names inside differ from those outside or name
// another recipient).
absl::StatusOr<std::vector<std::string>> OpenReadReceipts(
    PairCipher& cipher, const PublicKey& reader_key,
    const ::ReadReceipts& outer, const std::string& own_name);

}  // namespace chat::peer

#endif  // CHAT_PEER_SEALING_H_
