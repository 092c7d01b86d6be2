// Proto <-> struct conversions of the registry's messages, one definition
// for the services and the clients.

#ifndef CHAT_REGISTRY_CONVERT_H_
#define CHAT_REGISTRY_CONVERT_H_

#include "absl/status/statusor.h"
#include "proto/registry.pb.h"
#include "registry/types.h"

namespace chat::registry {

void EntryToProto(const Entry& entry, v1::Entry* proto);
Entry EntryFromProto(const v1::Entry& proto);

// Clears `proto` first.
void WatchEventToProto(const WatchEvent& event, v1::WatchEvent* proto);
WatchEvent WatchEventFromProto(const v1::WatchEvent& proto);

// The Register request as it travels; the proof fields as they are.
void RegisterRequestToProto(const RegisterRequest& request,
                            v1::RegisterRequest* proto);
// kInvalidArgument naming `public_key` when it is set but not 32 bytes.
absl::StatusOr<RegisterRequest> RegisterRequestFromProto(
    const v1::RegisterRequest& proto);

void BindingToProto(const Binding& binding, v1::GetBindingResponse* proto);
// kInvalidArgument when the key is not 32 bytes.
absl::StatusOr<Binding> BindingFromProto(const v1::GetBindingResponse& proto);

void MailItemToProto(const MailItem& item, v1::MailItem* proto);
MailItem MailItemFromProto(const v1::MailItem& proto);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_CONVERT_H_
