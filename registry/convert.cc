#include "registry/convert.h"

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
}

Entry EntryFromProto(const v1::Entry& proto) {
  Entry entry;
  entry.name = proto.name();
  entry.address = proto.address();
  entry.is_static = proto.is_static();
  entry.ttl = Millis(proto.ttl_ms());
  entry.expires_in = Millis(proto.expires_in_ms());
  return entry;
}

void WatchEventToProto(const WatchEvent& event, v1::WatchEvent* proto) {
  proto->Clear();
  proto->set_type(TypeToProto(event.type));
  proto->set_reason(ReasonToProto(event.reason));
  if (event.type != EventType::kSynced) {
    EntryToProto(event.entry, proto->mutable_entry());
  }
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
  return event;
}

void MailItemToProto(const MailItem& item, v1::MailItem* proto) {
  proto->set_kind(item.kind == MailItem::Kind::kReceipt
                      ? v1::MailItem::RECEIPT
                      : v1::MailItem::MESSAGE);
  proto->set_id(item.id);
  proto->set_sender(item.sender);
  proto->set_recipient(item.recipient);
  proto->set_payload(item.payload);
  if (item.deposited_at != absl::InfinitePast()) {
    proto->set_deposited_at_unix_ms(absl::ToUnixMillis(item.deposited_at));
  }
}

MailItem MailItemFromProto(const v1::MailItem& proto) {
  MailItem item;
  item.kind = proto.kind() == v1::MailItem::RECEIPT ? MailItem::Kind::kReceipt
                                                    : MailItem::Kind::kMessage;
  item.id = proto.id();
  item.sender = proto.sender();
  item.recipient = proto.recipient();
  item.payload = proto.payload();
  if (proto.deposited_at_unix_ms() > 0) {
    item.deposited_at = absl::FromUnixMillis(proto.deposited_at_unix_ms());
  }
  return item;
}

}  // namespace chat::registry
