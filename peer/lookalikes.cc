#include "peer/lookalikes.h"

#include "registry/names.h"

namespace chat::peer {

LookalikeKey Lookalikes::KeyOf(const std::string& name) {
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(name);
    if (it != cache_.end()) return it->second;
  }
  LookalikeKey key = LookalikeKeyOf(name);  // ICU, outside the lock.
  absl::MutexLock lock(&mu_);
  if (cache_.size() >= kMaxCached) cache_.clear();
  cache_.emplace(name, key);
  return key;
}

std::string Lookalikes::Imitated(const std::string& name,
                                 const std::vector<std::string>& known) {
  const std::string name_key = registry::NameKey(name);
  LookalikeKey key;
  bool computed = false;
  for (const std::string& other : known) {
    if (registry::NameKey(other) == name_key) continue;  // It is that name.
    if (!computed) {
      // The sender's key is not cached: strangers' names come and go.
      key = LookalikeKeyOf(name);
      computed = true;
    }
    if (LookAlike(key, KeyOf(other))) return other;
  }
  return "";
}

}  // namespace chat::peer
