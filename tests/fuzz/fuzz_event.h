// A peer event (peer/events.h) made of fuzzer bytes, for the targets that
// check how the peer shows events (json_fuzz, commands_fuzz).

#ifndef CHAT_TESTS_FUZZ_FUZZ_EVENT_H_
#define CHAT_TESTS_FUZZ_FUZZ_EVENT_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <utility>

#include "absl/time/time.h"
#include "common/clock.h"
#include "peer/events.h"

namespace chat::fuzz {

// Every field from `provider`, the message's text from what is left.
inline peer::PeerEvent ConsumeEvent(FuzzedDataProvider& provider) {
  peer::PeerEvent event;
  event.kind =
      static_cast<peer::EventKind>(provider.ConsumeIntegralInRange<int>(0, 8));
  event.status =
      static_cast<peer::SendStatus>(provider.ConsumeIntegralInRange<int>(0, 3));
  event.to_partner = provider.ConsumeBool();
  event.repeated = provider.ConsumeBool();
  event.message.late = provider.ConsumeBool();
  event.message.unverified = provider.ConsumeBool();
  event.message.sequence = provider.ConsumeIntegral<int64_t>();
  event.message.sequence_floor = provider.ConsumeIntegral<int64_t>();
  if (provider.ConsumeBool()) {
    event.message.sent_at =
        absl::FromUnixMillis(provider.ConsumeIntegral<int64_t>());
  }
  if (provider.ConsumeBool()) {
    event.message.received_at =
        absl::FromUnixMillis(provider.ConsumeIntegral<int64_t>());
  }
  event.name = provider.ConsumeRandomLengthString(256);
  event.address = provider.ConsumeRandomLengthString(256);
  event.text = provider.ConsumeRandomLengthString(1024);
  event.fingerprint = provider.ConsumeRandomLengthString(64);
  event.message.id = provider.ConsumeRandomLengthString(64);
  event.message.from = provider.ConsumeRandomLengthString(128);
  event.message.to = provider.ConsumeRandomLengthString(128);
  event.message.lab_time = provider.ConsumeRandomLengthString(32);
  event.message.sequence_epoch = provider.ConsumeRandomLengthString(64);
  const int peers = provider.ConsumeIntegralInRange<int>(0, 4);
  for (int k = 0; k < peers; ++k) {
    registry::Entry entry;
    entry.name = provider.ConsumeRandomLengthString(128);
    entry.address = provider.ConsumeRandomLengthString(128);
    entry.is_static = provider.ConsumeBool();
    entry.ttl = Millis(provider.ConsumeIntegral<int32_t>());
    entry.expires_in = Millis(provider.ConsumeIntegral<int32_t>());
    event.peers.push_back(std::move(entry));
  }
  event.message.text = provider.ConsumeRemainingBytesAsString();
  return event;
}

}  // namespace chat::fuzz

#endif  // CHAT_TESTS_FUZZ_FUZZ_EVENT_H_
