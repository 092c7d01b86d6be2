#include "peer/online_set.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "registry/names.h"

namespace chat::peer {

using registry::Entry;

void OnlineSet::BeginSnapshot() {
  absl::MutexLock lock(&mu_);
  ++generation_;
}

bool OnlineSet::Put(const Entry& entry) {
  absl::MutexLock lock(&mu_);
  auto it = online_.find(absl::string_view(entry.name));
  if (it == online_.end()) {
    online_.emplace(entry, generation_);
    return true;
  }
  if (it->name() == entry.name && it->address() == entry.address &&
      it->is_static() == entry.is_static &&
      it->services() == registry::JoinServices(entry.services)) {
    it->generation = generation_;
    return false;
  }
  // Another address, or registered again with other capitals: keep it as it
  // is now.
  const bool news = it->address() != entry.address;
  online_.erase(it);
  online_.emplace(entry, generation_);
  return news;
}

void OnlineSet::Remove(const std::string& name) {
  absl::MutexLock lock(&mu_);
  online_.erase(absl::string_view(name));
}

std::vector<Entry> OnlineSet::EndSnapshot() {
  std::vector<Entry> gone;
  absl::MutexLock lock(&mu_);
  for (auto it = online_.begin(); it != online_.end();) {
    if (it->generation == generation_) {
      ++it;
      continue;
    }
    gone.push_back(it->ToEntry());
    online_.erase(it++);
  }
  synced_ = true;
  return gone;
}

std::optional<Entry> OnlineSet::Find(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = online_.find(absl::string_view(name));
  if (it == online_.end()) return std::nullopt;
  return it->ToEntry();
}

bool OnlineSet::IsStatic(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = online_.find(absl::string_view(name));
  return it != online_.end() && it->is_static();
}

std::vector<Entry> OnlineSet::Entries() const {
  std::vector<Entry> entries;
  {
    absl::MutexLock lock(&mu_);
    entries.reserve(online_.size());
    for (const OnlinePeer& online : online_) {
      entries.push_back(online.ToEntry());
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return entries;
}

std::vector<std::string> OnlineSet::Names() const {
  std::vector<std::string> names;
  {
    absl::MutexLock lock(&mu_);
    names.reserve(online_.size());
    for (const OnlinePeer& online : online_) {
      names.push_back(std::string(online.name()));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool OnlineSet::WaitUntilOnline(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto done = [this, &name]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_waiting_ || online_.contains(name);
  };
  // Not a wait for time: for the name, or the end.
  mu_.Await(absl::Condition(&done));
  return online_.contains(name);
}

void OnlineSet::StopWaiting() {
  absl::MutexLock lock(&mu_);
  stop_waiting_ = true;
}

bool OnlineSet::WaitUntilSynced(const Clock& clock, Millis timeout) {
  absl::MutexLock lock(&mu_);
  return clock.AwaitFor(&mu_, absl::Condition(&synced_), timeout);
}

OnlineSet::OnlinePeer::OnlinePeer(const Entry& entry, uint32_t generation_in)
    : generation(generation_in), is_static_(entry.is_static) {
  const std::string services = registry::JoinServices(entry.services);
  text_.reset(
      new char[entry.name.size() + entry.address.size() + services.size() + 3]);
  char* end = std::copy(entry.name.begin(), entry.name.end(), text_.get());
  *end++ = '\0';
  end = std::copy(entry.address.begin(), entry.address.end(), end);
  *end++ = '\0';
  end = std::copy(services.begin(), services.end(), end);
  *end = '\0';
}

// gcc 12 at -O3 sees the strlen below through the constructor's new[] and
// warns it may read past a buffer of size 0 (-Wstringop-overread); the
// buffer always holds both strings and their terminators. A false positive,
// silenced here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overread"
#endif
absl::string_view OnlineSet::OnlinePeer::name() const {
  return absl::string_view(text_.get());
}

absl::string_view OnlineSet::OnlinePeer::address() const {
  return absl::string_view(text_.get() + name().size() + 1);
}

absl::string_view OnlineSet::OnlinePeer::services() const {
  return absl::string_view(text_.get() + name().size() + address().size() + 2);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

Entry OnlineSet::OnlinePeer::ToEntry() const {
  Entry entry;
  entry.name = std::string(name());
  entry.address = std::string(address());
  entry.is_static = is_static();
  entry.services = registry::SplitServices(std::string(services()));
  return entry;
}

size_t OnlineSet::NameKeyHash::operator()(absl::string_view name) const {
  // Valid names are at most 64 characters: fold them without allocating.
  char folded[64];
  if (name.size() > sizeof(folded)) {
    return absl::Hash<std::string>()(registry::NameKey(std::string(name)));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    folded[i] = absl::ascii_tolower(static_cast<unsigned char>(name[i]));
  }
  return absl::Hash<absl::string_view>()(
      absl::string_view(folded, name.size()));
}

}  // namespace chat::peer
