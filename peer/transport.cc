#include "peer/transport.h"

#include "absl/strings/cord.h"
#include "absl/types/optional.h"

namespace chat::peer {
namespace {

// The payload key of a Transport status's detail.
constexpr char kDetailUrl[] = "type.chat/peer.Detail";

}  // namespace

absl::Status WithDetail(absl::Status status, const std::string& detail) {
  if (!status.ok() && !detail.empty()) {
    status.SetPayload(kDetailUrl, absl::Cord(detail));
  }
  return status;
}

std::string StatusDetail(const absl::Status& status) {
  absl::optional<absl::Cord> detail = status.GetPayload(kDetailUrl);
  return detail.has_value() ? std::string(*detail) : std::string();
}

bool IsRegistryUnreachable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable &&
         status.message() == kRegistryUnreachable;
}

}  // namespace chat::peer
