// The etcd Mailbox's MailWrite (etcd_mailbox_internal.h): the counters of a
// write, each item checked against the limits as the write's earlier steps
// leave them, and the transaction that compares what it read.

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/identity.h"
#include "common/status.h"
#include "registry/etcd/etcd_mailbox_internal.h"
#include "registry/etcd/mail_records.pb.h"
#include "registry/mailbox/mailbox_rules.h"
#include "registry/names.h"

namespace chat::registry::etcd::mailbox_internal {

absl::Status MailWrite::Read(EtcdClient& client,
                             const std::vector<std::string>& keys,
                             bool compare) {
  std::vector<std::string> missing;
  for (const std::string& key : keys) {
    if (read_.count(key) == 0 &&
        std::find(missing.begin(), missing.end(), key) == missing.end()) {
      missing.push_back(key);
    }
  }
  if (missing.empty()) return absl::OkStatus();
  absl::StatusOr<std::map<std::string, KeyValue>> found =
      ReadKeys(client, missing);
  if (!found.ok()) return found.status();
  for (const std::string& key : missing) {
    auto it = found->find(key);
    read_[key] =
        it == found->end() ? std::nullopt : std::optional<KeyValue>(it->second);
    if (compare) compared_.insert(key);
  }
  return absl::OkStatus();
}

const std::optional<KeyValue>& MailWrite::Got(const std::string& key) const {
  static const std::optional<KeyValue> kNone;
  auto it = read_.find(key);
  return it == read_.end() ? kNone : it->second;
}

std::vector<std::string> MailWrite::KeysToInsert(const MailItem& item) const {
  const std::string key = NameKey(item.recipient);
  std::vector<std::string> keys = {
      layout_.Meta(key), layout_.Total(),
      layout_.Id(key, item.id, ContentDigest(item.payload))};
  if (!item.origin.empty()) keys.push_back(layout_.Sender(item.origin));
  return keys;
}

std::vector<std::string> MailWrite::KeysToRemove(
    const StoredItem& stored) const {
  std::vector<std::string> keys = {layout_.Meta(stored.recipient_key),
                                   layout_.Total()};
  if (!stored.item.origin.empty()) {
    keys.push_back(layout_.Sender(stored.item.origin));
  }
  return keys;
}

absl::Status MailWrite::Insert(MailItem item) {
  const std::string key = NameKey(item.recipient);
  item.digest = ContentDigest(item.payload);
  const std::string id_key = layout_.Id(key, item.id, item.digest);
  if (Holds(id_key)) return absl::OkStatus();
  v1::MailMetaValue meta = Meta(key);
  std::optional<v1::MailUsageValue> sender;
  MailUsage sender_usage;
  if (!item.origin.empty()) {
    sender = Sender(item.origin);
    sender_usage = {static_cast<size_t>(sender->count()),
                    static_cast<size_t>(sender->bytes())};
  }
  v1::MailTotalValue total = Total();
  CHAT_RETURN_IF_ERROR(
      CheckMailLimits(item, limits_,
                      MailUsage{static_cast<size_t>(meta.count()),
                                static_cast<size_t>(meta.bytes())},
                      sender_usage, static_cast<size_t>(total.bytes())));
  const auto bytes = static_cast<int64_t>(item.payload.size());
  item.seq = std::max<int64_t>(meta.next_seq(), 1);
  item.deposited_at = now_;
  meta.set_next_seq(item.seq + 1);
  meta.set_count(meta.count() + 1);
  meta.set_bytes(meta.bytes() + bytes);
  if (item.kind == MailItem::Kind::kMessage) {
    meta.set_messages(meta.messages() + 1);
    meta.set_message_bytes(meta.message_bytes() + bytes);
  }
  metas_[layout_.Meta(key)] = meta;
  if (sender.has_value()) {
    sender->set_count(sender->count() + 1);
    sender->set_bytes(sender->bytes() + bytes);
    senders_[layout_.Sender(item.origin)] = *sender;
  }
  total.set_count(total.count() + 1);
  total.set_bytes(total.bytes() +
                  static_cast<int64_t>(ChargedBytes(item.payload.size())));
  total_ = total;
  v1::MailIdValue id_value;
  id_value.set_seq(item.seq);
  const int64_t unix_ms = absl::ToUnixMillis(item.deposited_at);
  Put(layout_.Item(key, item.seq), EncodeItem(item));
  Put(id_key, id_value.SerializeAsString());
  Put(layout_.Age(unix_ms, key, item.seq), "");
  arrivals_.insert(key);
  return absl::OkStatus();
}

void MailWrite::Remove(const StoredItem& stored) {
  const MailItem& item = stored.item;
  const std::string& key = stored.recipient_key;
  const auto bytes = static_cast<int64_t>(item.payload.size());
  v1::MailMetaValue meta = Meta(key);
  meta.set_count(std::max<int64_t>(meta.count() - 1, 0));
  meta.set_bytes(std::max<int64_t>(meta.bytes() - bytes, 0));
  if (item.kind == MailItem::Kind::kMessage) {
    meta.set_messages(std::max<int64_t>(meta.messages() - 1, 0));
    meta.set_message_bytes(std::max<int64_t>(meta.message_bytes() - bytes, 0));
  }
  metas_[layout_.Meta(key)] = meta;
  if (!item.origin.empty()) {
    v1::MailUsageValue sender = Sender(item.origin);
    sender.set_count(std::max<int64_t>(sender.count() - 1, 0));
    sender.set_bytes(std::max<int64_t>(sender.bytes() - bytes, 0));
    senders_[layout_.Sender(item.origin)] = sender;
  }
  v1::MailTotalValue total = Total();
  total.set_count(std::max<int64_t>(total.count() - 1, 0));
  total.set_bytes(std::max<int64_t>(
      total.bytes() - static_cast<int64_t>(ChargedBytes(item.payload.size())),
      0));
  total_ = total;
  Delete(layout_.Item(key, item.seq));
  Delete(layout_.Id(key, item.id, item.digest));
  Delete(layout_.Age(absl::ToUnixMillis(item.deposited_at), key, item.seq));
  ++removed_;
}

void MailWrite::Delete(const std::string& key) { ops_[key] = Op::Delete(key); }

TxnRequest MailWrite::Build() const {
  TxnRequest txn;
  for (const std::string& key : compared_) {
    const std::optional<KeyValue>& kv = Got(key);
    txn.compares.push_back(
        Compare::ModifiedAt(key, kv.has_value() ? kv->mod_revision : 0));
  }
  std::map<std::string, Op> ops = ops_;
  for (const auto& [key, meta] : metas_) {
    ops[key] = Op::Put(key, meta.SerializeAsString());
  }
  for (const auto& [key, sender] : senders_) {
    // A sender with nothing waiting leaves no key behind.
    ops[key] = sender.count() == 0 ? Op::Delete(key)
                                   : Op::Put(key, sender.SerializeAsString());
  }
  if (total_.has_value()) {
    ops[layout_.Total()] =
        Op::Put(layout_.Total(), total_->SerializeAsString());
  }
  for (auto& [key, op] : ops) txn.success.push_back(op);
  return txn;
}

bool MailWrite::Holds(const std::string& id_key) const {
  if (auto it = ops_.find(id_key); it != ops_.end()) {
    return it->second.kind == Op::Kind::kPut;
  }
  return Got(id_key).has_value();
}

void MailWrite::Put(const std::string& key, std::string value) {
  ops_[key] = Op::Put(key, std::move(value));
}

template <typename Value>
Value MailWrite::Decoded(const std::string& key) const {
  Value value;
  if (const std::optional<KeyValue>& kv = Got(key); kv.has_value()) {
    // An unreadable counter counts as empty: the next write corrects it.
    value.ParseFromString(kv->value);
  }
  return value;
}

v1::MailMetaValue MailWrite::Meta(const std::string& recipient_key) const {
  const std::string key = layout_.Meta(recipient_key);
  auto it = metas_.find(key);
  return it != metas_.end() ? it->second : Decoded<v1::MailMetaValue>(key);
}

v1::MailUsageValue MailWrite::Sender(const std::string& origin) const {
  const std::string key = layout_.Sender(origin);
  auto it = senders_.find(key);
  return it != senders_.end() ? it->second : Decoded<v1::MailUsageValue>(key);
}

v1::MailTotalValue MailWrite::Total() const {
  return total_.has_value() ? *total_
                            : Decoded<v1::MailTotalValue>(layout_.Total());
}

}  // namespace chat::registry::etcd::mailbox_internal
