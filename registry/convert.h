// Proto <-> struct conversions of the registry's messages, one definition
// for the services and the clients.

#ifndef CHAT_REGISTRY_CONVERT_H_
#define CHAT_REGISTRY_CONVERT_H_

#include "proto/registry.pb.h"
#include "registry/types.h"

namespace chat::registry {

void EntryToProto(const Entry& entry, v1::Entry* proto);
Entry EntryFromProto(const v1::Entry& proto);

// Clears `proto` first.
void WatchEventToProto(const WatchEvent& event, v1::WatchEvent* proto);
WatchEvent WatchEventFromProto(const v1::WatchEvent& proto);

void MailItemToProto(const MailItem& item, v1::MailItem* proto);
MailItem MailItemFromProto(const v1::MailItem& proto);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_CONVERT_H_
