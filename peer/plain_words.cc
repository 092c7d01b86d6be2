#include "peer/plain_words.h"

#include "absl/strings/str_cat.h"

namespace chat::peer {

std::string RegistryFailureText(const absl::Status& status,
                                const std::string& doing) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
      return absl::StrCat("the registry is unreachable, so you cannot ", doing,
                          " now; try again in a moment");
    case absl::StatusCode::kUnimplemented:
      return absl::StrCat("cannot ", doing, ": the registry is too old for it");
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnauthenticated:
      return absl::StrCat("cannot ", doing,
                          ": the registry failed to answer (--verbose says "
                          "why)");
    default:
      return absl::StrCat("cannot ", doing, ": ", status.message());
  }
}

PeerEvent RegistryErrorEvent(const absl::Status& status,
                             const std::string& doing) {
  PeerEvent event = ErrorEvent(RegistryFailureText(status, doing));
  event.detail = status.ToString();
  return event;
}

std::string WithCommas(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace chat::peer
