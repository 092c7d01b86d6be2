// Identity keys, fingerprints, registration proofs and PairCipher: the
// contract of common/identity.h, through its public API only.

#include "common/identity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/private_files.h"
#include "tests/common/file_modes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::ModeOf;
using ::chat::testing::ScopedUmask;
using ::chat::testing::StatusIs;
using ::chat::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// The key 00 01 02 ... 1f: not a key anyone holds, but a fixed input for
// the pinned fingerprint.
PublicKey CountingKey() {
  PublicKey key;
  for (size_t i = 0; i < key.bytes.size(); ++i) {
    key.bytes[i] = static_cast<uint8_t>(i);
  }
  return key;
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> content = ReadPrivateFile(path);
  return content.ok() ? *content : "error: " + content.status().ToString();
}

// Identity files.

TEST(IdentityFileTest, IsCreated0600UnderUmask022AndReloadsTheSameKey) {
  TempDir temp;
  ScopedUmask umask(022);
  const std::string path = temp.File("identity.key");
  auto created = Identity::LoadOrCreate(path);
  ASSERT_THAT(created, IsOk());
  EXPECT_EQ(ModeOf(path), 0600);
  EXPECT_THAT(Read(path),
              MatchesRegex("chat-identity-v1\n[A-Za-z0-9+/]{86}==\n"));

  auto loaded = Identity::LoadOrCreate(path);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded->public_key(), created->public_key());
  // The same secret too: what one signs, the other's key verifies.
  EXPECT_TRUE(VerifySignature(created->public_key(), "m", loaded->Sign("m")));

  EXPECT_NE(Identity::Generate().public_key(), created->public_key());
}

TEST(IdentityFileTest, AnExistingFileIsMadePrivate) {
  TempDir temp;
  ScopedUmask umask(022);
  const std::string path = temp.File("identity.key");
  ASSERT_THAT(Identity::LoadOrCreate(path), IsOk());
  const std::string content = Read(path);
  std::remove(path.c_str());
  std::ofstream(path) << content;
  ASSERT_EQ(ModeOf(path), 0644);
  ASSERT_THAT(Identity::LoadOrCreate(path), IsOk());
  EXPECT_EQ(ModeOf(path), 0600);
  EXPECT_EQ(Read(path), content);
}

TEST(IdentityFileTest, DamagedFilesAreDataLossAndKept) {
  TempDir temp;
  const std::string good_path = temp.File("good.key");
  ASSERT_THAT(Identity::LoadOrCreate(good_path), IsOk());
  const std::string good = Read(good_path);
  const std::string body = good.substr(good.find('\n') + 1, 88);
  // The same seed with another public key: 64 bytes, wrong half.
  std::string mismatched = good;
  mismatched[17 + 60] = mismatched[17 + 60] == 'A' ? 'B' : 'A';

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not an identity file"},
      {"hello\n", "not an identity file"},
      {body + "\n", "not an identity file"},
      {"chat-identity-v1\n", "is 0 bytes, not 64"},
      {"chat-identity-v1\n" + body + "\nextra\n", "not one line of base64"},
      {"chat-identity-v1\n" + body.substr(0, 87) + "*\n",
       "not one line of base64"},
      {"chat-identity-v1\n" + body + "\n\n", "not one line of base64"},
      {"chat-identity-v1\nAAAA\n", "is 3 bytes, not 64"},
      {"chat-identity-v1\n" + std::string(43, 'A') + "=\n",
       "is 32 bytes, not 64"},
      {mismatched, "does not match its secret key"},
  };
  for (const auto& [content, message] : cases) {
    const std::string path = temp.File("damaged.key");
    ASSERT_THAT(WritePrivateFile(path, content), IsOk());
    EXPECT_THAT(Identity::LoadOrCreate(path),
                StatusIs(absl::StatusCode::kDataLoss,
                         ::testing::AllOf(HasSubstr(path), HasSubstr(message))))
        << "content: " << content;
    EXPECT_EQ(Read(path), content) << "a damaged file is never replaced";
  }
  // Without its final newline the good file still loads.
  const std::string path = temp.File("no-newline.key");
  ASSERT_THAT(WritePrivateFile(path, good.substr(0, good.size() - 1)), IsOk());
  EXPECT_THAT(Identity::LoadOrCreate(path), IsOk());
}

TEST(IdentityFileTest, ALaterFormatIsAFailedPrecondition) {
  TempDir temp;
  const std::string path = temp.File("identity.key");
  ASSERT_THAT(WritePrivateFile(path, "chat-identity-v2\nwhatever\n"), IsOk());
  EXPECT_THAT(Identity::LoadOrCreate(path),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("chat-identity-v2")));
}

TEST(IdentityFileTest, AMissingDirectoryIsAnError) {
  TempDir temp;
  EXPECT_THAT(Identity::LoadOrCreate(temp.File("no-dir/identity.key")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no-dir")));
}

TEST(IdentityFileTest, ConcurrentCreatorsAgreeOnOneKey) {
  TempDir temp;
  const std::string path = temp.File("identity.key");
  std::vector<PublicKey> keys(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < keys.size(); ++i) {
    threads.emplace_back([&, i] {
      auto identity = Identity::LoadOrCreate(path);
      if (identity.ok()) keys[i] = identity->public_key();
    });
  }
  for (auto& thread : threads) thread.join();
  auto loaded = Identity::LoadOrCreate(path);
  ASSERT_THAT(loaded, IsOk());
  for (const PublicKey& key : keys) EXPECT_EQ(key, loaded->public_key());
}

// Public keys.

TEST(PublicKeyTest, Base64RoundTrip) {
  const PublicKey key = Identity::Generate().public_key();
  const std::string text = key.Base64();
  EXPECT_EQ(text.size(), 44u);
  auto parsed = PublicKey::FromBase64(text);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(*parsed, key);
  EXPECT_EQ(CountingKey().Base64(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  auto from_bytes = PublicKey::FromBytes(key.Bytes());
  ASSERT_THAT(from_bytes, IsOk());
  EXPECT_EQ(*from_bytes, key);
}

TEST(PublicKeyTest, BadInputSaysWhatIsWrong) {
  const std::string good = CountingKey().Base64();
  EXPECT_THAT(PublicKey::FromBase64(good.substr(0, 40)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("public key is 30 bytes, not 32")));
  EXPECT_THAT(PublicKey::FromBase64(good.substr(0, 40) + "ICEiIw=="),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("public key is 34 bytes, not 32")));
  EXPECT_THAT(
      PublicKey::FromBase64(""),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0 bytes")));
  for (const std::string& bad :
       {std::string("not base64 at all!"), good.substr(0, 43),  // No padding.
        "-" + good.substr(1),                                   // URL alphabet.
        good.substr(0, 42) + "f=",  // Non-zero bits past the end.
        good + "\n"}) {
    EXPECT_THAT(PublicKey::FromBase64(bad),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("not valid base64")))
        << bad;
  }
  EXPECT_THAT(PublicKey::FromBytes(std::string(31, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("public key is 31 bytes, not 32")));
}

TEST(PublicKeyTest, HashesByValue) {
  absl::flat_hash_set<PublicKey> set;
  set.insert(CountingKey());
  set.insert(CountingKey());
  PublicKey other = CountingKey();
  other.bytes[31] ^= 1;
  set.insert(other);
  EXPECT_EQ(set.size(), 2u);
  EXPECT_TRUE(set.contains(CountingKey()));
  EXPECT_NE(other, CountingKey());
}

// Fingerprints.

TEST(FingerprintTest, IsPinned) {
  // BLAKE2b-256 of 00..1f, first 16 bytes. Users write these down: a change
  // here breaks every comparison they made.
  // Cross-checked with Python: hashlib.blake2b(bytes(range(32)),
  // digest_size=32).hexdigest()[:32].
  EXPECT_EQ(Fingerprint(CountingKey()),
            "cb2f 5160 fc1f 7e05 a55e f49d 340b 48da");
  EXPECT_EQ(ShortFingerprint(CountingKey()), "cb2f5160");
}

TEST(FingerprintTest, HasEightGroupsOfFourHexDigits) {
  for (int i = 0; i < 20; ++i) {
    const PublicKey key = Identity::Generate().public_key();
    const std::string fingerprint = Fingerprint(key);
    EXPECT_THAT(fingerprint, MatchesRegex("[0-9a-f]{4}( [0-9a-f]{4}){7}"));
    EXPECT_EQ(ShortFingerprint(key),
              fingerprint.substr(0, 4) + fingerprint.substr(5, 4));
  }
  PublicKey other = CountingKey();
  other.bytes[0] ^= 1;
  EXPECT_NE(Fingerprint(other), Fingerprint(CountingKey()));
}

// Signatures.

TEST(SignatureTest, VerifiesOnlyTheSignedMessageByTheSigner) {
  const Identity alice = Identity::Generate();
  const Identity bob = Identity::Generate();
  const std::string message = "hello bob";
  const std::string signature = alice.Sign(message);
  ASSERT_EQ(signature.size(), kSignatureBytes);
  EXPECT_TRUE(VerifySignature(alice.public_key(), message, signature));

  EXPECT_FALSE(VerifySignature(alice.public_key(), "hello bob!", signature));
  EXPECT_FALSE(VerifySignature(alice.public_key(), "", signature));
  EXPECT_FALSE(VerifySignature(bob.public_key(), message, signature));
  for (size_t i = 0; i < signature.size(); i += 7) {
    std::string flipped = signature;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
    EXPECT_FALSE(VerifySignature(alice.public_key(), message, flipped)) << i;
  }
  EXPECT_FALSE(
      VerifySignature(alice.public_key(), message, signature.substr(0, 63)));
  EXPECT_FALSE(VerifySignature(alice.public_key(), message, signature + "x"));
  EXPECT_FALSE(VerifySignature(PublicKey(), message, signature));
}

TEST(SignatureTest, AMovedFromIdentityKeepsNoSecretAndTheMovedToSigns) {
  Identity first = Identity::Generate();
  const PublicKey key = first.public_key();
  Identity second = std::move(first);
  EXPECT_TRUE(VerifySignature(key, "m", second.Sign("m")));
  Identity third = Identity::Generate();
  third = std::move(second);
  EXPECT_EQ(third.public_key(), key);
  EXPECT_TRUE(VerifySignature(key, "m", third.Sign("m")));
}

// Registration proofs.

TEST(RegistrationProofTest, BindsNameAddressChallengeAndKey) {
  const Identity alice = Identity::Generate();
  const Identity mallory = Identity::Generate();
  const PublicKey& key = alice.public_key();
  const std::string proof = alice.Sign(
      RegistrationProofMessage("alice", "10.0.0.1:7001", "challenge-1", key));
  EXPECT_TRUE(VerifyRegistrationProof("alice", "10.0.0.1:7001", "challenge-1",
                                      key, proof));
  EXPECT_FALSE(VerifyRegistrationProof("alicf", "10.0.0.1:7001", "challenge-1",
                                       key, proof));
  // The address is signed: a captured request cannot be sent on with another.
  EXPECT_FALSE(VerifyRegistrationProof("alice", "10.0.0.66:7001", "challenge-1",
                                       key, proof));
  EXPECT_FALSE(VerifyRegistrationProof("alice", "10.0.0.1:7001", "challenge-2",
                                       key, proof));
  EXPECT_FALSE(VerifyRegistrationProof("alice", "10.0.0.1:7001", "challenge-1",
                                       mallory.public_key(), proof));
  // A plain signature of the name is no proof.
  EXPECT_FALSE(VerifyRegistrationProof("alice", "10.0.0.1:7001", "challenge-1",
                                       key, alice.Sign("alice")));
}

TEST(RegistrationProofTest, FieldsCannotTradeBytes) {
  const PublicKey key = CountingKey();
  PublicKey other = key;
  other.bytes[5] ^= 0x80;
  std::set<std::string> messages;
  struct Fields {
    std::string name, address, challenge;
  };
  const std::vector<Fields> fields = {{"ab", "c", "d"},
                                      {"a", "bc", "d"},
                                      {"a", "b", "cd"},
                                      {"abc", "", "d"},
                                      {"", "abc", "d"},
                                      {"abcd", "", ""},
                                      {"", "", "abcd"},
                                      {std::string("a\0", 2), "bc", "d"},
                                      {"a", std::string("\0bc", 3), "d"},
                                      {"bob", "h:1", "x"},
                                      {"Bob", "h:1", "x"}};
  for (const Fields& f : fields) {
    messages.insert(
        RegistrationProofMessage(f.name, f.address, f.challenge, key));
    messages.insert(
        RegistrationProofMessage(f.name, f.address, f.challenge, other));
  }
  EXPECT_EQ(messages.size(), 2 * fields.size());
  // Unambiguous: the message starts with the domain and ends with the key.
  const std::string message = RegistrationProofMessage("n", "a", "c", key);
  EXPECT_EQ(message.substr(0, 17), std::string("chat-register-v1\0", 17));
  EXPECT_EQ(message.substr(message.size() - 32), key.Bytes());
  EXPECT_EQ(message.size(), 17u + 4 + 1 + 4 + 1 + 4 + 1 + 4 + 32);
}

TEST(TimedRegistrationProofTest, BindsNameAddressKeyAndTime) {
  const Identity alice = Identity::Generate();
  const Identity mallory = Identity::Generate();
  const PublicKey& key = alice.public_key();
  const int64_t t = 1798761600123;
  const std::string proof = alice.Sign(
      TimedRegistrationProofMessage("alice", "10.0.0.1:7001", key, t));
  EXPECT_TRUE(
      VerifyTimedRegistrationProof("alice", "10.0.0.1:7001", key, t, proof));
  EXPECT_FALSE(
      VerifyTimedRegistrationProof("alicf", "10.0.0.1:7001", key, t, proof));
  EXPECT_FALSE(
      VerifyTimedRegistrationProof("alice", "10.0.0.66:7001", key, t, proof));
  EXPECT_FALSE(VerifyTimedRegistrationProof("alice", "10.0.0.1:7001",
                                            mallory.public_key(), t, proof));
  // The time is signed: a captured proof cannot be dated anew.
  EXPECT_FALSE(VerifyTimedRegistrationProof("alice", "10.0.0.1:7001", key,
                                            t + 1, proof));
}

TEST(TimedRegistrationProofTest, IsNeitherAChallengeProofNorAmbiguous) {
  const PublicKey key = CountingKey();
  const int64_t t = 0x0102030405060708;
  const std::string message = TimedRegistrationProofMessage("n", "a", key, t);
  EXPECT_EQ(message.substr(0, 17), std::string("chat-register-v2\0", 17));
  EXPECT_EQ(message.substr(message.size() - 12),
            std::string("\0\0\0\x08\x01\x02\x03\x04\x05\x06\x07\x08", 12));
  EXPECT_EQ(message.size(), 17u + 4 + 1 + 4 + 1 + 4 + 32 + 4 + 8);
  // A v1 signature over the same fields, with the time's bytes as the
  // challenge, is another message.
  EXPECT_NE(message, RegistrationProofMessage(
                         "n", "a", message.substr(message.size() - 8), key));
  const Identity alice = Identity::Generate();
  const std::string v1 = alice.Sign(
      RegistrationProofMessage("n", "a", "challenge", alice.public_key()));
  EXPECT_FALSE(
      VerifyTimedRegistrationProof("n", "a", alice.public_key(), t, v1));
  std::set<std::string> messages;
  for (const auto& [name, address] :
       std::vector<std::pair<std::string, std::string>>{
           {"ab", "c"}, {"a", "bc"}, {"abc", ""}, {"", "abc"}}) {
    messages.insert(TimedRegistrationProofMessage(name, address, key, t));
  }
  EXPECT_EQ(messages.size(), 4u);
}

// PairCipher.

class PairCipherTest : public ::testing::Test {
 protected:
  const Identity alice_ = Identity::Generate();
  const Identity bob_ = Identity::Generate();
  const Identity eve_ = Identity::Generate();
  PairCipher alice_cipher_{alice_};
  PairCipher bob_cipher_{bob_};
  PairCipher eve_cipher_{eve_};
};

TEST_F(PairCipherTest, RoundTripsBothWays) {
  auto to_bob = alice_cipher_.Seal(bob_.public_key(), "hi bob");
  ASSERT_THAT(to_bob, IsOk());
  EXPECT_EQ(to_bob->size(), 6 + kSealOverheadBytes);
  EXPECT_EQ(to_bob->find("hi bob"), std::string::npos);
  auto opened = bob_cipher_.Open(alice_.public_key(), *to_bob);
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(*opened, "hi bob");

  const std::string binary("\0\xff reply", 8);
  auto to_alice = bob_cipher_.Seal(alice_.public_key(), binary);
  ASSERT_THAT(to_alice, IsOk());
  auto reply = alice_cipher_.Open(bob_.public_key(), *to_alice);
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(*reply, binary);

  auto empty = alice_cipher_.Seal(bob_.public_key(), "");
  ASSERT_THAT(empty, IsOk());
  EXPECT_EQ(empty->size(), kSealOverheadBytes);
  auto opened_empty = bob_cipher_.Open(alice_.public_key(), *empty);
  ASSERT_THAT(opened_empty, IsOk());
  EXPECT_EQ(*opened_empty, "");
}

TEST_F(PairCipherTest, EachSealHasItsOwnNonce) {
  auto first = alice_cipher_.Seal(bob_.public_key(), "same");
  auto second = alice_cipher_.Seal(bob_.public_key(), "same");
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  EXPECT_NE(first->substr(0, kSealNonceBytes),
            second->substr(0, kSealNonceBytes));
  EXPECT_NE(*first, *second);
}

TEST_F(PairCipherTest, OnlyThePairCanOpen) {
  auto sealed = alice_cipher_.Seal(bob_.public_key(), "for bob only");
  ASSERT_THAT(sealed, IsOk());
  // Eve cannot read it, whoever she claims sent it.
  EXPECT_THAT(eve_cipher_.Open(alice_.public_key(), *sealed),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(eve_cipher_.Open(bob_.public_key(), *sealed),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // Bob does not take it for eve's.
  EXPECT_THAT(bob_cipher_.Open(eve_.public_key(), *sealed),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // Eve cannot make one that bob takes for alice's.
  auto forged = eve_cipher_.Seal(bob_.public_key(), "from alice, honest");
  ASSERT_THAT(forged, IsOk());
  EXPECT_THAT(bob_cipher_.Open(alice_.public_key(), *forged),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(PairCipherTest, AnyFlippedBitFails) {
  auto sealed = alice_cipher_.Seal(bob_.public_key(), "do not change me");
  ASSERT_THAT(sealed, IsOk());
  for (size_t byte = 0; byte < sealed->size(); ++byte) {
    for (int bit = 0; bit < 8; bit += 3) {
      std::string changed = *sealed;
      changed[byte] = static_cast<char>(changed[byte] ^ (1 << bit));
      EXPECT_THAT(bob_cipher_.Open(alice_.public_key(), changed),
                  StatusIs(absl::StatusCode::kUnauthenticated))
          << "byte " << byte << " bit " << bit;
    }
  }
  EXPECT_THAT(bob_cipher_.Open(alice_.public_key(), *sealed + "x"),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(bob_cipher_.Open(alice_.public_key(),
                               sealed->substr(0, sealed->size() - 1)),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(PairCipherTest, TooShortIsInvalidArgument) {
  auto sealed = alice_cipher_.Seal(bob_.public_key(), "");
  ASSERT_THAT(sealed, IsOk());
  for (size_t size :
       {size_t{0}, size_t{1}, kSealNonceBytes, kSealOverheadBytes - 1}) {
    EXPECT_THAT(bob_cipher_.Open(alice_.public_key(), sealed->substr(0, size)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(absl::StrCat("sealed message is ", size,
                                                " bytes"))));
  }
}

TEST_F(PairCipherTest, UnusableKeysAreInvalidArgument) {
  // The identity point (1, 0 ... 0) has small order; all zeros and all 0xff
  // are no valid points at all.
  PublicKey identity_point;
  identity_point.bytes[0] = 1;
  PublicKey all_ones;
  all_ones.bytes.fill(0xff);
  for (const PublicKey& bad : {PublicKey(), identity_point, all_ones}) {
    EXPECT_THAT(alice_cipher_.Seal(bad, "x"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("recipient's public key is not a valid")));
    EXPECT_THAT(alice_cipher_.Open(bad, std::string(64, 'x')),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("sender's public key is not a valid")));
  }
  EXPECT_EQ(alice_cipher_.cached_peers(), 0u);  // Nothing cached for them.
}

TEST_F(PairCipherTest, OnePeerIsOneCachedKey) {
  for (int i = 0; i < 1000; ++i) {
    const std::string text = absl::StrCat("message ", i);
    auto sealed = alice_cipher_.Seal(bob_.public_key(), text);
    ASSERT_THAT(sealed, IsOk());
    auto opened = bob_cipher_.Open(alice_.public_key(), *sealed);
    ASSERT_THAT(opened, IsOk());
    ASSERT_EQ(*opened, text);
  }
  EXPECT_EQ(alice_cipher_.cached_peers(), 1u);
  EXPECT_EQ(bob_cipher_.cached_peers(), 1u);
  // Seal and Open with the same peer share the key.
  auto back = alice_cipher_.Open(bob_.public_key(),
                                 *bob_cipher_.Seal(alice_.public_key(), "r"));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(alice_cipher_.cached_peers(), 1u);
}

TEST_F(PairCipherTest, ManyMorePeersThanTheBoundStillWork) {
  constexpr size_t kBound = 8;
  PairCipher bounded(alice_, kBound);
  std::vector<Identity> peers;
  std::vector<std::unique_ptr<PairCipher>> peer_ciphers;
  for (int i = 0; i < 50; ++i) {
    peers.push_back(Identity::Generate());
    peer_ciphers.push_back(std::make_unique<PairCipher>(peers.back()));
  }
  // Twice round, so evicted keys are computed again and still right.
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < peers.size(); ++i) {
      const std::string text = absl::StrCat("to peer ", i, " round ", round);
      auto sealed = bounded.Seal(peers[i].public_key(), text);
      ASSERT_THAT(sealed, IsOk());
      auto opened = peer_ciphers[i]->Open(alice_.public_key(), *sealed);
      ASSERT_THAT(opened, IsOk());
      EXPECT_EQ(*opened, text);
      auto reply = peer_ciphers[i]->Seal(alice_.public_key(), "ack");
      ASSERT_THAT(reply, IsOk());
      EXPECT_THAT(bounded.Open(peers[i].public_key(), *reply), IsOk());
      EXPECT_LE(bounded.cached_peers(), kBound);
    }
  }
  EXPECT_GE(bounded.cached_peers(), kBound / 2);
}

TEST_F(PairCipherTest, AFrequentPeerStaysRightThroughChurn) {
  PairCipher bounded(alice_, 8);
  ASSERT_THAT(bounded.Seal(bob_.public_key(), "first"), IsOk());
  for (int i = 0; i < 100; ++i) {
    ASSERT_THAT(bounded.Seal(Identity::Generate().public_key(), "x"), IsOk());
    ASSERT_THAT(bounded.Seal(bob_.public_key(), "again"), IsOk());
    EXPECT_LE(bounded.cached_peers(), 8u);
  }
  // Still right after all that churn.
  auto sealed = bounded.Seal(bob_.public_key(), "last");
  ASSERT_THAT(sealed, IsOk());
  EXPECT_THAT(bob_cipher_.Open(alice_.public_key(), *sealed), IsOk());
}

TEST_F(PairCipherTest, ConcurrentSealsAndOpens) {
  PairCipher shared(alice_, 4);
  std::vector<Identity> peers;
  for (int i = 0; i < 6; ++i) peers.push_back(Identity::Generate());
  std::vector<std::thread> threads;
  std::vector<int> failures(peers.size(), 0);
  for (size_t t = 0; t < peers.size(); ++t) {
    threads.emplace_back([&, t] {
      PairCipher mine(peers[t]);
      for (int i = 0; i < 200; ++i) {
        auto sealed = shared.Seal(peers[t].public_key(), "ping");
        auto opened = sealed.ok()
                          ? mine.Open(alice_.public_key(), *sealed)
                          : absl::StatusOr<std::string>(sealed.status());
        if (!opened.ok() || *opened != "ping") ++failures[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int failed : failures) EXPECT_EQ(failed, 0);
}

TEST_F(PairCipherTest, AMacIsTheSameForBothOfThePairAndNobodyElse) {
  Identity mallory = Identity::Generate();
  PairCipher mallory_cipher(mallory);
  absl::StatusOr<std::string> mac =
      alice_cipher_.Mac(bob_.public_key(), "tagged bytes");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(mac->size(), kPairMacBytes);
  EXPECT_TRUE(bob_cipher_.VerifyMac(alice_.public_key(), "tagged bytes", *mac));
  EXPECT_FALSE(bob_cipher_.VerifyMac(alice_.public_key(), "other bytes", *mac));
  EXPECT_FALSE(
      mallory_cipher.VerifyMac(alice_.public_key(), "tagged bytes", *mac));
  EXPECT_FALSE(bob_cipher_.VerifyMac(alice_.public_key(), "tagged bytes",
                                     mac->substr(1)));
  // Not the sealing key itself: a MAC is no crypto_box authenticator.
  absl::StatusOr<std::string> sealed =
      alice_cipher_.Seal(bob_.public_key(), "tagged bytes");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->find(*mac), std::string::npos);
}

TEST(ContentDigestTest, IsBlake2b256) {
  // BLAKE2b-256 of the empty string (RFC 7693 parameters, 32-byte output).
  const std::string empty = ContentDigest("");
  ASSERT_EQ(empty.size(), 32u);
  EXPECT_EQ(static_cast<unsigned char>(empty[0]), 0x0e);
  EXPECT_EQ(static_cast<unsigned char>(empty[1]), 0x57);
  EXPECT_NE(ContentDigest("a"), ContentDigest("b"));
}

}  // namespace
}  // namespace chat
