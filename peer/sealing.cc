#include "peer/sealing.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

absl::Status Mismatch(const char* field) {
  return absl::UnauthenticatedError(
      absl::StrCat("sealed: the routing field ", field,
                   " differs from the one sealed inside"));
}

// What one kind of sealed thing is, for OpenSealed and its error texts.
struct SealedKind {
  absl::string_view tag;    // What its plaintext starts with.
  size_t max_sealed_bytes;  // Its `sealed` field at most.
  const char* what;         // "" or "read receipts ", before "not sealed".
  const char* untagged;     // The error when the tag is another.
  const char* inner_type;   // The protobuf message inside, as named in text.
};

constexpr SealedKind kSealedMessage{kMessageTag, kMaxSealedBytes, "",
                                    "not a sealed chat message", "a Message"};
constexpr SealedKind kSealedReadReceipts{
    kReadTag, kMaxSealedReadBytes, "read receipts ", "not sealed read receipts",
    "ReadReceipts"};

// Opens `outer.sealed()`, sealed by `sender_key` for us as `kind`, into
// the same type sealed inside, and checks what both sides carry (sender,
// recipient) and that it is meant for `own_name`. kInvalidArgument for a
// malformed one, kUnauthenticated for one not sealed by that key or not for
// us; the caller checks its own fields after.
template <typename Proto>
absl::StatusOr<Proto> OpenSealed(PairCipher& cipher,
                                 const PublicKey& sender_key,
                                 const Proto& outer,
                                 const std::string& own_name,
                                 const SealedKind& kind) {
  const size_t min_bytes = kSealOverheadBytes + kind.tag.size();
  if (outer.sealed().size() < min_bytes ||
      outer.sealed().size() > kind.max_sealed_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("sealed is ", outer.sealed().size(), " bytes; it must be ",
                     min_bytes, "-", kind.max_sealed_bytes));
  }
  absl::StatusOr<std::string> plaintext =
      cipher.Open(sender_key, outer.sealed());
  if (!plaintext.ok()) {
    if (plaintext.status().code() == absl::StatusCode::kUnauthenticated) {
      return absl::UnauthenticatedError(
          absl::StrCat("sealed: ", kind.what, "not sealed by ",
                       PrintableText(outer.sender()),
                       "'s key for us, or changed on the way"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("sealed: ", plaintext.status().message()));
  }
  // Only the two holders of the pair's keys could have made it: from here
  // on, what is wrong is the sender's doing, but nothing is shown. Bytes
  // sealed as another kind never pass for this one.
  if (!absl::StartsWith(*plaintext, kind.tag)) {
    return absl::InvalidArgumentError(absl::StrCat("sealed: ", kind.untagged));
  }
  Proto inner;
  if (!inner.ParseFromArray(
          plaintext->data() + kind.tag.size(),
          static_cast<int>(plaintext->size() - kind.tag.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("sealed: the inside is not ", kind.inner_type));
  }
  if (!inner.sealed().empty()) {
    return absl::InvalidArgumentError("sealed: the inside is sealed again");
  }
  if (inner.sender() != outer.sender()) return Mismatch("sender");
  if (inner.recipient() != outer.recipient()) return Mismatch("recipient");
  if (registry::NameKey(inner.recipient()) != registry::NameKey(own_name)) {
    return absl::UnauthenticatedError(
        absl::StrCat("sealed: ", kind.what, "meant for ",
                     PrintableText(inner.recipient()), ", not ", own_name));
  }
  return inner;
}

}  // namespace

absl::StatusOr<::Message> SealMessage(PairCipher& cipher,
                                      const PublicKey& recipient_key,
                                      const ChatMessage& message) {
  const ::Message inner = ToProto(message);
  // The recipient would refuse it: say so here, to the sender.
  if (absl::Status group = ValidateGroupFields(inner); !group.ok()) {
    return group;
  }
  std::string plaintext(kMessageTag);
  inner.AppendToString(&plaintext);
  absl::StatusOr<std::string> sealed = cipher.Seal(recipient_key, plaintext);
  if (!sealed.ok()) return sealed.status();
  ::Message outer;
  outer.set_sender(inner.sender());
  outer.set_recipient(inner.recipient());
  outer.set_id(inner.id());
  outer.set_sequence(inner.sequence());
  outer.set_sequence_epoch(inner.sequence_epoch());
  outer.set_sequence_floor(inner.sequence_floor());
  // The group fields stay inside: routing needs only the two names, and the
  // mailbox has no need to learn which group a message belongs to.
  outer.set_sealed(*std::move(sealed));
  return outer;
}

absl::StatusOr<ChatMessage> OpenMessage(PairCipher& cipher,
                                        const PublicKey& sender_key,
                                        const ::Message& outer,
                                        const std::string& own_name) {
  if (!outer.time().empty() || !outer.msg().empty()) {
    return absl::InvalidArgumentError(
        "a sealed message carries no time or msg outside");
  }
  absl::StatusOr<::Message> inner =
      OpenSealed(cipher, sender_key, outer, own_name, kSealedMessage);
  if (!inner.ok()) return inner.status();
  if (inner->id() != outer.id()) return Mismatch("id");
  if (inner->sequence() != outer.sequence() ||
      inner->sequence_epoch() != outer.sequence_epoch() ||
      inner->sequence_floor() != outer.sequence_floor()) {
    return Mismatch("sequence");
  }
  // Ours never show the group outside; one that does must show the same.
  if (HasGroupFields(outer) &&
      (inner->group_id() != outer.group_id() ||
       inner->group_version() != outer.group_version() ||
       inner->group_state_hash() != outer.group_state_hash() ||
       inner->group_change() != outer.group_change() ||
       inner->group_leave() != outer.group_leave())) {
    return Mismatch("group");
  }
  // Checked, not dropped: a malformed group message is no direct message.
  if (absl::Status group = ValidateGroupFields(*inner); !group.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sealed: ", group.message()));
  }
  return FromProto(*inner);
}

absl::StatusOr<std::string> MakeReceipt(PairCipher& cipher,
                                        const PublicKey& sender_key,
                                        const std::string& id,
                                        const std::string& own_name) {
  return cipher.Seal(sender_key,
                     absl::StrCat(std::string(kReceiptTag), id, own_name));
}

bool CheckReceipt(PairCipher& cipher, const PublicKey& recipient_key,
                  const std::string& payload, const std::string& id,
                  const std::string& recipient) {
  absl::StatusOr<std::string> plaintext = cipher.Open(recipient_key, payload);
  if (!plaintext.ok()) return false;
  const std::string head = absl::StrCat(std::string(kReceiptTag), id);
  if (!absl::StartsWith(*plaintext, head)) return false;
  return registry::NameKey(plaintext->substr(head.size())) ==
         registry::NameKey(recipient);
}

namespace {

// What a delivery proof authenticates (MakeDeliveryProof).
std::string DeliveredMessage(const std::string& id, const std::string& sender,
                             const std::string& recipient) {
  std::string out(kDeliveredTag);
  for (const std::string& field :
       {id, registry::NameKey(sender), registry::NameKey(recipient)}) {
    const uint32_t n = static_cast<uint32_t>(field.size());
    const char length[4] = {static_cast<char>(n >> 24),
                            static_cast<char>(n >> 16),
                            static_cast<char>(n >> 8), static_cast<char>(n)};
    out.append(length, sizeof(length));
    out.append(field);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> MakeDeliveryProof(PairCipher& cipher,
                                              const PublicKey& sender_key,
                                              const std::string& id,
                                              const std::string& sender,
                                              const std::string& recipient) {
  return cipher.Mac(sender_key, DeliveredMessage(id, sender, recipient));
}

bool CheckDeliveryProof(PairCipher& cipher, const PublicKey& recipient_key,
                        const std::string& proof, const std::string& id,
                        const std::string& sender,
                        const std::string& recipient) {
  return cipher.VerifyMac(recipient_key,
                          DeliveredMessage(id, sender, recipient), proof);
}

absl::StatusOr<::ReadReceipts> SealReadReceipts(
    PairCipher& cipher, const PublicKey& sender_key,
    const std::string& own_name, const std::string& sender,
    const std::vector<std::string>& ids) {
  if (ids.empty() || ids.size() > kMaxReadIds) {
    return absl::InvalidArgumentError(
        absl::StrCat("read receipts carry 1-", kMaxReadIds, " ids"));
  }
  ::ReadReceipts inner;
  inner.set_sender(own_name);
  inner.set_recipient(sender);
  for (const std::string& id : ids) {
    if (id.empty() || id.size() > 64) {
      return absl::InvalidArgumentError("a message id must be 1-64 bytes");
    }
    inner.add_ids(id);
  }
  std::string plaintext(kReadTag);
  inner.AppendToString(&plaintext);
  absl::StatusOr<std::string> sealed = cipher.Seal(sender_key, plaintext);
  if (!sealed.ok()) return sealed.status();
  ::ReadReceipts outer;
  outer.set_sender(own_name);
  outer.set_recipient(sender);
  outer.set_sealed(*std::move(sealed));
  return outer;
}

absl::StatusOr<std::vector<std::string>> OpenReadReceipts(
    PairCipher& cipher, const PublicKey& reader_key,
    const ::ReadReceipts& outer, const std::string& own_name) {
  if (outer.ids_size() > 0) {
    return absl::InvalidArgumentError(
        "read receipts carry their ids inside only");
  }
  absl::StatusOr<::ReadReceipts> inner =
      OpenSealed(cipher, reader_key, outer, own_name, kSealedReadReceipts);
  if (!inner.ok()) return inner.status();
  if (inner->ids_size() == 0 ||
      inner->ids_size() > static_cast<int>(kMaxReadIds)) {
    return absl::InvalidArgumentError(
        absl::StrCat("read receipts carry 1-", kMaxReadIds, " ids"));
  }
  return std::vector<std::string>(inner->ids().begin(), inner->ids().end());
}

}  // namespace chat::peer
