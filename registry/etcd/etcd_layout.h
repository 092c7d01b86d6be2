// Where the registry's etcd backend keeps what (docs/cluster.md, "Key
// layout"): the keys, the lease ids clients get, and the values' encoding.
// Pure functions; no etcd call.

#ifndef CHAT_REGISTRY_ETCD_ETCD_LAYOUT_H_
#define CHAT_REGISTRY_ETCD_ETCD_LAYOUT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "registry/store/store_rules.h"

namespace chat::registry::etcd {

// A deployment's prefix (--etcd-prefix, "/chat/v1/") holds three subtrees
// that do not nest: the store's (names, bindings and what goes with them:
// what its one Watch and its snapshot read, kept small), the mailbox's
// (up to hundreds of MiB of payloads, which the store must never read) and
// the group store's (every version of every group: etcd_group_store.h).
// `prefix` gets a trailing '/' if it has none.
std::string StoreRoot(std::string prefix);    // <prefix>registry/
std::string MailboxRoot(std::string prefix);  // <prefix>mailbox/
std::string GroupsRoot(std::string prefix);   // <prefix>groups/

// The keys of the store, all under `root` (StoreRoot() of the deployment).
// Thread-safe (immutable).
class EtcdLayout {
 public:
  // `root` gets a trailing '/' if it has none ("/chat/v1" -> "/chat/v1/").
  explicit EtcdLayout(std::string root = "/chat/v1/");

  const std::string& root() const { return root_; }

  // names/<NameKey(name)>: the live entry.
  std::string Name(const std::string& name) const;
  std::string NamesPrefix() const { return root_ + "names/"; }
  // bindings/<NameKey(name)>.
  std::string Binding(const std::string& name) const;
  std::string BindingsPrefix() const { return root_ + "bindings/"; }
  // owners/<hex(owner)>/<NameKey(name)>: one key per name an owner
  // (NameOwner()) holds; hex, because an owner is bytes and may hold '/'.
  std::string Owner(const std::string& owner, const std::string& name) const;
  std::string OwnerPrefix(const std::string& owner) const;
  // owner_rev/<hex(owner)>: bumped by every registration of that owner.
  std::string OwnerRev(const std::string& owner) const;
  // statics/<NameKey(name)> and the key bumped when one is added.
  std::string Static(const std::string& name) const;
  std::string StaticsPrefix() const { return root_ + "statics/"; }
  std::string StaticRev() const { return root_ + "static_rev"; }
  // ends/<NameKey(name)>: why the last lease of a name ended.
  std::string End(const std::string& name) const;
  std::string AdminTokenHash() const { return root_ + "admin/token_hash"; }

  // What a key under root() is about; for the watch that feeds the index.
  struct Parsed {
    enum class Kind { kName, kBinding, kOther };
    Kind kind = Kind::kOther;
    std::string name_key;  // kName, kBinding: the lowercased name.
  };
  Parsed Parse(const std::string& key) const;

 private:
  std::string root_;
};

// The lease id a client gets: "<etcd lease, 16 hex digits>.<secret>". Any
// registry finds the etcd lease in it; the secret proves the holder.
std::string MakeLeaseId(int64_t etcd_lease, const std::string& secret);
struct ParsedLeaseId {
  int64_t etcd_lease = 0;
  std::string secret;
};
// kInvalidArgument unless `lease_id` has MakeLeaseId()'s shape.
absl::StatusOr<ParsedLeaseId> ParseLeaseId(const std::string& lease_id);

// A Record as names/<name> holds it. `record.lease_id` must be empty (a
// static entry) or MakeLeaseId()'s shape; expires_at and expiry_reported
// are memory only and not stored.
std::string EncodeName(const Record& record);
// The Record back, its lease id remade from `etcd_lease` (the key's lease)
// and the stored secret; expires_at left unset (the index sets it).
// kDataLoss when `value` is not a NameValue or holds a bad key.
absl::StatusOr<Record> DecodeName(const std::string& value, int64_t etcd_lease);

// A binding as bindings/<name> holds it: online under `online_lease` (not
// 0) while a lease holds the name (binding.reserved_until is then
// InfiniteFuture), else reserved until binding.reserved_until; with its
// last proof time (binding.last_proof_unix_ms) either way.
std::string EncodeBinding(const BindingRecord& binding, int64_t online_lease);
struct DecodedBinding {
  BindingRecord binding;
  int64_t online_lease = 0;
};
// kDataLoss when `value` is not a BindingValue or holds a bad key.
absl::StatusOr<DecodedBinding> DecodeBinding(const std::string& value);

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_ETCD_LAYOUT_H_
