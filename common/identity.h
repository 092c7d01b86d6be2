// Who a program is: its Ed25519 identity key (kept in a private file), the
// fingerprint people compare out of band, the proof that binds a name to a
// key at registration, and end-to-end sealing between two identities.
// libsodium underneath; this header does not expose it.

#ifndef CHAT_COMMON_IDENTITY_H_
#define CHAT_COMMON_IDENTITY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace chat {

// Sizes on the wire.
inline constexpr size_t kPublicKeyBytes = 32;  // Ed25519 public key.
inline constexpr size_t kSignatureBytes = 64;  // Ed25519 detached signature.
// What PairCipher::Seal adds to a plaintext: a 24-byte random nonce and a
// 16-byte authenticator.
inline constexpr size_t kSealNonceBytes = 24;
inline constexpr size_t kSealOverheadBytes = kSealNonceBytes + 16;
// What PairCipher::Mac makes: a 32-byte keyed BLAKE2b.
inline constexpr size_t kPairMacBytes = 32;

// An Ed25519 public key: 32 bytes, compared and hashed by value. Any 32
// bytes make a PublicKey; whether they are a usable point shows when they
// are used (VerifySignature is false, PairCipher says kInvalidArgument).
// A value type; thread-compatible.
struct PublicKey {
  std::array<uint8_t, kPublicKeyBytes> bytes{};

  // kInvalidArgument unless `bytes` is exactly 32 bytes ("public key is N
  // bytes, not 32").
  static absl::StatusOr<PublicKey> FromBytes(absl::string_view bytes);
  // From standard base64 with padding (what Base64() writes; exactly one
  // text per key). kInvalidArgument naming what is wrong: not base64, or
  // the wrong number of bytes.
  static absl::StatusOr<PublicKey> FromBase64(absl::string_view text);

  // The 32 bytes, for a proto `bytes` field.
  std::string Bytes() const;
  // Standard base64 with padding: 44 characters.
  std::string Base64() const;

  friend bool operator==(const PublicKey& a, const PublicKey& b) {
    return a.bytes == b.bytes;
  }
  friend bool operator!=(const PublicKey& a, const PublicKey& b) {
    return !(a == b);
  }
  template <typename H>
  friend H AbslHashValue(H h, const PublicKey& key) {
    return H::combine_contiguous(std::move(h), key.bytes.data(),
                                 key.bytes.size());
  }
};

// What two people compare to know they hold each other's key: the first 16
// bytes of BLAKE2b-256 of the key, lowercase hex, in 8 groups of 4 digits
// separated by spaces ("7f3a 9c21 ..."; 39 characters). Stable: it is shown
// to users and written down, so it never changes for a given key.
std::string Fingerprint(const PublicKey& key);

// The first two groups of Fingerprint, unspaced ("7f3a9c21"), for one-line
// messages. Too short to verify a key with; long enough to tell two apart.
std::string ShortFingerprint(const PublicKey& key);

// BLAKE2b-256 of `bytes`: 32 raw bytes. What names a mailbox item's payload
// (registry/types.h MailItem::digest). Thread-safe.
std::string ContentDigest(absl::string_view bytes);

// True when `signature` is a valid Ed25519 signature of `message` by the
// holder of `key`. False for anything else, including a signature of the
// wrong length or a key that is not a valid point. Thread-safe.
bool VerifySignature(const PublicKey& key, absl::string_view message,
                     absl::string_view signature);

// An Ed25519 keypair: the program's identity. The secret key never leaves
// this object (and PairCipher, which derives its X25519 key from it); it is
// wiped from memory when the object is destroyed or moved from.
// Movable, not copyable. Thread-safe: const methods only after creation.
class Identity {
 public:
  // The identity kept in the file at `path`, made (and written there with
  // mode 0600, atomically, never replacing a file that exists) when there is
  // none. An existing file is set to mode 0600.
  //
  // The file (format "chat-identity-v1"):
  //   chat-identity-v1\n
  //   <standard base64 of libsodium's 64-byte secret key: the 32-byte seed,
  //    then the 32-byte public key>\n
  // The final newline is optional; nothing else is accepted. The public half
  // is kept to catch damage: on load it must match the one the seed gives.
  //
  // Errors: kDataLoss naming `path` when the file is not such a file (wrong
  // header, not base64, wrong length, public key not matching the secret);
  // the file is left as it is, never replaced. kFailedPrecondition when it
  // is a later version of the format ("chat-identity-v2"). Whatever
  // ReadPrivateFile / CreatePrivateFile / MakePrivate return for I/O
  // failures (kPermissionDenied, kNotFound for a missing directory,
  // kUnavailable).
  static absl::StatusOr<Identity> LoadOrCreate(const std::string& path);

  // A new random identity, kept nowhere (for tests and short-lived tools).
  static Identity Generate();

  Identity(Identity&& other) noexcept;
  Identity& operator=(Identity&& other) noexcept;
  Identity(const Identity&) = delete;
  Identity& operator=(const Identity&) = delete;
  ~Identity();

  const PublicKey& public_key() const { return public_key_; }

  // The 64-byte detached Ed25519 signature of `message`. Sign only
  // domain-separated messages (RegistrationProofMessage), so that a
  // signature made for one purpose cannot be replayed for another.
  std::string Sign(absl::string_view message) const;

 private:
  friend class PairCipher;
  Identity() = default;

  // libsodium's Ed25519 secret key: seed || public key.
  std::array<uint8_t, 64> secret_key_{};
  PublicKey public_key_;
};

// The bytes an older registrant signs to prove it holds `key` when it
// registers `name` at `address`, answering the registry's single-use
// `challenge` (chat-register-v1; still accepted, see
// TimedRegistrationProofMessage for what clients sign now):
//   "chat-register-v1" 0x00
//   u32be(len(name)) name  u32be(len(address)) address
//   u32be(len(challenge)) challenge  u32be(32) key
// The prefix keeps the signature from serving any other purpose; the length
// prefixes keep bytes from moving between fields ("ab"+"c" is not "a"+"bc").
// The address is signed so that whoever sees the request on its way cannot
// send it on with an address of their own. `name` and `address` are signed
// as they are sent: the registry checks the same bytes.
std::string RegistrationProofMessage(absl::string_view name,
                                     absl::string_view address,
                                     absl::string_view challenge,
                                     const PublicKey& key);

// VerifySignature(key, RegistrationProofMessage(name, address, challenge,
// key), signature): true when the holder of `key` signed this name, address
// and challenge.
bool VerifyRegistrationProof(absl::string_view name, absl::string_view address,
                             absl::string_view challenge, const PublicKey& key,
                             absl::string_view signature);

// The bytes a registrant signs to prove it holds `key` when it registers
// `name` at `address` at `proof_unix_ms` (its wall clock, Unix milliseconds),
// without asking the registry for a challenge first:
//   "chat-register-v2" 0x00
//   u32be(len(name)) name  u32be(len(address)) address  u32be(32) key
//   u32be(8) u64be(proof_unix_ms)
// Freshness comes from the time instead of a challenge: the registry takes
// it only near its own clock and only when it is later than the last proof
// it accepted for the name (registry/store/store_rules.h CheckProofFreshness),
// so no registry has to remember what it handed out. Framed like
// RegistrationProofMessage, under its own prefix, so neither kind of
// signature passes for the other.
std::string TimedRegistrationProofMessage(absl::string_view name,
                                          absl::string_view address,
                                          const PublicKey& key,
                                          int64_t proof_unix_ms);

// VerifySignature(key, TimedRegistrationProofMessage(...), signature).
bool VerifyTimedRegistrationProof(absl::string_view name,
                                  absl::string_view address,
                                  const PublicKey& key, int64_t proof_unix_ms,
                                  absl::string_view signature);

// End-to-end sealing between this identity and its peers with libsodium's
// crypto_box (X25519 + XSalsa20-Poly1305), with the X25519 keys derived
// from the Ed25519 identities. A sealed message can only have been made by
// one of the two holders of the pair's keys, so opening it authenticates the
// sender to the recipient without a signature per message; nobody else can
// read it. (Not crypto_box_seal, which is anonymous.)
//
// The shared key of a pair costs one X25519 scalar multiplication; it is
// computed once per peer and cached, at most `max_peers` of them (2 when
// smaller); when full, the keys least recently used are dropped first
// (approximately: half of the cache at a time, see recent_/older_). Shared keys
// and the secret key are wiped from memory when dropped or destroyed.
//
// Thread-safe: Seal and Open may be called from any number of threads.
// Not copyable, not movable.
class PairCipher {
 public:
  static constexpr size_t kDefaultMaxPeers = 4096;

  // Copies what it needs from `identity`, which need not outlive this.
  explicit PairCipher(const Identity& identity,
                      size_t max_peers = kDefaultMaxPeers);
  ~PairCipher();
  PairCipher(const PairCipher&) = delete;
  PairCipher& operator=(const PairCipher&) = delete;

  // `plaintext` sealed for `recipient`: a random 24-byte nonce, then the
  // authenticated ciphertext (plaintext size + 16 bytes). kInvalidArgument
  // when `recipient` is not a usable key (not a point, or of low order).
  absl::StatusOr<std::string> Seal(const PublicKey& recipient,
                                   absl::string_view plaintext)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The plaintext of what `sender` sealed for us. kInvalidArgument when
  // `sealed` is shorter than kSealOverheadBytes or `sender` is not a usable
  // key; kUnauthenticated when it was not sealed by `sender` for us, or was
  // changed on the way.
  absl::StatusOr<std::string> Open(const PublicKey& sender,
                                   absl::string_view sealed)
      ABSL_LOCKS_EXCLUDED(mu_);

  // A kPairMacBytes authenticator of `message` that only the two holders of
  // this pair's keys (we and `peer`) can make: keyed BLAKE2b-256 under a key
  // derived from the pair's shared key ("chat-pair-mac-v1"), never the
  // sealing key itself. Either side makes the same value, so `message` must
  // say which side made it (its own domain tag, names in a fixed order).
  // kInvalidArgument when `peer` is not a usable key.
  absl::StatusOr<std::string> Mac(const PublicKey& peer,
                                  absl::string_view message)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Whether `mac` is Mac(peer, message), compared in constant time. False
  // for a wrong length or an unusable key.
  bool VerifyMac(const PublicKey& peer, absl::string_view message,
                 absl::string_view mac) ABSL_LOCKS_EXCLUDED(mu_);

  // How many shared keys are cached now (for tests and metrics).
  size_t cached_peers() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // A crypto_box shared key; wiped when destroyed.
  struct SharedKey {
    SharedKey();
    SharedKey(const SharedKey& other);
    SharedKey& operator=(const SharedKey& other);
    ~SharedKey();
    std::array<uint8_t, 32> bytes;
  };
  using Cache = absl::flat_hash_map<PublicKey, SharedKey>;

  // The shared key with `peer`, from the cache or computed (outside the
  // lock) and cached. kInvalidArgument for an unusable key.
  absl::Status SharedKeyWith(const PublicKey& peer, SharedKey& key)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Makes room in `recent_` for one more entry.
  void MakeRoom() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::array<uint8_t, 32> x25519_secret_;  // Wiped by the destructor.
  const size_t generation_size_;           // Entries per generation.

  mutable absl::Mutex mu_;
  // Two generations: lookups hit `recent_`, then `older_` (and move the
  // entry back to `recent_`); when `recent_` is full it becomes `older_` and
  // the old `older_` is dropped. Together at most 2 * generation_size_.
  Cache recent_ ABSL_GUARDED_BY(mu_);
  Cache older_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat

#endif  // CHAT_COMMON_IDENTITY_H_
