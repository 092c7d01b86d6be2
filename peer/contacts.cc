#include "peer/contacts.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/limits.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

using registry::NameKey;

// How stale the time of the last talk may be in the store: it only ranks
// contacts for eviction, so a write per message would be waste.
constexpr int64_t kSaveEveryMs = 10 * 60 * 1000;

}  // namespace

Contacts::Contacts(ContactStore* store, std::vector<Contact> loaded,
                   Options options, const Clock& clock)
    : store_(store),
      options_(std::move(options)),
      own_key_(NameKey(options_.own_name)),
      clock_(clock) {
  // Chosen ones first, then the most recent: what a smaller limit keeps.
  std::stable_sort(loaded.begin(), loaded.end(),
                   [](const Contact& a, const Contact& b) {
                     return (a.state == Contact::State::kChosen) >
                            (b.state == Contact::State::kChosen);
                   });
  absl::MutexLock lock(&mu_);
  for (Contact& contact : loaded) {
    const std::string key = NameKey(contact.name);
    if (!registry::ValidateName(contact.name).ok() || key == own_key_ ||
        contacts_.contains(key)) {
      continue;
    }
    if (contacts_.size() >= options_.max_followed) {
      store_->ForgetContact(contact.name);
      continue;
    }
    Entry entry;
    entry.saved_ms = contact.last_unix_ms;
    entry.contact = std::move(contact);
    contacts_.emplace(key, std::move(entry));
  }
}

void Contacts::Talked(const std::string& name) {
  if (!registry::ValidateName(name).ok()) return;
  const std::string key = NameKey(name);
  if (key == own_key_) return;
  const int64_t now = absl::ToUnixMillis(clock_.Wall());
  absl::MutexLock lock(&mu_);
  auto it = contacts_.find(key);
  if (it != contacts_.end()) {
    Entry& entry = it->second;
    entry.contact.last_unix_ms = std::max(entry.contact.last_unix_ms, now);
    if (entry.contact.last_unix_ms - entry.saved_ms >= kSaveEveryMs) {
      SaveLocked(entry);
    }
    return;
  }
  if (!MakeRoomLocked()) return;  // Every contact was chosen.
  Entry& entry = contacts_[key];
  entry.contact.name = name;
  entry.contact.state = Contact::State::kTalked;
  entry.contact.last_unix_ms = now;
  SaveLocked(entry);
  ChangedLocked();
}

absl::Status Contacts::Follow(const std::string& name) {
  if (absl::Status valid = registry::ValidateName(name); !valid.ok()) {
    return valid;
  }
  const std::string key = NameKey(name);
  if (key == own_key_) {
    return absl::InvalidArgumentError("you cannot follow yourself");
  }
  const int64_t now = absl::ToUnixMillis(clock_.Wall());
  absl::MutexLock lock(&mu_);
  auto it = contacts_.find(key);
  bool changed = false;  // The followed set grows.
  if (it == contacts_.end()) {
    if (!MakeRoomLocked()) {
      return LimitError("too many names followed; /unfollow one first",
                        static_cast<int64_t>(options_.max_followed),
                        "max-follow");
    }
    it = contacts_.emplace(key, Entry()).first;
    it->second.contact.name = name;
    changed = true;
  } else if (it->second.contact.state == Contact::State::kUnfollowed) {
    changed = true;
  }
  Entry& entry = it->second;
  const bool promoted = entry.contact.state != Contact::State::kChosen;
  entry.contact.state = Contact::State::kChosen;
  entry.contact.last_unix_ms = std::max(entry.contact.last_unix_ms, now);
  if (promoted || entry.contact.last_unix_ms - entry.saved_ms >= kSaveEveryMs) {
    SaveLocked(entry);
  }
  if (changed) ChangedLocked();
  return absl::OkStatus();
}

bool Contacts::Unfollow(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = contacts_.find(NameKey(name));
  if (it == contacts_.end()) {
    // Remembered even so: talking with them later does not follow them.
    if (!registry::ValidateName(name).ok() || !MakeRoomLocked()) return false;
    it = contacts_.emplace(NameKey(name), Entry()).first;
    it->second.contact.name = name;
    it->second.contact.state = Contact::State::kUnfollowed;
    it->second.contact.last_unix_ms = absl::ToUnixMillis(clock_.Wall());
    SaveLocked(it->second);
    return false;
  }
  Entry& entry = it->second;
  if (entry.contact.state == Contact::State::kUnfollowed) return false;
  entry.contact.state = Contact::State::kUnfollowed;
  SaveLocked(entry);
  ChangedLocked();
  return true;
}

bool Contacts::Follows(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = contacts_.find(NameKey(name));
  return it != contacts_.end() &&
         it->second.contact.state != Contact::State::kUnfollowed;
}

bool Contacts::Knows(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  return contacts_.contains(NameKey(name));
}

std::vector<std::string> Contacts::Followed() const {
  std::vector<std::string> names;
  {
    absl::MutexLock lock(&mu_);
    names.reserve(contacts_.size());
    for (const auto& [key, entry] : contacts_) {
      if (entry.contact.state != Contact::State::kUnfollowed) {
        names.push_back(entry.contact.name);
      }
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

void Contacts::Listen(FollowedListener* listener) {
  absl::MutexLock lock(&mu_);
  listener_ = listener;
}

bool Contacts::MakeRoomLocked() {
  if (contacts_.size() < options_.max_followed) return true;
  // The one talked with least recently that was not chosen goes.
  auto oldest = contacts_.end();
  for (auto it = contacts_.begin(); it != contacts_.end(); ++it) {
    if (it->second.contact.state == Contact::State::kChosen) continue;
    if (oldest == contacts_.end() ||
        it->second.contact.last_unix_ms < oldest->second.contact.last_unix_ms) {
      oldest = it;
    }
  }
  if (oldest == contacts_.end()) return false;
  const bool was_followed =
      oldest->second.contact.state != Contact::State::kUnfollowed;
  store_->ForgetContact(oldest->second.contact.name);
  contacts_.erase(oldest);
  if (was_followed) ChangedLocked();
  return true;
}

void Contacts::ChangedLocked() {
  if (listener_ != nullptr) listener_->OnFollowedChanged();
}

void Contacts::SaveLocked(Entry& entry) {
  store_->SaveContact(entry.contact);
  entry.saved_ms = entry.contact.last_unix_ms;
}

}  // namespace chat::peer
