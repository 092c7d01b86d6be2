#include "peer/envelope.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "peer/sealing.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

constexpr size_t kLoggedSendersKept = 4096;

// A group needs keys: its messages are always sealed, so a plain one that
// claims a group is malformed, whoever sent it.
absl::Status PlainGroupMessageError() {
  return absl::InvalidArgumentError(
      "a group message is always sealed; a plain one carries no group_id, "
      "group_version or group_state_hash");
}

}  // namespace

absl::StatusOr<ChatMessage> PlainAuthenticator::Unwrap(const ::Message& proto,
                                                       bool /*may_wait*/) {
  if (!proto.sealed().empty()) {
    return absl::UnauthenticatedError("sealed: this peer holds no key");
  }
  if (HasGroupFields(proto)) return PlainGroupMessageError();
  ChatMessage message = FromProto(proto);
  message.unverified = true;
  return message;
}

Envelope::Envelope(std::string own_name, const Identity& identity,
                   KeyBook* keys, const Clock& clock)
    : own_name_(std::move(own_name)),
      own_key_(identity.public_key()),
      keys_(keys),
      clock_(clock),
      cipher_(identity) {}

absl::StatusOr<::Message> Envelope::Wrap(const ChatMessage& message,
                                         bool for_mailbox) {
  absl::StatusOr<std::optional<PublicKey>> key = keys_->KeyFor(message.to);
  if (!key.ok()) return key.status();
  if (!key->has_value() && for_mailbox && !keys_->IsStatic(message.to)) {
    return absl::UnavailableError(absl::StrCat(
        message.to, " has no key in the registry yet (never registered?)"));
  }
  if (!key->has_value()) {  // A lab peer: no key, plain.
    ::Message plain = ToProto(message);
    if (HasGroupFields(plain)) {
      return absl::FailedPreconditionError(
          absl::StrCat(PrintableText(message.to),
                       " has no key; a group message is always sealed"));
    }
    return plain;
  }
  return SealMessage(cipher_, **key, message);
}

absl::StatusOr<ChatMessage> Envelope::Unwrap(const ::Message& proto,
                                             bool may_wait) {
  const std::string& sender = proto.sender();
  if (sender.empty()) return absl::InvalidArgumentError("sender is empty");
  // Before any key lookup: malformed whoever the sender is.
  if (proto.sealed().empty() && HasGroupFields(proto)) {
    return PlainGroupMessageError();
  }
  absl::StatusOr<std::optional<PublicKey>> key =
      keys_->KeyFor(sender, may_wait);
  if (!key.ok()) return key.status();
  if (proto.sealed().empty()) {
    if (key->has_value()) {
      return Refuse(sender,
                    absl::UnauthenticatedError(absl::StrCat(
                        PrintableText(sender),
                        " seals its messages; a plain one in its name is "
                        "refused")));
    }
    ChatMessage message = FromProto(proto);
    message.unverified = true;
    return message;
  }
  if (!key->has_value()) {
    return Refuse(sender,
                  absl::UnauthenticatedError(absl::StrCat(
                      PrintableText(sender),
                      " has no key; a sealed message cannot be from it")));
  }
  absl::StatusOr<ChatMessage> opened =
      OpenMessage(cipher_, **key, proto, own_name_);
  if (!opened.ok()) return Refuse(sender, opened.status());
  return opened;
}

absl::StatusOr<std::optional<std::string>> Envelope::Receipt(
    const std::string& sender, const std::string& id) {
  absl::StatusOr<std::optional<PublicKey>> key = keys_->KeyFor(sender);
  if (!key.ok()) return key.status();
  if (!key->has_value()) return std::optional<std::string>();
  absl::StatusOr<std::string> receipt =
      MakeReceipt(cipher_, **key, id, own_name_);
  if (!receipt.ok()) return receipt.status();
  return std::optional<std::string>(*std::move(receipt));
}

absl::StatusOr<Proof> Envelope::CheckReceipt(const std::string& recipient,
                                             const std::string& id,
                                             const std::string& payload) {
  absl::StatusOr<std::optional<PublicKey>> key = keys_->KeyFor(recipient);
  if (!key.ok()) return key.status();
  // A recipient bound to no key (a registry from before keys, which makes
  // the receipts itself): there is nothing to check it with, so it proves
  // nothing.
  if (!key->has_value()) return Proof::kNoKey;
  return peer::CheckReceipt(cipher_, **key, payload, id, recipient)
             ? Proof::kValid
             : Proof::kInvalid;
}

std::optional<std::string> Envelope::DeliveryProof(const ChatMessage& message) {
  if (message.unverified) return std::nullopt;
  // Unwrap() has just used the sender's key: it is in memory.
  absl::StatusOr<std::optional<PublicKey>> key =
      keys_->KeyFor(message.from, /*may_ask=*/false);
  if (!key.ok() || !key->has_value()) return std::nullopt;
  absl::StatusOr<std::string> proof =
      MakeDeliveryProof(cipher_, **key, message.id, message.from, own_name_);
  if (!proof.ok()) return std::nullopt;
  return *std::move(proof);
}

absl::StatusOr<Proof> Envelope::CheckDelivered(const ChatMessage& message,
                                               const std::string& proof) {
  absl::StatusOr<std::optional<PublicKey>> key = keys_->KeyFor(message.to);
  if (!key.ok()) return key.status();
  if (!key->has_value()) return Proof::kNoKey;
  return peer::CheckDeliveryProof(cipher_, **key, proof, message.id,
                                  message.from, message.to)
             ? Proof::kValid
             : Proof::kInvalid;
}

absl::StatusOr<std::optional<::ReadReceipts>> Envelope::SealReadReceipts(
    const std::string& sender, const std::vector<std::string>& ids) {
  absl::StatusOr<std::optional<PublicKey>> key = keys_->KeyFor(sender);
  if (!key.ok()) return key.status();
  if (!key->has_value()) return std::optional<::ReadReceipts>();
  absl::StatusOr<::ReadReceipts> sealed =
      peer::SealReadReceipts(cipher_, **key, own_name_, sender, ids);
  if (!sealed.ok()) return sealed.status();
  return std::optional<::ReadReceipts>(*std::move(sealed));
}

absl::StatusOr<std::vector<std::string>> Envelope::OpenReadReceipts(
    const ::ReadReceipts& receipts, bool may_wait) {
  const std::string& reader = receipts.sender();
  if (!registry::ValidateName(reader).ok()) {
    return absl::InvalidArgumentError("read receipts: sender is no name");
  }
  absl::StatusOr<std::optional<PublicKey>> key =
      keys_->KeyFor(reader, may_wait);
  if (!key.ok()) return key.status();
  if (!key->has_value()) {
    return Refuse(reader, absl::UnauthenticatedError(absl::StrCat(
                              PrintableText(reader),
                              " has no key; read receipts cannot be from it")));
  }
  absl::StatusOr<std::vector<std::string>> ids =
      peer::OpenReadReceipts(cipher_, **key, receipts, own_name_);
  if (!ids.ok()) return Refuse(reader, ids.status());
  return ids;
}

absl::Status Envelope::Refuse(const std::string& sender, absl::Status status) {
  const absl::Time now = clock_.Wall();
  bool log = false;
  {
    absl::MutexLock lock(&mu_);
    if (logged_.size() >= kLoggedSendersKept) logged_.clear();
    auto [it, first] = logged_.try_emplace(registry::NameKey(sender), now);
    if (first || now - it->second >= absl::Minutes(1)) {
      it->second = now;
      log = true;
      ++refusals_logged_;
    }
  }
  if (log) {
    LogLine("chat-peer",
            absl::StrCat("refused a message from ", PrintableText(sender), ": ",
                         status.message(),
                         " (not shown; told at most once a minute per "
                         "sender)"));
  }
  return status;
}

}  // namespace chat::peer
