// Fuzzes the console: a typed line (peer/commands.h ParseLine) means one
// well-formed command, and an event made of any bytes (names, addresses and
// texts come from other people) is shown as printable text only
// (peer/format.h FormatText): no control character reaches the terminal.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "peer/commands.h"
#include "peer/format.h"
#include "registry/names.h"
#include "tests/fuzz/fuzz_event.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

bool HasSpace(const std::string& s) {
  return s.find_first_of(" \t") != std::string::npos;
}

void CheckCommand(const std::string& line, const std::string& partner) {
  using Kind = chat::peer::Command::Kind;
  const chat::peer::Command command = chat::peer::ParseLine(line, partner);
  switch (command.kind) {
    case Kind::kSend:
      Check(!command.name.empty() && !command.text.empty());
      if (command.to_partner) {
        Check(command.name == partner);
      } else {
        Check(!HasSpace(command.name));
      }
      break;
    case Kind::kChat:
    case Kind::kVerify:
    case Kind::kTrust:
      Check(!command.name.empty() && !HasSpace(command.name));
      break;
    case Kind::kError:
      Check(!command.text.empty());
      break;
    default:
      break;
  }
  if (command.to_partner) Check(!partner.empty());
}

void ValidName(std::string& name) {
  if (!chat::registry::ValidateName(name).ok()) name = "somebody";
}

void ValidAddress(std::string& address) {
  if (!chat::registry::ValidateAddress(address).ok()) address = "[::1]:5000";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider provider(data, size);
  const std::string partner = provider.ConsumeRandomLengthString(64);
  const std::string line = provider.ConsumeRandomLengthString(4096);
  CheckCommand(line, partner);
  CheckCommand(line, "");

  chat::peer::TextStyle style;
  style.color = provider.ConsumeBool();
  style.own_name = provider.ConsumeRandomLengthString(64);
  style.time_zone = absl::UTCTimeZone();
  chat::peer::PeerEvent event = chat::fuzz::ConsumeEvent(provider);
  // Names and addresses reach the screen through the registry, which
  // admits only valid ones (registry/names.h); the offline reason is ours.
  // Everything else (the sender a message claims, texts) is anybody's.
  ValidName(event.name);
  ValidName(event.message.to);
  ValidName(event.fingerprint);
  ValidAddress(event.address);
  for (chat::registry::Entry& entry : event.peers) {
    ValidName(entry.name);
    ValidAddress(entry.address);
  }
  if (event.kind == chat::peer::EventKind::kOffline) event.text = "expired";
  // Our own messages carry our own name.
  if (event.kind == chat::peer::EventKind::kSendResult) {
    ValidName(event.message.from);
  }
  const std::string text = chat::peer::FormatText(event, style);
  // Nothing at all for a message delivered straight away; one line else.
  Check(text.empty() || text.back() == '\n');
  for (unsigned char c : text) {
    // Colour, when asked for, is ours (ESC [ ... m); nothing else below
    // 0x20 but the line ends, and no DEL.
    if (c == 0x7f || (c < 0x20 && c != '\n' && !(style.color && c == 0x1b))) {
      std::fprintf(stderr, "control character 0x%02x in event %d: %s\n", c,
                   static_cast<int>(event.kind), absl::CEscape(text).c_str());
      std::abort();
    }
  }
  return 0;
}
