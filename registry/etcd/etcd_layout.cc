#include "registry/etcd/etcd_layout.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "registry/etcd/records.pb.h"
#include "registry/names.h"

namespace chat::registry::etcd {

namespace {

std::string WithSlash(std::string prefix) {
  if (prefix.empty() || prefix.back() != '/') prefix.push_back('/');
  return prefix;
}

}  // namespace

std::string StoreRoot(std::string prefix) {
  return WithSlash(std::move(prefix)) + "registry/";
}

std::string MailboxRoot(std::string prefix) {
  return WithSlash(std::move(prefix)) + "mailbox/";
}

std::string GroupsRoot(std::string prefix) {
  return WithSlash(std::move(prefix)) + "groups/";
}

EtcdLayout::EtcdLayout(std::string root) : root_(std::move(root)) {
  if (root_.empty() || root_.back() != '/') root_.push_back('/');
}

std::string EtcdLayout::Name(const std::string& name) const {
  return NamesPrefix() + NameKey(name);
}

std::string EtcdLayout::Binding(const std::string& name) const {
  return BindingsPrefix() + NameKey(name);
}

std::string EtcdLayout::Owner(const std::string& owner,
                              const std::string& name) const {
  return OwnerPrefix(owner) + NameKey(name);
}

std::string EtcdLayout::OwnerPrefix(const std::string& owner) const {
  return absl::StrCat(root_, "owners/", absl::BytesToHexString(owner), "/");
}

std::string EtcdLayout::OwnerRev(const std::string& owner) const {
  return absl::StrCat(root_, "owner_rev/", absl::BytesToHexString(owner));
}

std::string EtcdLayout::Static(const std::string& name) const {
  return StaticsPrefix() + NameKey(name);
}

std::string EtcdLayout::End(const std::string& name) const {
  return absl::StrCat(root_, "ends/", NameKey(name));
}

EtcdLayout::Parsed EtcdLayout::Parse(const std::string& key) const {
  Parsed parsed;
  const std::string names = NamesPrefix();
  const std::string bindings = BindingsPrefix();
  if (absl::StartsWith(key, names) && key.size() > names.size()) {
    parsed.kind = Parsed::Kind::kName;
    parsed.name_key = key.substr(names.size());
  } else if (absl::StartsWith(key, bindings) && key.size() > bindings.size()) {
    parsed.kind = Parsed::Kind::kBinding;
    parsed.name_key = key.substr(bindings.size());
  }
  return parsed;
}

std::string MakeLeaseId(int64_t etcd_lease, const std::string& secret) {
  return absl::StrFormat("%016x.%s", static_cast<uint64_t>(etcd_lease), secret);
}

absl::StatusOr<ParsedLeaseId> ParseLeaseId(const std::string& lease_id) {
  const size_t dot = lease_id.find('.');
  uint64_t lease = 0;
  if (dot != 16 || dot + 1 >= lease_id.size() ||
      !absl::SimpleHexAtoi(lease_id.substr(0, dot), &lease) || lease == 0) {
    return absl::InvalidArgumentError("not a lease id of this registry");
  }
  return ParsedLeaseId{static_cast<int64_t>(lease), lease_id.substr(dot + 1)};
}

std::string EncodeName(const Record& record) {
  v1::NameValue value;
  value.set_name(record.name);
  value.set_address(record.address);
  if (!record.lease_id.empty()) {
    auto parsed = ParseLeaseId(record.lease_id);
    value.set_lease_secret(parsed.ok() ? parsed->secret : record.lease_id);
  }
  if (record.public_key) value.set_public_key(record.public_key->Bytes());
  value.set_ttl_ms(record.ttl.count());
  value.set_services(record.services);
  value.set_client(record.client);
  value.set_is_static(record.is_static());
  return value.SerializeAsString();
}

absl::StatusOr<Record> DecodeName(const std::string& bytes,
                                  int64_t etcd_lease) {
  v1::NameValue value;
  if (!value.ParseFromString(bytes)) {
    return absl::DataLossError("a names/ value that is not a NameValue");
  }
  Record record;
  record.name = value.name();
  record.address = value.address();
  if (!value.is_static()) {
    record.lease_id = MakeLeaseId(etcd_lease, value.lease_secret());
  }
  if (!value.public_key().empty()) {
    auto key = PublicKey::FromBytes(value.public_key());
    if (!key.ok()) {
      return absl::DataLossError(
          absl::StrCat("names/", value.name(), ": ", key.status().message()));
    }
    record.public_key = *key;
  }
  record.ttl = Millis(value.ttl_ms());
  record.services = value.services();
  record.client = value.client();
  return record;
}

std::string EncodeBinding(const BindingRecord& binding, int64_t online_lease) {
  v1::BindingValue value;
  value.set_name(binding.name);
  value.set_public_key(binding.key.Bytes());
  value.set_online_lease(online_lease);
  if (online_lease == 0) {
    value.set_reserved_until_unix_ms(
        absl::ToUnixMillis(binding.reserved_until));
  }
  value.set_last_proof_unix_ms(binding.last_proof_unix_ms);
  return value.SerializeAsString();
}

absl::StatusOr<DecodedBinding> DecodeBinding(const std::string& bytes) {
  v1::BindingValue value;
  if (!value.ParseFromString(bytes)) {
    return absl::DataLossError("a bindings/ value that is not a BindingValue");
  }
  auto key = PublicKey::FromBytes(value.public_key());
  if (!key.ok()) {
    return absl::DataLossError(
        absl::StrCat("bindings/", value.name(), ": ", key.status().message()));
  }
  DecodedBinding decoded;
  decoded.binding.name = value.name();
  decoded.binding.key = *key;
  decoded.online_lease = value.online_lease();
  decoded.binding.reserved_until =
      value.online_lease() != 0
          ? absl::InfiniteFuture()
          : absl::FromUnixMillis(value.reserved_until_unix_ms());
  decoded.binding.last_proof_unix_ms = value.last_proof_unix_ms();
  return decoded;
}

}  // namespace chat::registry::etcd
