#include "registry/store/name_index.h"

#include "registry/names.h"

namespace chat::registry {

NameCounts IndexCounts::For(const std::string& owner) const {
  NameCounts counts;
  counts.static_names = static_names_;
  if (owner.empty()) return counts;
  if (auto it = owned_.find(owner); it != owned_.end()) {
    counts.owner_names = it->second;
  }
  return counts;
}

size_t IndexCounts::Offering(const std::string& service) const {
  auto it = offering_.find(service);
  return it == offering_.end() ? 0 : it->second;
}

void IndexCounts::Count(const Record& record, int delta) {
  std::vector<std::string> services = SplitServices(record.services);
  if (services.empty()) services.push_back(kChatService);
  for (std::string& service : services) {
    if (delta > 0) {
      ++offering_[std::move(service)];
    } else if (auto it = offering_.find(service);
               it != offering_.end() && --it->second == 0) {
      offering_.erase(it);
    }
  }
  if (record.is_static()) {
    static_names_ += static_cast<size_t>(delta);
    return;
  }
  std::string owner = NameOwner(record);
  if (owner.empty()) return;
  if (delta > 0) {
    ++owned_[std::move(owner)];
  } else if (auto it = owned_.find(owner);
             it != owned_.end() && --it->second == 0) {
    owned_.erase(it);
  }
}

}  // namespace chat::registry
