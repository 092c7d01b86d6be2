// Fuzzes name and address validation (registry/names.h): never a crash, and
// what is accepted keeps the promises of the header.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "registry/names.h"

namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  using chat::registry::NameKey;

  if (chat::registry::ValidateName(input).ok()) {
    Check(!input.empty() && input.size() <= chat::registry::kMaxNameLength);
    for (char c : input) Check(NameChar(c));
    Check(NameChar(input[0]) && input[0] != '.' && input[0] != '_' &&
          input[0] != '-');
    // A name's key is a valid name too, and the same key.
    Check(chat::registry::ValidateName(NameKey(input)).ok());
    Check(NameKey(NameKey(input)) == NameKey(input));
    // Every valid name is a valid prefix (List and Watch take one).
    Check(chat::registry::ValidatePrefix(input).ok());
  }
  Check(NameKey(input).size() == input.size());
  (void)chat::registry::ValidatePrefix(input);

  const absl::Status address = chat::registry::ValidateAddress(input);
  if (address.ok()) {
    // "host:port": a colon, and a port of 1-5 digits after the last one.
    const size_t colon = input.rfind(':');
    Check(colon != std::string::npos && colon > 0);
    const std::string port = input.substr(colon + 1);
    Check(!port.empty() && port.size() <= 5);
    for (char c : port) Check(c >= '0' && c <= '9');
    const long value = std::strtol(port.c_str(), nullptr, 10);
    Check(value >= 1 && value <= 65535);
    // Nothing but what a host name, an IP literal and a port are made of:
    // an accepted address goes into other peers' channels and screens.
    for (char c : input) Check(NameChar(c) || c == ':' || c == '[' || c == ']');
  } else {
    Check(address.code() == absl::StatusCode::kInvalidArgument);
  }
  return 0;
}
