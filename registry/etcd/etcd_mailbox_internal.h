// Private to the etcd Mailbox (etcd_mailbox.h): the key layout and the
// item codec of its mail, and MailWrite, the write that counts every item
// against the limits as it adds or removes it. Only etcd_mailbox.cc,
// etcd_mailbox_records.cc and etcd_mailbox_write.cc include it; nothing here
// is an interface, and anything may change with them.
//
// Thread-compatible: a MailLayout is immutable; a MailWrite belongs to the
// one call that decides it.

#ifndef CHAT_REGISTRY_ETCD_ETCD_MAILBOX_INTERNAL_H_
#define CHAT_REGISTRY_ETCD_ETCD_MAILBOX_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd/mail_records.pb.h"
#include "registry/mailbox/mailbox.h"

namespace chat::registry::etcd::mailbox_internal {

// 16 hex digits, so keys sort by number.
std::string Hex16(uint64_t n);

// The number Hex16() wrote; nullopt for anything else.
std::optional<uint64_t> ParseHex16(absl::string_view text);

// Unix ms as 16 hex digits that sort as the times do, negative ones too.
std::string TimeKey(int64_t unix_ms);

// The mail keys under a deployment's root (docs/cluster.md, "Key layout").
// Recipients are NameKey()s (letters, digits, '.', '_', '-': never '/');
// ids, digests and origins are bytes, so they go in hex.
class MailLayout {
 public:
  explicit MailLayout(std::string root) : root_(std::move(root)) {}

  // mail/<recipient>/<seq>: the item.
  std::string ItemsPrefix() const { return root_ + "mail/"; }
  std::string RecipientItems(const std::string& key) const {
    return absl::StrCat(ItemsPrefix(), key, "/");
  }
  std::string Item(const std::string& key, int64_t seq) const {
    return RecipientItems(key) + Hex16(static_cast<uint64_t>(seq));
  }
  // mail_ids/<recipient>/<hex id>/<hex digest>: the item's seq.
  std::string IdPrefix(const std::string& key, const std::string& id) const {
    return absl::StrCat(root_, "mail_ids/", key, "/",
                        absl::BytesToHexString(id), "/");
  }
  std::string Id(const std::string& key, const std::string& id,
                 const std::string& digest) const {
    return IdPrefix(key, id) + absl::BytesToHexString(digest);
  }
  // mail_age/<time>/<recipient>/<seq>: empty; what ExpireOld() ranges over.
  std::string AgePrefix() const { return root_ + "mail_age/"; }
  std::string AgeBefore(int64_t unix_ms) const {
    return AgePrefix() + TimeKey(unix_ms);
  }
  std::string Age(int64_t unix_ms, const std::string& key, int64_t seq) const {
    return absl::StrCat(AgePrefix(), TimeKey(unix_ms), "/", key, "/",
                        Hex16(static_cast<uint64_t>(seq)));
  }
  // mail_meta/<recipient>, mail_sender/<hex origin>, mail_total.
  std::string Meta(const std::string& key) const {
    return absl::StrCat(root_, "mail_meta/", key);
  }
  std::string Sender(const std::string& origin) const {
    return absl::StrCat(root_, "mail_sender/", absl::BytesToHexString(origin));
  }
  std::string Total() const { return root_ + "mail_total"; }

  // The recipient of mail/<recipient>/<seq>; nullopt for another key.
  std::optional<std::string> RecipientOfItem(const std::string& item) const {
    if (!absl::StartsWith(item, ItemsPrefix())) return std::nullopt;
    absl::string_view rest =
        absl::string_view(item).substr(ItemsPrefix().size());
    const size_t slash = rest.find('/');
    if (slash == absl::string_view::npos || slash == 0) return std::nullopt;
    return std::string(rest.substr(0, slash));
  }
  // The seq of mail/<recipient>/<seq>.
  std::optional<int64_t> SeqOfItem(const std::string& item) const {
    const size_t slash = item.rfind('/');
    if (slash == std::string::npos) return std::nullopt;
    std::optional<uint64_t> seq =
        ParseHex16(absl::string_view(item).substr(slash + 1));
    if (!seq.has_value()) return std::nullopt;
    return static_cast<int64_t>(*seq);
  }
  // The item key a mail_age key points at.
  std::optional<std::string> ItemOfAge(const std::string& age) const {
    if (!absl::StartsWith(age, AgePrefix())) return std::nullopt;
    std::vector<std::string> parts =
        absl::StrSplit(absl::string_view(age).substr(AgePrefix().size()), '/');
    if (parts.size() != 3 || parts[1].empty()) return std::nullopt;
    std::optional<uint64_t> seq = ParseHex16(parts[2]);
    if (!seq.has_value()) return std::nullopt;
    return Item(parts[1], static_cast<int64_t>(*seq));
  }

 private:
  const std::string root_;
};

// One item as mail/<recipient>/<seq> holds it, with where it is.
struct StoredItem {
  MailItem item;
  std::string recipient_key;
};

// The item at `kv` (a mail/<recipient>/<seq> key); kDataLoss when the key
// or the value does not decode.
absl::StatusOr<StoredItem> DecodeItem(const MailLayout& layout,
                                      const KeyValue& kv);

// The value of mail/<recipient>/<seq> for `item` (its seq is in the key).
std::string EncodeItem(const MailItem& item);

// Reads `keys` (each one key, or one prefix when it ends in '/') in
// read-only transactions of at most kReadsPerTxn gets: one revision when
// they fit in one. Returns the keys found, by key.
absl::StatusOr<std::map<std::string, KeyValue>> ReadKeys(
    EtcdClient& client, const std::vector<std::string>& keys);

// A write being decided: the keys it read (with the revisions its
// transaction compares), the counters as the write leaves them, and the
// operations that get them there. The limits are checked on the counters as
// they stand after every earlier step of the same write, so one transaction
// that removes and adds items decides as the SQLite mailbox does, item by
// item.
class MailWrite {
 public:
  MailWrite(const MailLayout& layout, const MailboxLimits& limits,
            absl::Time now)
      : layout_(layout), limits_(limits), now_(now) {}

  // Reads the keys of `keys` not read yet (whole keys, no prefixes), at
  // one revision when they fit in one read. With `compare`, the
  // transaction will hold only if none of them changed meanwhile.
  absl::Status Read(EtcdClient& client, const std::vector<std::string>& keys,
                    bool compare = true);

  // What was read at `key` (nullopt: absent, or not read).
  const std::optional<KeyValue>& Got(const std::string& key) const;
  // The keys Insert(item) needs read first.
  std::vector<std::string> KeysToInsert(const MailItem& item) const;
  // The keys Remove(stored) needs read first.
  std::vector<std::string> KeysToRemove(const StoredItem& stored) const;

  // Adds `item` (validated) unless one of the same recipient, id and
  // payload waits (then OK: a copy needs no room); kResourceExhausted
  // (CheckMailLimits) when it does not fit. KeysToInsert() must be read.
  absl::Status Insert(MailItem item);

  // Removes `stored` (read, as it is now) and what it counts. KeysToRemove()
  // must be read.
  void Remove(const StoredItem& stored);

  // Deletes a key that is no longer needed (a mail_age key whose item is
  // gone).
  void Delete(const std::string& key);

  bool empty() const { return ops_.empty(); }
  size_t removed() const { return removed_; }
  // The recipients this write adds items for.
  const absl::flat_hash_set<std::string>& arrivals() const { return arrivals_; }

  // The transaction: every key read with `compare` must be as it was read;
  // then the items' operations and the counters' new values.
  TxnRequest Build() const;

 private:
  // Whether an item with this id key waits, as this write leaves things.
  bool Holds(const std::string& id_key) const;

  void Put(const std::string& key, std::string value);

  template <typename Value>
  Value Decoded(const std::string& key) const;

  // The counters as this write leaves them so far. A write puts only
  // those it changed.
  v1::MailMetaValue Meta(const std::string& recipient_key) const;
  v1::MailUsageValue Sender(const std::string& origin) const;
  v1::MailTotalValue Total() const;

  const MailLayout& layout_;
  const MailboxLimits& limits_;
  const absl::Time now_;
  // Every key read (nullopt: absent; a prefix read is marked by its
  // prefix), and those the transaction compares.
  std::map<std::string, std::optional<KeyValue>> read_;
  absl::btree_set<std::string> compared_;
  // Items' puts and deletes, by key: a later step on the same key
  // replaces an earlier one (etcd refuses a key twice in one transaction).
  std::map<std::string, Op> ops_;
  std::map<std::string, v1::MailMetaValue> metas_;
  std::map<std::string, v1::MailUsageValue> senders_;
  std::optional<v1::MailTotalValue> total_;
  absl::flat_hash_set<std::string> arrivals_;
  size_t removed_ = 0;
};

}  // namespace chat::registry::etcd::mailbox_internal

#endif  // CHAT_REGISTRY_ETCD_ETCD_MAILBOX_INTERNAL_H_
