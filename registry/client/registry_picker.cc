#include "registry/client/registry_picker.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "registry/names.h"

namespace chat::registry {

absl::StatusOr<std::vector<std::string>> ParseRegistryAddresses(
    const std::string& flag) {
  std::vector<std::string> addresses;
  absl::flat_hash_set<std::string> seen;
  for (absl::string_view piece : absl::StrSplit(flag, ',')) {
    std::string address(absl::StripAsciiWhitespace(piece));
    if (address.empty()) {
      return absl::InvalidArgumentError(
          flag.empty() ? "no registry address (want host:port[,host:port...])"
                       : absl::StrCat("empty registry address in \"", flag,
                                      "\" (want host:port[,host:port...])"));
    }
    CHAT_RETURN_IF_ERROR(ValidateAddress(address));
    if (!seen.insert(address).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("registry address ", address, " is given twice"));
    }
    addresses.push_back(std::move(address));
  }
  return addresses;
}

std::vector<std::string> SplitRegistryAddresses(const std::string& flag) {
  std::vector<std::string> addresses;
  for (absl::string_view piece : absl::StrSplit(flag, ',')) {
    std::string address(absl::StripAsciiWhitespace(piece));
    if (!address.empty()) addresses.push_back(std::move(address));
  }
  if (addresses.empty()) addresses.push_back(flag);
  return addresses;
}

std::string JoinRegistryAddresses(const std::vector<std::string>& addresses) {
  return absl::StrJoin(addresses, ", ");
}

RegistryPicker::RegistryPicker(std::vector<std::string> addresses,
                               Millis cooldown)
    : addresses_(std::move(addresses)),
      cooldown_(cooldown),
      passed_over_until_(addresses_.size()) {}

bool RegistryPicker::PassedOver(size_t index, MonoTime now) const {
  return passed_over_until_[index].has_value() &&
         now < *passed_over_until_[index];
}

std::vector<size_t> RegistryPicker::Order(
    MonoTime now, const std::function<bool(size_t)>& connection_failing) const {
  const size_t n = addresses_.size();
  std::vector<size_t> order;
  std::vector<size_t> last;
  order.reserve(n);
  absl::MutexLock lock(&mu_);
  for (size_t step = 0; step < n; ++step) {
    const size_t index = (current_ + step) % n;
    const bool failing = connection_failing && connection_failing(index);
    (PassedOver(index, now) || failing ? last : order).push_back(index);
  }
  order.insert(order.end(), last.begin(), last.end());
  return order;
}

void RegistryPicker::Answered(size_t index) {
  absl::MutexLock lock(&mu_);
  current_ = index;
  passed_over_until_[index].reset();
  all_failed_ = false;
}

bool RegistryPicker::Failed(size_t index, MonoTime now) {
  absl::MutexLock lock(&mu_);
  passed_over_until_[index] = now + cooldown_;
  if (index != current_) return false;
  const size_t n = addresses_.size();
  for (size_t step = 1; step < n; ++step) {
    const size_t next = (index + step) % n;
    if (!PassedOver(next, now)) {
      current_ = next;
      return !all_failed_;
    }
  }
  current_ = (index + 1) % n;
  all_failed_ = n > 1;
  return false;
}

size_t RegistryPicker::current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

}  // namespace chat::registry
