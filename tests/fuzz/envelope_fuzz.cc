// Fuzzes what a peer does with a Message from the network (peer/envelope.h,
// peer/sealing.h, peer/message.h): decode, check and open. Two shapes of
// input, chosen by the first byte:
//   raw     the bytes are the serialized outer Message, as it comes off the
//           wire; forged seals must never open.
//   sealed  the bytes are what alice seals (really, with her key) for bob:
//           the inner plaintext, so the checks after the cryptography are
//           reached too; what opens must keep OpenMessage's promises.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "peer/envelope.h"
#include "peer/message.h"
#include "peer/sealing.h"
#include "proto/chat.pb.h"
#include "registry/names.h"
#include "tests/fuzz/peers.h"

namespace {

using chat::registry::NameKey;

void Check(bool condition) {
  if (!condition) std::abort();
}

// What bob does with `outer` as his ChattingService and mail listener do.
void Receive(chat::fuzz::Peers& cast, const ::Message& outer) {
  const std::string sender = NameKey(outer.sender());
  // Bob's envelope logs refusals per sender: keep to the cast, so the
  // fuzzer's output stays readable.
  if (sender == "alice" || sender == "carol" || sender == "lab") {
    absl::StatusOr<chat::peer::ChatMessage> shown =
        cast.envelope->Unwrap(outer, /*may_wait=*/true);
    if (shown.ok()) {
      // Either plain from a name without a key (marked unverified), or
      // sealed by the key the sender's name is bound to.
      Check(shown->unverified == outer.sealed().empty());
      Check(shown->unverified == !cast.KeyOf(outer.sender()).has_value());
      Check(shown->from == outer.sender());
    }
  }
  (void)chat::peer::PlainAuthenticator().Unwrap(outer, true);
  const chat::peer::ChatMessage message = chat::peer::FromProto(outer);
  if (chat::peer::ValidateMessageText(message.text).ok()) {
    const std::string shown = chat::peer::PrintableText(message.text);
    for (unsigned char c : shown) Check(c >= 0x20 && c != 0x7f);
  }
}

void Open(chat::fuzz::Peers& cast, const ::Message& outer) {
  absl::StatusOr<chat::peer::ChatMessage> opened = chat::peer::OpenMessage(
      cast.bob_cipher, cast.alice.public_key(), outer, "bob");
  if (opened.ok()) {
    Check(NameKey(opened->to) == "bob");
    Check(opened->from == outer.sender() && opened->id == outer.id());
    // A group shown outside is the one sealed inside.
    if (chat::peer::HasGroupFields(outer)) {
      Check(opened->group_id == outer.group_id() &&
            opened->group_version == outer.group_version() &&
            opened->group_state_hash == outer.group_state_hash());
    }
  } else {
    const absl::StatusCode code = opened.status().code();
    Check(code == absl::StatusCode::kInvalidArgument ||
          code == absl::StatusCode::kUnauthenticated);
  }
  // Sealed by alice: never opens as carol's, nor as alice's for carol.
  Check(!chat::peer::OpenMessage(cast.bob_cipher, cast.carol.public_key(),
                                 outer, "bob")
             .ok());
  Check(!chat::peer::OpenMessage(cast.carol_cipher, cast.alice.public_key(),
                                 outer, "carol")
             .ok());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // libprotobuf logs each string field of invalid UTF-8 it parses (the
  // overload track rate-limits that in the binaries); here it is only noise.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chat::fuzz::Peers& cast = chat::fuzz::TheCast();
  if (size == 0) return 0;
  const bool sealed_shape = data[0] & 1;
  if (!sealed_shape) {
    ::Message outer;
    if (!outer.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
    Receive(cast, outer);
    // Bytes off the wire do not open: nobody but alice and bob could seal.
    Check(!chat::peer::OpenMessage(cast.bob_cipher, cast.alice.public_key(),
                                   outer, "bob")
               .ok());
    return 0;
  }

  FuzzedDataProvider provider(data + 1, size - 1);
  const bool tagged = provider.ConsumeBool();
  const bool copy_routing = provider.ConsumeBool();
  const std::string routing = provider.ConsumeRandomLengthString(256);
  const std::string inside = provider.ConsumeRemainingBytesAsString();
  std::string plaintext = tagged ? std::string(chat::peer::kMessageTag) : "";
  plaintext += inside;
  absl::StatusOr<std::string> seal =
      cast.alice_cipher.Seal(cast.bob.public_key(), plaintext);
  Check(seal.ok());

  // The routing fields outside: those inside (so the checks after them are
  // reached), or what the fuzzer says.
  ::Message outer;
  ::Message inner;
  if (copy_routing && inner.ParseFromString(inside)) {
    outer.set_sender(inner.sender());
    outer.set_recipient(inner.recipient());
    outer.set_id(inner.id());
    outer.set_sequence(inner.sequence());
    outer.set_sequence_epoch(inner.sequence_epoch());
    outer.set_sequence_floor(inner.sequence_floor());
  } else if (!outer.ParseFromString(routing)) {
    outer.Clear();
  }
  outer.set_sealed(*seal);
  Open(cast, outer);
  outer.set_sender("alice");
  Receive(cast, outer);
  return 0;
}
