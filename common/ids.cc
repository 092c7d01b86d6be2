#include "common/ids.h"

#include <cstdint>

#include "common/random.h"

namespace chat {

std::string NewUuidV7(absl::Time now) {
  const uint64_t millis = static_cast<uint64_t>(absl::ToUnixMillis(now));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (int shift = 44; shift >= 0; shift -= 4) {
    hex.push_back(kHex[(millis >> shift) & 0xf]);
  }
  std::string random = RandomHex(10);  // 80 bits; 74 are used.
  hex += '7';                          // Version.
  hex += random.substr(0, 3);          // rand_a.
  // Variant 0b10 in the top two bits of the next nibble.
  int nibble = std::stoi(random.substr(3, 1), nullptr, 16);
  hex += kHex[0x8 | (nibble & 0x3)];
  hex += random.substr(4, 15);  // rand_b.
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) +
         "-" + hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

bool IsPlausibleMessageId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace chat
