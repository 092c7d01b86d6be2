#include "common/net.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace chat {
namespace {

bool IsWildcardHost(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::" ||
         host == "[::0]" || host == "*";
}

}  // namespace

std::string DefaultAdvertisedAddress(const std::string& listen_address,
                                     int port) {
  absl::StatusOr<std::pair<std::string, std::string>> split =
      SplitHostPort(listen_address);
  if (!split.ok() || IsWildcardHost(split->first)) return "";
  return absl::StrCat(split->first, ":", port);
}

absl::StatusOr<std::pair<std::string, std::string>> SplitHostPort(
    const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", address, "\" is not host:port"));
  }
  return std::make_pair(address.substr(0, colon), address.substr(colon + 1));
}

absl::StatusOr<std::string> LocalAddressToward(const std::string& remote) {
  auto split = SplitHostPort(remote);
  if (!split.ok()) return split.status();
  std::string host = split->first;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* results = nullptr;
  int error =
      getaddrinfo(host.c_str(), split->second.c_str(), &hints, &results);
  if (error != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", remote, ": ", gai_strerror(error)));
  }
  std::string local;
  for (addrinfo* ai = results; ai != nullptr && local.empty();
       ai = ai->ai_next) {
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    sockaddr_storage self{};
    socklen_t self_len = sizeof(self);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&self), &self_len) == 0) {
      char text[INET6_ADDRSTRLEN] = {};
      if (self.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&self)->sin_addr,
                  text, sizeof(text));
        local = text;
      } else if (self.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&self)->sin6_addr,
                  text, sizeof(text));
        local = absl::StrCat("[", text, "]");
      }
    }
    close(fd);
  }
  freeaddrinfo(results);
  if (local.empty()) {
    return absl::UnavailableError(absl::StrCat("no route to ", remote));
  }
  return local;
}

}  // namespace chat
