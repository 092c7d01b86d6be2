// Fuzzes the receipts a sender gets back through the mailbox
// (peer/sealing.h MakeReceipt/CheckReceipt, peer/envelope.h): alice sent
// message `id` to bob and checks what comes back as bob's receipt.
//   forged  any bytes as the payload: never bob's receipt;
//   sealed  what bob really seals for alice: bob's receipt only when it says
//           exactly kReceiptTag + id + bob's name (in any case);
//   made    MakeReceipt's own: good for that id and name, no other id.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "peer/sealing.h"
#include "registry/names.h"
#include "tests/fuzz/peers.h"

namespace {

using chat::registry::NameKey;

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chat::fuzz::Peers& cast = chat::fuzz::TheCast();
  FuzzedDataProvider provider(data, size);
  const std::string id = provider.ConsumeRandomLengthString(64);
  const std::string other_id = provider.ConsumeRandomLengthString(64);
  const std::string recipient = provider.ConsumeRandomLengthString(64);
  const int shape = provider.ConsumeIntegralInRange<int>(0, 2);
  const std::string rest = provider.ConsumeRemainingBytesAsString();
  const chat::PublicKey& bob_key = cast.bob.public_key();
  const chat::PublicKey& alice_key = cast.alice.public_key();

  switch (shape) {
    case 0:  // Forged: only bob and alice could seal between them.
      Check(!chat::peer::CheckReceipt(cast.alice_cipher, bob_key, rest, id,
                                      recipient));
      Check(!chat::peer::CheckReceipt(cast.alice_cipher, bob_key, rest, id,
                                      "bob"));
      break;
    case 1: {  // Sealed by bob for alice, saying anything.
      absl::StatusOr<std::string> payload =
          cast.bob_cipher.Seal(alice_key, rest);
      Check(payload.ok());
      const bool good = chat::peer::CheckReceipt(cast.alice_cipher, bob_key,
                                                 *payload, id, recipient);
      const std::string head = std::string(chat::peer::kReceiptTag) + id;
      Check(good == (absl::StartsWith(rest, head) &&
                     NameKey(rest.substr(head.size())) == NameKey(recipient)));
      // Not alice's receipt from carol, whatever it says.
      Check(!chat::peer::CheckReceipt(
          cast.alice_cipher, cast.carol.public_key(), *payload, id, recipient));
      break;
    }
    default: {  // Made by bob's peer for alice's message `id`.
      absl::StatusOr<std::string> payload =
          chat::peer::MakeReceipt(cast.bob_cipher, alice_key, id, "bob");
      Check(payload.ok());
      Check(chat::peer::CheckReceipt(cast.alice_cipher, bob_key, *payload, id,
                                     "BoB"));
      Check(chat::peer::CheckReceipt(cast.alice_cipher, bob_key, *payload,
                                     other_id, "bob") == (other_id == id));
      // Through an envelope: bob's for alice's message, checked by bob's
      // own envelope as if bob had sent it to `recipient`.
      absl::StatusOr<std::optional<std::string>> made =
          cast.envelope->Receipt("alice", id);
      Check(made.ok() && made->has_value());
      absl::StatusOr<chat::peer::Proof> checked =
          cast.envelope->CheckReceipt(recipient, id, rest);
      // A recipient with a key never takes forged bytes; one without can
      // prove nothing (kNoKey: at most an unverified delivery).
      if (checked.ok()) {
        Check(*checked != chat::peer::Proof::kValid);
        Check((*checked == chat::peer::Proof::kNoKey) ==
              !cast.KeyOf(recipient).has_value());
      }
      break;
    }
  }
  return 0;
}
