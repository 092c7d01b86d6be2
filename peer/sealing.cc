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

}  // namespace

absl::StatusOr<::Message> SealMessage(PairCipher& cipher,
                                      const PublicKey& recipient_key,
                                      const ChatMessage& message) {
  const ::Message inner = ToProto(message);
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
  outer.set_sealed(*std::move(sealed));
  return outer;
}

absl::StatusOr<ChatMessage> OpenMessage(PairCipher& cipher,
                                        const PublicKey& sender_key,
                                        const ::Message& outer,
                                        const std::string& own_name) {
  if (outer.sealed().size() < kSealOverheadBytes + kMessageTag.size() ||
      outer.sealed().size() > kMaxSealedBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sealed is ", outer.sealed().size(), " bytes; it must be ",
        kSealOverheadBytes + kMessageTag.size(), "-", kMaxSealedBytes));
  }
  if (!outer.time().empty() || !outer.msg().empty()) {
    return absl::InvalidArgumentError(
        "a sealed message carries no time or msg outside");
  }
  absl::StatusOr<std::string> plaintext =
      cipher.Open(sender_key, outer.sealed());
  if (!plaintext.ok()) {
    if (plaintext.status().code() == absl::StatusCode::kUnauthenticated) {
      return absl::UnauthenticatedError(
          absl::StrCat("sealed: not sealed by ", PrintableText(outer.sender()),
                       "'s key for us, or changed on the way"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("sealed: ", plaintext.status().message()));
  }
  // Only the two holders of the pair's keys could have made it: from here
  // on, what is wrong is the sender's doing, but nothing is shown.
  if (!absl::StartsWith(*plaintext, kMessageTag)) {
    return absl::InvalidArgumentError("sealed: not a sealed chat message");
  }
  ::Message inner;
  if (!inner.ParseFromArray(
          plaintext->data() + kMessageTag.size(),
          static_cast<int>(plaintext->size() - kMessageTag.size()))) {
    return absl::InvalidArgumentError("sealed: the inside is not a Message");
  }
  if (!inner.sealed().empty()) {
    return absl::InvalidArgumentError("sealed: the inside is sealed again");
  }
  if (inner.sender() != outer.sender()) return Mismatch("sender");
  if (inner.recipient() != outer.recipient()) return Mismatch("recipient");
  if (inner.id() != outer.id()) return Mismatch("id");
  if (inner.sequence() != outer.sequence() ||
      inner.sequence_epoch() != outer.sequence_epoch() ||
      inner.sequence_floor() != outer.sequence_floor()) {
    return Mismatch("sequence");
  }
  if (registry::NameKey(inner.recipient()) != registry::NameKey(own_name)) {
    return absl::UnauthenticatedError(
        absl::StrCat("sealed: meant for ", PrintableText(inner.recipient()),
                     ", not ", own_name));
  }
  return FromProto(inner);
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

}  // namespace chat::peer
