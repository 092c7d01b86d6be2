#include "registry/names.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace chat::registry {
namespace {

constexpr size_t kMaxAddressLength = 261;  // 253 (host) + ":" + 5 + slack.

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == '-';
}

// Printable form of possibly hostile input, for error messages.
std::string Quote(const std::string& text) {
  std::string shown;
  for (char c : text.substr(0, 80)) {
    unsigned char u = static_cast<unsigned char>(c);
    shown += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  if (text.size() > 80) shown += "...";
  return absl::StrCat("\"", shown, "\"");
}

absl::Status ValidateDnsName(const std::string& host) {
  if (host.size() > 253) {
    return absl::InvalidArgumentError(
        absl::StrCat("host name is longer than 253 characters"));
  }
  size_t label_start = 0;
  while (true) {
    size_t dot = host.find('.', label_start);
    size_t end = dot == std::string::npos ? host.size() : dot;
    std::string label = host.substr(label_start, end - label_start);
    // A trailing dot (fully qualified "example.com.") is fine.
    bool trailing =
        dot == std::string::npos && label.empty() && label_start > 0;
    if (!trailing) {
      if (label.empty() || label.size() > 63) {
        return absl::InvalidArgumentError(absl::StrCat(
            "host ", Quote(host), " has an empty or over-long (>63) label"));
      }
      for (char c : label) {
        if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
            c != '_') {
          return absl::InvalidArgumentError(
              absl::StrCat("host ", Quote(host),
                           " may contain only letters, digits, '-', '_' and "
                           "'.' (IPv6 literals go in brackets: [::1]:port)"));
        }
      }
      if (label.front() == '-' || label.back() == '-') {
        return absl::InvalidArgumentError(absl::StrCat(
            "host ", Quote(host), " has a label that starts or ends with '-'"));
      }
    }
    if (dot == std::string::npos) break;
    label_start = dot + 1;
  }
  return absl::OkStatus();
}

absl::Status ValidateHost(const std::string& host) {
  if (host.empty()) return absl::InvalidArgumentError("host is empty");
  if (host.front() == '[') {
    if (host.back() != ']') {
      return absl::InvalidArgumentError(
          absl::StrCat("IPv6 literal ", Quote(host), " lacks its closing ']'"));
    }
    std::string literal = host.substr(1, host.size() - 2);
    in6_addr ignored;
    // inet_pton reads up to the first NUL: "[::1\0junk]" would pass.
    if (literal.find_first_not_of("0123456789abcdefABCDEF:.") !=
            std::string::npos ||
        inet_pton(AF_INET6, literal.c_str(), &ignored) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(Quote(literal), " is not an IPv6 address"));
    }
    return absl::OkStatus();
  }
  // All digits and dots: it can only mean an IPv4 literal.
  if (host.find_first_not_of("0123456789.") == std::string::npos) {
    in_addr ignored;
    if (inet_pton(AF_INET, host.c_str(), &ignored) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(Quote(host), " is not an IPv4 address"));
    }
    return absl::OkStatus();
  }
  return ValidateDnsName(host);
}

}  // namespace

absl::Status ValidateName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name is empty");
  if (name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("name ", Quote(name), " is longer than ", kMaxNameLength,
                     " characters"));
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(name.front()))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "name ", Quote(name), " must start with a letter or a digit"));
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("name ", Quote(name),
                       " may contain only letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePrefix(const std::string& prefix) {
  if (prefix.empty()) return absl::OkStatus();
  absl::Status status = ValidateName(prefix);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad prefix: ", status.message()));
  }
  return absl::OkStatus();
}

std::string NameKey(const std::string& name) {
  return absl::AsciiStrToLower(name);
}

absl::Status ValidateAddress(const std::string& address) {
  if (address.empty()) return absl::InvalidArgumentError("address is empty");
  if (address.size() > kMaxAddressLength) {
    return absl::InvalidArgumentError("address is too long");
  }
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("address ", Quote(address), " must be host:port"));
  }
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  if (host.find(':') != std::string::npos && host.front() != '[') {
    return absl::InvalidArgumentError(
        absl::StrCat("address ", Quote(address),
                     ": put an IPv6 literal in brackets, as in [::1]:50050"));
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "address ", Quote(address), ": port must be a number 1-65535"));
  }
  absl::Status host_status = ValidateHost(host);
  if (!host_status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("address ", Quote(address), ": ", host_status.message()));
  }
  return absl::OkStatus();
}

absl::Status ValidateService(const std::string& service) {
  if (service.empty()) {
    return absl::InvalidArgumentError("a service must not be empty");
  }
  if (service.size() > kMaxServiceLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("service ", Quote(service), " is longer than ",
                     kMaxServiceLength, " characters"));
  }
  bool ok = absl::ascii_islower(static_cast<unsigned char>(service[0]));
  for (char c : service) {
    const auto u = static_cast<unsigned char>(c);
    ok = ok && (absl::ascii_islower(u) || absl::ascii_isdigit(u) || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "service ", Quote(service),
        " must be lowercase letters, digits and '-', starting with a letter "
        "(like chat or greet)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> CanonicalServices(
    const std::vector<std::string>& services) {
  std::vector<std::string> canonical;
  for (size_t i = 0; i < services.size(); ++i) {
    if (absl::Status valid = ValidateService(services[i]); !valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("services[", i, "]: ", valid.message()));
    }
    if (std::find(canonical.begin(), canonical.end(), services[i]) ==
        canonical.end()) {
      canonical.push_back(services[i]);
    }
  }
  if (canonical.size() > kMaxServices) {
    return absl::InvalidArgumentError(
        absl::StrCat("services: ", canonical.size(), " given, at most ",
                     kMaxServices, " allowed"));
  }
  return canonical;
}

bool OffersService(const std::vector<std::string>& services,
                   const std::string& service) {
  if (services.empty()) return service == kChatService;
  return std::find(services.begin(), services.end(), service) != services.end();
}

std::string JoinServices(const std::vector<std::string>& services) {
  return absl::StrJoin(services, ",");
}

std::vector<std::string> SplitServices(const std::string& joined) {
  return absl::StrSplit(joined, ',', absl::SkipEmpty());
}

}  // namespace chat::registry
