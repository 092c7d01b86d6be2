#include "registry/convert.h"

#include "absl/strings/str_cat.h"

namespace chat::registry {
namespace {

v1::WatchEvent::Type TypeToProto(EventType type) {
  switch (type) {
    case EventType::kPut:
      return v1::WatchEvent::PUT;
    case EventType::kDelete:
      return v1::WatchEvent::DELETE;
    case EventType::kSynced:
      return v1::WatchEvent::SYNCED;
  }
  return v1::WatchEvent::TYPE_UNSPECIFIED;
}

v1::WatchEvent::Reason ReasonToProto(EventReason reason) {
  switch (reason) {
    case EventReason::kNone:
      return v1::WatchEvent::REASON_UNSPECIFIED;
    case EventReason::kInitial:
      return v1::WatchEvent::INITIAL;
    case EventReason::kRegistered:
      return v1::WatchEvent::REGISTERED;
    case EventReason::kAddressChanged:
      return v1::WatchEvent::ADDRESS_CHANGED;
    case EventReason::kUnregistered:
      return v1::WatchEvent::UNREGISTERED;
    case EventReason::kExpired:
      return v1::WatchEvent::EXPIRED;
  }
  return v1::WatchEvent::REASON_UNSPECIFIED;
}

}  // namespace

void EntryToProto(const Entry& entry, v1::Entry* proto) {
  proto->set_name(entry.name);
  proto->set_address(entry.address);
  proto->set_is_static(entry.is_static);
  proto->set_ttl_ms(entry.ttl.count());
  proto->set_expires_in_ms(entry.expires_in.count());
  if (entry.public_key) proto->set_public_key(entry.public_key->Bytes());
  for (const std::string& service : entry.services) {
    proto->add_services(service);
  }
}

Entry EntryFromProto(const v1::Entry& proto) {
  Entry entry;
  entry.name = proto.name();
  entry.address = proto.address();
  entry.is_static = proto.is_static();
  entry.ttl = Millis(proto.ttl_ms());
  entry.expires_in = Millis(proto.expires_in_ms());
  if (!proto.public_key().empty()) {
    // A registry only sends keys it checked; a malformed one is dropped
    // rather than failing the whole list.
    absl::StatusOr<PublicKey> key = PublicKey::FromBytes(proto.public_key());
    if (key.ok()) entry.public_key = *key;
  }
  entry.services.assign(proto.services().begin(), proto.services().end());
  return entry;
}

void RegisterRequestToProto(const RegisterRequest& request,
                            v1::RegisterRequest* proto) {
  proto->set_name(request.name);
  proto->set_address(request.address);
  proto->set_ttl_ms(request.ttl.count());
  proto->set_lease_id(request.lease_id);
  if (request.public_key) proto->set_public_key(request.public_key->Bytes());
  proto->set_challenge(request.challenge);
  proto->set_signature(request.signature);
  proto->set_proof_unix_ms(request.proof_unix_ms);
  for (const std::string& service : request.services) {
    proto->add_services(service);
  }
}

absl::StatusOr<RegisterRequest> RegisterRequestFromProto(
    const v1::RegisterRequest& proto) {
  RegisterRequest request;
  request.name = proto.name();
  request.address = proto.address();
  request.ttl = Millis(proto.ttl_ms());
  request.lease_id = proto.lease_id();
  if (!proto.public_key().empty()) {
    absl::StatusOr<PublicKey> key = PublicKey::FromBytes(proto.public_key());
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("public_key: ", key.status().message()));
    }
    request.public_key = *key;
  }
  request.challenge = proto.challenge();
  request.signature = proto.signature();
  request.proof_unix_ms = proto.proof_unix_ms();
  request.services.assign(proto.services().begin(), proto.services().end());
  return request;
}

void BindingToProto(const Binding& binding, v1::GetBindingResponse* proto) {
  proto->set_name(binding.name);
  proto->set_public_key(binding.key.Bytes());
  proto->set_online(binding.online);
  proto->set_reserved_until_unix_ms(
      binding.online || binding.reserved_until == absl::InfiniteFuture()
          ? 0
          : absl::ToUnixMillis(binding.reserved_until));
}

absl::StatusOr<Binding> BindingFromProto(const v1::GetBindingResponse& proto) {
  absl::StatusOr<PublicKey> key = PublicKey::FromBytes(proto.public_key());
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("public_key: ", key.status().message()));
  }
  Binding binding;
  binding.name = proto.name();
  binding.key = *key;
  binding.online = proto.online();
  binding.reserved_until =
      proto.reserved_until_unix_ms() == 0
          ? absl::InfiniteFuture()
          : absl::FromUnixMillis(proto.reserved_until_unix_ms());
  return binding;
}

void WatchEventToProto(const WatchEvent& event, v1::WatchEvent* proto) {
  proto->Clear();
  proto->set_type(TypeToProto(event.type));
  proto->set_reason(ReasonToProto(event.reason));
  if (event.type != EventType::kSynced) {
    EntryToProto(event.entry, proto->mutable_entry());
  }
  proto->set_revision(event.revision);
  proto->set_resumed(event.resumed);
}

WatchEvent WatchEventFromProto(const v1::WatchEvent& proto) {
  WatchEvent event;
  switch (proto.type()) {
    case v1::WatchEvent::DELETE:
      event.type = EventType::kDelete;
      break;
    case v1::WatchEvent::SYNCED:
      event.type = EventType::kSynced;
      break;
    default:
      event.type = EventType::kPut;
      break;
  }
  switch (proto.reason()) {
    case v1::WatchEvent::INITIAL:
      event.reason = EventReason::kInitial;
      break;
    case v1::WatchEvent::REGISTERED:
      event.reason = EventReason::kRegistered;
      break;
    case v1::WatchEvent::ADDRESS_CHANGED:
      event.reason = EventReason::kAddressChanged;
      break;
    case v1::WatchEvent::UNREGISTERED:
      event.reason = EventReason::kUnregistered;
      break;
    case v1::WatchEvent::EXPIRED:
      event.reason = EventReason::kExpired;
      break;
    default:
      event.reason = EventReason::kNone;
      break;
  }
  event.entry = EntryFromProto(proto.entry());
  event.revision = proto.revision();
  event.resumed = proto.resumed();
  return event;
}

void MailItemToProto(const MailItem& item, v1::MailItem* proto) {
  switch (item.kind) {
    case MailItem::Kind::kMessage:
      proto->set_kind(v1::MailItem::MESSAGE);
      break;
    case MailItem::Kind::kReceipt:
      proto->set_kind(v1::MailItem::RECEIPT);
      break;
    case MailItem::Kind::kReadReceipt:
      proto->set_kind(v1::MailItem::READ_RECEIPT);
      break;
    case MailItem::Kind::kExpired:
      proto->set_kind(v1::MailItem::EXPIRED);
      break;
  }
  proto->set_id(item.id);
  proto->set_sender(item.sender);
  proto->set_recipient(item.recipient);
  proto->set_payload(item.payload);
  proto->set_digest(item.digest);
  if (item.deposited_at != absl::InfinitePast()) {
    proto->set_deposited_at_unix_ms(absl::ToUnixMillis(item.deposited_at));
  }
}

MailItem MailItemFromProto(const v1::MailItem& proto) {
  MailItem item;
  switch (proto.kind()) {
    case v1::MailItem::RECEIPT:
      item.kind = MailItem::Kind::kReceipt;
      break;
    case v1::MailItem::READ_RECEIPT:
      item.kind = MailItem::Kind::kReadReceipt;
      break;
    case v1::MailItem::EXPIRED:
      item.kind = MailItem::Kind::kExpired;
      break;
    default:
      item.kind = MailItem::Kind::kMessage;
      break;
  }
  item.id = proto.id();
  item.sender = proto.sender();
  item.recipient = proto.recipient();
  item.payload = proto.payload();
  item.digest = proto.digest();
  if (proto.deposited_at_unix_ms() > 0) {
    item.deposited_at = absl::FromUnixMillis(proto.deposited_at_unix_ms());
  }
  return item;
}

}  // namespace chat::registry
