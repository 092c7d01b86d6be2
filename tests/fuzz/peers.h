// The cast of the envelope and receipt fuzz targets: real identities for
// alice (who seals), bob (us, who opens) and carol (a third party), made
// once per process, and bob's Envelope over a KeyBook that knows alice's and
// carol's keys (every other name has none: a lab peer).

#ifndef CHAT_TESTS_FUZZ_PEERS_H_
#define CHAT_TESTS_FUZZ_PEERS_H_

#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/identity.h"
#include "peer/envelope.h"
#include "peer/key_book.h"
#include "peer/peer_store.h"
#include "registry/names.h"

namespace chat::fuzz {

struct Peers {
  Identity alice = Identity::Generate();
  Identity bob = Identity::Generate();
  Identity carol = Identity::Generate();
  PairCipher alice_cipher{alice};
  PairCipher bob_cipher{bob};
  PairCipher carol_cipher{carol};
  FakeClock clock;
  std::unique_ptr<peer::PeerStore> store;
  std::unique_ptr<peer::KeyBook> book;
  std::unique_ptr<peer::Envelope> envelope;  // Bob's.

  // The key the directory lists for `name`.
  std::optional<PublicKey> KeyOf(const std::string& name) const {
    const std::string key = registry::NameKey(name);
    if (key == "alice") return alice.public_key();
    if (key == "bob") return bob.public_key();
    if (key == "carol") return carol.public_key();
    return std::nullopt;
  }
};

// Made on first use, never destroyed (the fuzzer exits without returning).
inline Peers& TheCast() {
  static Peers* peers = [] {
    auto* p = new Peers;
    p->store = *peer::OpenPeerStore(":memory:", p->clock, /*sync_full=*/false);
    peer::KeyBook::Options options;
    options.directory = [p](const std::string& name)
        -> absl::StatusOr<std::optional<PublicKey>> { return p->KeyOf(name); };
    p->book = std::make_unique<peer::KeyBook>(
        &p->store->pins(), *p->store->pins().Pins(), options, p->clock);
    p->envelope = std::make_unique<peer::Envelope>("bob", p->bob, p->book.get(),
                                                   p->clock);
    return p;
  }();
  return *peers;
}

}  // namespace chat::fuzz

#endif  // CHAT_TESTS_FUZZ_PEERS_H_
