#include "common/limits.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace chat {

absl::Status LimitError(const std::string& what, int64_t limit,
                        const std::string& option) {
  return absl::ResourceExhaustedError(
      absl::StrCat(what, " (limit ", limit, ", --", option, ")"));
}

std::string ClientHost(const std::string& grpc_peer) {
  if (absl::StartsWith(grpc_peer, "ipv4:")) {
    const std::string address = grpc_peer.substr(5);
    const size_t colon = address.rfind(':');
    return colon == std::string::npos ? address : address.substr(0, colon);
  }
  if (absl::StartsWith(grpc_peer, "ipv6:")) {
    const std::string address = grpc_peer.substr(5);
    // The URI form may percent-encode the brackets ("%5B::1%5D:5123").
    const size_t open = address.find('[');
    const size_t close = address.find(']');
    if (open != std::string::npos && close != std::string::npos &&
        open < close) {
      return address.substr(open + 1, close - open - 1);
    }
    if (absl::StartsWith(address, "%5B")) {
      const size_t end = address.find("%5D");
      if (end != std::string::npos) return address.substr(3, end - 3);
    }
    return address;
  }
  return grpc_peer;
}

}  // namespace chat
