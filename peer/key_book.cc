#include "peer/key_book.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "peer/plain_words.h"
#include "peer/transport.h"
#include "registry/client/registry_client.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

using registry::NameKey;

constexpr size_t kNoKeyKept = 4096;
// Keys listed for names not pinned: only a saved round trip each (a name
// forgotten is asked for again when first met), so a full cache is simply
// dropped. Above the names a peer follows (1,000 by default).
constexpr size_t kListedKept = 4096;

std::string Short(const std::optional<PublicKey>& key) {
  return key.has_value() ? absl::StrCat(ShortFingerprint(*key), "\u2026")
                         : "no key";
}

}  // namespace

KeyBook::KeyBook(PinStore* store, std::vector<Pin> pins, Options options,
                 const Clock& clock)
    : store_(store), options_(std::move(options)), clock_(clock) {
  absl::MutexLock lock(&mu_);
  for (Pin& pin : pins) {
    Known known;
    known.name = std::move(pin.name);
    known.pinned = pin.key;
    pins_[NameKey(known.name)] = std::move(known);
  }
}

std::string KeyBook::ChangedText(const std::string& name,
                                 const std::optional<PublicKey>& was,
                                 const std::optional<PublicKey>& now) {
  return absl::StrCat(name, "'s key changed (was ", Short(was), ", now ",
                      Short(now), "): check with ", name, ", then /trust ",
                      name);
}

absl::StatusOr<std::optional<PublicKey>> KeyBook::KeyFor(
    const std::string& name, bool may_ask) {
  std::optional<std::optional<PublicKey>> listed;
  const std::string key = NameKey(name);
  {
    absl::MutexLock lock(&mu_);
    auto it = pins_.find(key);
    if (it != pins_.end()) {
      if (it->second.changed) {
        return absl::UnavailableError(
            ChangedText(name, it->second.pinned, it->second.listed));
      }
      return std::optional<PublicKey>(it->second.pinned);
    }
    auto seen = listed_.find(key);
    if (seen != listed_.end()) listed = seen->second;
    auto none = no_key_.find(key);
    if (none != no_key_.end()) {
      if (none->second > clock_.Wall()) return std::optional<PublicKey>();
      no_key_.erase(none);
    }
  }
  // A lab peer's name ("Davide De Rosa") can never be bound to a key.
  if (!registry::ValidateName(name).ok() || options_.is_static(name)) {
    return std::optional<PublicKey>();
  }
  if (!listed.has_value() && !may_ask) {
    return absl::UnavailableError(
        absl::StrCat(name, "'s key is not known here yet; try again"));
  }
  absl::StatusOr<std::optional<PublicKey>> bound =
      listed.has_value() ? absl::StatusOr<std::optional<PublicKey>>(*listed)
                         : options_.directory(name);
  if (!bound.ok()) {
    // One short reason for the sender's notice; the gRPC text as detail.
    if (registry::IsUnreachable(bound.status())) {
      return WithDetail(absl::UnavailableError(kRegistryUnreachable),
                        bound.status().ToString());
    }
    return WithDetail(absl::UnavailableError(
                          absl::StrCat("cannot look up ", name, "'s key now")),
                      bound.status().ToString());
  }
  if (!bound->has_value()) {
    absl::MutexLock lock(&mu_);
    if (no_key_.size() >= kNoKeyKept) no_key_.clear();
    no_key_[key] = clock_.Wall() + absl::FromChrono(options_.no_key_ttl);
    return std::optional<PublicKey>();
  }
  if (absl::Status pinned = PinKey(name, **bound); !pinned.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot pin ", name, "'s key now: ", pinned.message()));
  }
  // Another thread may have pinned something else meanwhile: ask again.
  absl::MutexLock lock(&mu_);
  const Known& known = pins_.at(key);
  if (known.changed) {
    return absl::UnavailableError(
        ChangedText(name, known.pinned, known.listed));
  }
  return std::optional<PublicKey>(known.pinned);
}

bool KeyBook::IsPinned(const std::string& name) {
  const std::string key = NameKey(name);
  absl::MutexLock lock(&mu_);
  return pins_.contains(key);
}

std::vector<std::string> KeyBook::PinnedNames() {
  std::vector<std::string> names;
  absl::MutexLock lock(&mu_);
  names.reserve(pins_.size());
  for (const auto& [key, known] : pins_) names.push_back(known.name);
  return names;
}

bool KeyBook::WouldAsk(const std::string& name) {
  const std::string key = NameKey(name);
  {
    absl::MutexLock lock(&mu_);
    if (pins_.contains(key) || listed_.contains(key)) return false;
    auto none = no_key_.find(key);
    if (none != no_key_.end() && none->second > clock_.Wall()) return false;
  }
  return registry::ValidateName(name).ok() && !options_.is_static(name);
}

absl::Status KeyBook::PinKey(const std::string& name, const PublicKey& key) {
  const std::string name_key = NameKey(name);
  {
    absl::MutexLock lock(&mu_);
    auto it = pins_.find(name_key);
    if (it != pins_.end() && it->second.pinned == key && !it->second.changed) {
      return absl::OkStatus();
    }
  }
  // Durable before it counts: a pin forgotten by a crash would be
  // re-learned from whatever the registry says then.
  if (absl::Status saved = store_->SavePin(name, key); !saved.ok()) {
    return saved;
  }
  absl::MutexLock lock(&mu_);
  Known& known = pins_[name_key];
  known.name = name;
  known.pinned = key;
  known.changed = false;
  known.listed.reset();
  no_key_.erase(name_key);
  listed_.erase(name_key);
  return absl::OkStatus();
}

void KeyBook::Listed(const std::string& name,
                     const std::optional<PublicKey>& key) {
  std::string text;
  {
    absl::MutexLock lock(&mu_);
    const std::string name_key = NameKey(name);
    auto it = pins_.find(name_key);
    if (it == pins_.end()) {
      // Not met yet: pinned when first met, without a round trip.
      if (listed_.size() >= kListedKept && !listed_.contains(name_key)) {
        listed_.clear();
      }
      listed_[name_key] = key;
      if (key.has_value()) no_key_.erase(name_key);
      return;
    }
    Known& known = it->second;
    if (key.has_value() && *key == known.pinned) {
      known.changed = false;  // Back to the key we trust.
      known.listed.reset();
      return;
    }
    if (known.changed && known.listed == key) return;  // Told already.
    known.changed = true;
    known.listed = key;
    text = ChangedText(known.name, known.pinned, key);
  }
  if (options_.events != nullptr) options_.events->OnEvent(ErrorEvent(text));
}

KeyView KeyBook::Verify(const std::string& name) {
  KeyView view;
  {
    absl::MutexLock lock(&mu_);
    auto it = pins_.find(NameKey(name));
    if (it != pins_.end()) view.pinned = it->second.pinned;
  }
  if (registry::ValidateName(name).ok() && !options_.is_static(name)) {
    absl::StatusOr<std::optional<PublicKey>> bound = options_.directory(name);
    if (bound.ok()) {
      view.listed = *bound;
      // What /verify learns counts like any other listing.
      if (view.pinned.has_value()) Listed(name, *bound);
    }
  } else {
    view.listed = std::optional<PublicKey>();
  }
  absl::MutexLock lock(&mu_);
  auto it = pins_.find(NameKey(name));
  if (it != pins_.end()) view.changed = it->second.changed;
  return view;
}

absl::StatusOr<KeyView> KeyBook::Trust(const std::string& name) {
  CHAT_RETURN_IF_ERROR(registry::ValidateName(name));
  absl::StatusOr<std::optional<PublicKey>> bound = options_.directory(name);
  if (!bound.ok()) {
    return WithDetail(
        absl::UnavailableError(RegistryFailureText(
            bound.status(), absl::StrCat("look up ", name, "'s key"))),
        bound.status().ToString());
  }
  if (!bound->has_value()) {
    bool had_pin;
    {
      absl::MutexLock lock(&mu_);
      had_pin = pins_.contains(NameKey(name));
    }
    if (!had_pin) {
      return absl::NotFoundError(
          absl::StrCat(name, " has no key in the registry"));
    }
    // The name is bound to no key now (released, or a static entry): its
    // messages come plain, shown as unverified.
    CHAT_RETURN_IF_ERROR(store_->SavePin(name, std::nullopt));
    absl::MutexLock lock(&mu_);
    pins_.erase(NameKey(name));
    return KeyView{std::nullopt, std::optional<PublicKey>(), false};
  }
  CHAT_RETURN_IF_ERROR(PinKey(name, **bound));
  return KeyView{**bound, *bound, false};
}

}  // namespace chat::peer
