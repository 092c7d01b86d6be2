#include "common/identity.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/private_files.h"

namespace chat {
namespace {

static_assert(kPublicKeyBytes == crypto_sign_PUBLICKEYBYTES);
static_assert(kSignatureBytes == crypto_sign_BYTES);
static_assert(std::tuple_size<decltype(PublicKey::bytes)>::value ==
              crypto_sign_PUBLICKEYBYTES);
static_assert(kSealNonceBytes == crypto_box_NONCEBYTES);
static_assert(kSealOverheadBytes ==
              crypto_box_NONCEBYTES + crypto_box_MACBYTES);
static_assert(crypto_box_BEFORENMBYTES == 32);
static_assert(crypto_box_SECRETKEYBYTES == 32);
static_assert(crypto_sign_SECRETKEYBYTES == 64);
static_assert(crypto_sign_SEEDBYTES == 32);

constexpr absl::string_view kIdentityHeader = "chat-identity-v1";
constexpr absl::string_view kIdentityFamily = "chat-identity-v";
constexpr absl::string_view kRegisterDomain("chat-register-v1\0", 17);
constexpr absl::string_view kTimedRegisterDomain("chat-register-v2\0", 17);

// libsodium is initialised once, by whichever thread gets here first (a
// function-local static is thread-safe). It fails only without a source of
// randomness, and nothing safe can follow then.
void EnsureSodium() {
  static const bool ready = [] {
    if (sodium_init() < 0) {
      std::fputs("sodium_init failed: no randomness\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)ready;
}

const unsigned char* U8(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* U8(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

void Wipe(std::string& s) { sodium_memzero(s.data(), s.size()); }

std::string ToBase64(const unsigned char* bytes, size_t size) {
  EnsureSodium();
  std::string out(
      sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes, size,
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // The terminating NUL.
  return out;
}

// The bytes of standard base64 `text`, or false when it is not canonical
// standard base64 with padding.
bool DecodeBase64(absl::string_view text, std::string& out) {
  EnsureSodium();
  out.assign(text.size() / 4 * 3 + 3, '\0');
  size_t size = 0;
  if (sodium_base642bin(U8(out), out.size(), text.data(), text.size(),
                        /*ignore=*/nullptr, &size, /*b64_end=*/nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return false;
  }
  out.resize(size);
  return true;
}

void AppendU32(std::string& out, size_t value) {
  const uint32_t v = static_cast<uint32_t>(value);
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

void AppendField(std::string& out, absl::string_view field) {
  AppendU32(out, field.size());
  out.append(field.data(), field.size());
}

// `content` parsed as an identity file (see Identity::LoadOrCreate) into
// `secret_key`. `path` names the file in errors.
absl::Status ParseIdentityFile(absl::string_view content,
                               const std::string& path,
                               std::array<uint8_t, 64>& secret_key) {
  const size_t newline = content.find('\n');
  const absl::string_view header = content.substr(0, newline);
  if (header != kIdentityHeader) {
    if (absl::StartsWith(header, kIdentityFamily) && header.size() < 64) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is an identity file of a later format (", header,
                       "); this build reads ", kIdentityHeader));
    }
    return absl::DataLossError(
        absl::StrCat(path, " is not an identity file (its first line is not ",
                     kIdentityHeader, ")"));
  }
  absl::string_view body = newline == absl::string_view::npos
                               ? absl::string_view()
                               : content.substr(newline + 1);
  if (absl::EndsWith(body, "\n")) body.remove_suffix(1);
  std::string decoded;
  if (body.find('\n') != absl::string_view::npos ||
      !DecodeBase64(body, decoded)) {
    Wipe(decoded);
    return absl::DataLossError(absl::StrCat(
        path, " is damaged: its secret key is not one line of base64"));
  }
  if (decoded.size() != secret_key.size()) {
    const size_t size = decoded.size();
    Wipe(decoded);
    return absl::DataLossError(absl::StrCat(
        path, " is damaged: its secret key is ", size, " bytes, not 64"));
  }
  std::array<uint8_t, 64> derived_secret;
  std::array<uint8_t, 32> derived_public;
  crypto_sign_seed_keypair(derived_public.data(), derived_secret.data(),
                           U8(decoded));
  const bool matches =
      sodium_memcmp(derived_secret.data(), U8(decoded), 64) == 0;
  if (matches) std::copy_n(derived_secret.data(), 64, secret_key.data());
  sodium_memzero(derived_secret.data(), derived_secret.size());
  Wipe(decoded);
  if (!matches) {
    return absl::DataLossError(absl::StrCat(
        path, " is damaged: its public key does not match its secret key"));
  }
  return absl::OkStatus();
}

std::string Hex(const unsigned char* bytes, size_t size) {
  std::string out(size * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes, size);
  out.resize(size * 2);
  return out;
}

std::string FingerprintHex(const PublicKey& key) {
  EnsureSodium();
  unsigned char hash[crypto_generichash_BYTES];  // BLAKE2b-256.
  crypto_generichash(hash, sizeof(hash), key.bytes.data(), key.bytes.size(),
                     nullptr, 0);
  return Hex(hash, 16);
}

}  // namespace

// PublicKey.

absl::StatusOr<PublicKey> PublicKey::FromBytes(absl::string_view bytes) {
  PublicKey key;
  if (bytes.size() != key.bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "public key is ", bytes.size(), " bytes, not ", key.bytes.size()));
  }
  std::copy_n(U8(bytes), key.bytes.size(), key.bytes.data());
  return key;
}

absl::StatusOr<PublicKey> PublicKey::FromBase64(absl::string_view text) {
  std::string decoded;
  if (!DecodeBase64(text, decoded)) {
    return absl::InvalidArgumentError(
        "public key is not valid base64 (standard alphabet, with padding)");
  }
  return FromBytes(decoded);
}

std::string PublicKey::Bytes() const {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::string PublicKey::Base64() const {
  return ToBase64(bytes.data(), bytes.size());
}

std::string Fingerprint(const PublicKey& key) {
  const std::string hex = FingerprintHex(key);
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 4) {
    if (i > 0) out.push_back(' ');
    out.append(hex, i, 4);
  }
  return out;
}

std::string ShortFingerprint(const PublicKey& key) {
  return FingerprintHex(key).substr(0, 8);
}

std::string ContentDigest(absl::string_view bytes) {
  std::string digest(crypto_generichash_BYTES, '\0');  // BLAKE2b-256.
  crypto_generichash(U8(digest), digest.size(), U8(bytes), bytes.size(),
                     nullptr, 0);
  return digest;
}

bool VerifySignature(const PublicKey& key, absl::string_view message,
                     absl::string_view signature) {
  EnsureSodium();
  if (signature.size() != crypto_sign_BYTES) return false;
  return crypto_sign_verify_detached(U8(signature), U8(message), message.size(),
                                     key.bytes.data()) == 0;
}

// Identity.

absl::StatusOr<Identity> Identity::LoadOrCreate(const std::string& path) {
  EnsureSodium();
  // Twice at most: when another process creates the file between our read
  // and our create, we read its identity instead.
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<std::string> content = ReadPrivateFile(path);
    if (content.ok()) {
      absl::Status made = MakePrivate(path);
      if (!made.ok()) {
        Wipe(*content);
        return made;
      }
      Identity identity;
      absl::Status parsed =
          ParseIdentityFile(*content, path, identity.secret_key_);
      Wipe(*content);
      if (!parsed.ok()) return parsed;
      std::copy_n(identity.secret_key_.data() + 32, 32,
                  identity.public_key_.bytes.data());
      return identity;
    }
    if (!absl::IsNotFound(content.status())) return content.status();
    Identity identity = Generate();
    std::string encoded =
        ToBase64(identity.secret_key_.data(), identity.secret_key_.size());
    std::string file = absl::StrCat(kIdentityHeader, "\n", encoded, "\n");
    absl::Status created = CreatePrivateFile(path, file);
    Wipe(encoded);
    Wipe(file);
    if (created.ok()) return identity;
    if (!absl::IsAlreadyExists(created)) return created;
  }
  return absl::UnavailableError(
      absl::StrCat(path, " appears and disappears; cannot load an identity"));
}

Identity Identity::Generate() {
  EnsureSodium();
  Identity identity;
  crypto_sign_keypair(identity.public_key_.bytes.data(),
                      identity.secret_key_.data());
  return identity;
}

Identity::Identity(Identity&& other) noexcept
    : secret_key_(other.secret_key_), public_key_(other.public_key_) {
  sodium_memzero(other.secret_key_.data(), other.secret_key_.size());
}

Identity& Identity::operator=(Identity&& other) noexcept {
  if (this != &other) {
    secret_key_ = other.secret_key_;
    public_key_ = other.public_key_;
    sodium_memzero(other.secret_key_.data(), other.secret_key_.size());
  }
  return *this;
}

Identity::~Identity() {
  sodium_memzero(secret_key_.data(), secret_key_.size());
}

std::string Identity::Sign(absl::string_view message) const {
  EnsureSodium();
  std::string signature(crypto_sign_BYTES, '\0');
  crypto_sign_detached(U8(signature), nullptr, U8(message), message.size(),
                       secret_key_.data());
  return signature;
}

// Registration proofs.

std::string RegistrationProofMessage(absl::string_view name,
                                     absl::string_view address,
                                     absl::string_view challenge,
                                     const PublicKey& key) {
  std::string out(kRegisterDomain.data(), kRegisterDomain.size());
  AppendField(out, name);
  AppendField(out, address);
  AppendField(out, challenge);
  AppendField(out, key.Bytes());
  return out;
}

bool VerifyRegistrationProof(absl::string_view name, absl::string_view address,
                             absl::string_view challenge, const PublicKey& key,
                             absl::string_view signature) {
  return VerifySignature(
      key, RegistrationProofMessage(name, address, challenge, key), signature);
}

std::string TimedRegistrationProofMessage(absl::string_view name,
                                          absl::string_view address,
                                          const PublicKey& key,
                                          int64_t proof_unix_ms) {
  std::string out(kTimedRegisterDomain.data(), kTimedRegisterDomain.size());
  AppendField(out, name);
  AppendField(out, address);
  AppendField(out, key.Bytes());
  const auto t = static_cast<uint64_t>(proof_unix_ms);
  std::string time(8, '\0');
  for (int i = 0; i < 8; ++i) {
    time[static_cast<size_t>(i)] =
        static_cast<char>((t >> (56 - 8 * i)) & 0xff);
  }
  AppendField(out, time);
  return out;
}

bool VerifyTimedRegistrationProof(absl::string_view name,
                                  absl::string_view address,
                                  const PublicKey& key, int64_t proof_unix_ms,
                                  absl::string_view signature) {
  return VerifySignature(
      key, TimedRegistrationProofMessage(name, address, key, proof_unix_ms),
      signature);
}

// PairCipher.

PairCipher::SharedKey::SharedKey() : bytes{} {}
PairCipher::SharedKey::SharedKey(const SharedKey& other) : bytes(other.bytes) {}
PairCipher::SharedKey& PairCipher::SharedKey::operator=(
    const SharedKey& other) {
  bytes = other.bytes;
  return *this;
}
PairCipher::SharedKey::~SharedKey() {
  sodium_memzero(bytes.data(), bytes.size());
}

PairCipher::PairCipher(const Identity& identity, size_t max_peers)
    : generation_size_(std::max<size_t>(1, max_peers / 2)) {
  EnsureSodium();
  // Cannot fail for a secret key libsodium made: it hashes the seed.
  crypto_sign_ed25519_sk_to_curve25519(x25519_secret_.data(),
                                       identity.secret_key_.data());
}

PairCipher::~PairCipher() {
  sodium_memzero(x25519_secret_.data(), x25519_secret_.size());
  // The cached keys wipe themselves (SharedKey's destructor).
}

size_t PairCipher::cached_peers() const {
  absl::MutexLock lock(&mu_);
  return recent_.size() + older_.size();
}

void PairCipher::MakeRoom() {
  if (recent_.size() < generation_size_) return;
  older_ = std::move(recent_);  // The old older_ is destroyed, so wiped.
  recent_.clear();
}

absl::Status PairCipher::SharedKeyWith(const PublicKey& peer, SharedKey& key) {
  {
    absl::MutexLock lock(&mu_);
    auto it = recent_.find(peer);
    if (it != recent_.end()) {
      key = it->second;
      return absl::OkStatus();
    }
    auto old = older_.find(peer);
    if (old != older_.end()) {
      key = old->second;
      older_.erase(old);
      MakeRoom();
      recent_.emplace(peer, key);
      return absl::OkStatus();
    }
  }
  // One scalar multiplication, outside the lock so that the other peers'
  // messages do not wait for it. Two threads may both compute the key of a
  // new peer; the second insert is then a no-op.
  std::array<uint8_t, 32> peer_x25519;
  if (crypto_sign_ed25519_pk_to_curve25519(peer_x25519.data(),
                                           peer.bytes.data()) != 0) {
    return absl::InvalidArgumentError(
        "public key is not a valid Ed25519 key (not a point, or of low "
        "order)");
  }
  if (crypto_box_beforenm(key.bytes.data(), peer_x25519.data(),
                          x25519_secret_.data()) != 0) {
    return absl::InvalidArgumentError(
        "public key is not a valid Ed25519 key (its shared key is zero)");
  }
  absl::MutexLock lock(&mu_);
  if (!recent_.contains(peer)) {
    MakeRoom();
    recent_.emplace(peer, key);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PairCipher::Seal(const PublicKey& recipient,
                                             absl::string_view plaintext) {
  SharedKey key;
  absl::Status found = SharedKeyWith(recipient, key);
  if (!found.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("recipient's ", found.message()));
  }
  std::string sealed(kSealOverheadBytes + plaintext.size(), '\0');
  unsigned char* nonce = U8(sealed);
  randombytes_buf(nonce, crypto_box_NONCEBYTES);
  crypto_box_easy_afternm(nonce + crypto_box_NONCEBYTES, U8(plaintext),
                          plaintext.size(), nonce, key.bytes.data());
  return sealed;
}

absl::StatusOr<std::string> PairCipher::Open(const PublicKey& sender,
                                             absl::string_view sealed) {
  if (sealed.size() < kSealOverheadBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sealed message is ", sealed.size(), " bytes, shorter than the ",
        kSealOverheadBytes, " bytes of nonce and authenticator"));
  }
  SharedKey key;
  absl::Status found = SharedKeyWith(sender, key);
  if (!found.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sender's ", found.message()));
  }
  const unsigned char* nonce = U8(sealed);
  std::string plaintext(sealed.size() - kSealOverheadBytes, '\0');
  if (crypto_box_open_easy_afternm(U8(plaintext), nonce + crypto_box_NONCEBYTES,
                                   sealed.size() - crypto_box_NONCEBYTES, nonce,
                                   key.bytes.data()) != 0) {
    return absl::UnauthenticatedError(
        "sealed message fails its check: not sealed by the sender's key for "
        "ours, or changed on the way");
  }
  return plaintext;
}

absl::StatusOr<std::string> PairCipher::Mac(const PublicKey& peer,
                                            absl::string_view message) {
  SharedKey key;
  absl::Status found = SharedKeyWith(peer, key);
  if (!found.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("peer's ", found.message()));
  }
  // A key of its own for MACs, so the crypto_box key is used for nothing
  // but crypto_box.
  static constexpr char kMacKeyLabel[] = "chat-pair-mac-v1";
  SharedKey mac_key;
  crypto_generichash(mac_key.bytes.data(), mac_key.bytes.size(),
                     reinterpret_cast<const unsigned char*>(kMacKeyLabel),
                     sizeof(kMacKeyLabel) - 1, key.bytes.data(),
                     key.bytes.size());
  std::string mac(kPairMacBytes, '\0');
  crypto_generichash(U8(mac), mac.size(), U8(message), message.size(),
                     mac_key.bytes.data(), mac_key.bytes.size());
  return mac;
}

bool PairCipher::VerifyMac(const PublicKey& peer, absl::string_view message,
                           absl::string_view mac) {
  static_assert(kPairMacBytes == 32);  // crypto_verify_32.
  if (mac.size() != kPairMacBytes) return false;
  absl::StatusOr<std::string> expected = Mac(peer, message);
  if (!expected.ok()) return false;
  return crypto_verify_32(U8(*expected), U8(mac)) == 0;
}

}  // namespace chat
