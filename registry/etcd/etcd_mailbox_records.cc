// The etcd Mailbox's records (etcd_mailbox_internal.h): numbers in keys,
// the items' codec, and reads of many keys in few transactions.

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "registry/etcd/etcd_mailbox_internal.h"
#include "registry/etcd/mail_records.pb.h"

namespace chat::registry::etcd::mailbox_internal {
namespace {

// Gets per read-only transaction: etcd's limit.
constexpr size_t kReadsPerTxn = 128;

int KindNumber(MailItem::Kind kind) {
  switch (kind) {
    case MailItem::Kind::kReceipt:
      return 2;
    case MailItem::Kind::kReadReceipt:
      return 3;
    case MailItem::Kind::kExpired:
      return 4;
    case MailItem::Kind::kMessage:
      break;
  }
  return 1;
}

MailItem::Kind KindFromNumber(int number) {
  switch (number) {
    case 2:
      return MailItem::Kind::kReceipt;
    case 3:
      return MailItem::Kind::kReadReceipt;
    case 4:
      return MailItem::Kind::kExpired;
    default:
      return MailItem::Kind::kMessage;
  }
}

}  // namespace

std::string Hex16(uint64_t n) {
  char buffer[17];
  std::snprintf(buffer, sizeof(buffer), "%016llx",
                static_cast<unsigned long long>(n));
  return buffer;
}

std::optional<uint64_t> ParseHex16(absl::string_view text) {
  if (text.size() != 16) return std::nullopt;
  uint64_t n = 0;
  for (char c : text) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    n = n * 16 + static_cast<uint64_t>(digit);
  }
  return n;
}

std::string TimeKey(int64_t unix_ms) {
  return Hex16(static_cast<uint64_t>(unix_ms) ^ (uint64_t{1} << 63));
}

absl::StatusOr<StoredItem> DecodeItem(const MailLayout& layout,
                                      const KeyValue& kv) {
  v1::MailItemValue value;
  std::optional<std::string> key = layout.RecipientOfItem(kv.key);
  std::optional<int64_t> seq = layout.SeqOfItem(kv.key);
  if (!key.has_value() || !seq.has_value() ||
      !value.ParseFromString(kv.value)) {
    return absl::DataLossError(
        absl::StrCat("etcd mailbox: unreadable item at ", kv.key));
  }
  StoredItem stored;
  stored.recipient_key = *key;
  MailItem& item = stored.item;
  item.kind = KindFromNumber(value.kind());
  item.id = value.id();
  item.sender = value.sender();
  item.recipient = value.recipient();
  item.payload = value.payload();
  item.digest = value.digest();
  item.origin = value.origin();
  item.deposited_at = absl::FromUnixMillis(value.deposited_at_unix_ms());
  item.seq = *seq;
  return stored;
}

std::string EncodeItem(const MailItem& item) {
  v1::MailItemValue value;
  value.set_kind(KindNumber(item.kind));
  value.set_id(item.id);
  value.set_sender(item.sender);
  value.set_recipient(item.recipient);
  value.set_payload(item.payload);
  value.set_digest(item.digest);
  value.set_origin(item.origin);
  value.set_deposited_at_unix_ms(absl::ToUnixMillis(item.deposited_at));
  return value.SerializeAsString();
}

absl::StatusOr<std::map<std::string, KeyValue>> ReadKeys(
    EtcdClient& client, const std::vector<std::string>& keys) {
  std::map<std::string, KeyValue> found;
  for (size_t start = 0; start < keys.size(); start += kReadsPerTxn) {
    TxnRequest read;
    const size_t end = std::min(keys.size(), start + kReadsPerTxn);
    for (size_t i = start; i < end; ++i) {
      read.success.push_back(absl::EndsWith(keys[i], "/")
                                 ? Op::GetPrefix(keys[i])
                                 : Op::Get(keys[i]));
    }
    absl::StatusOr<TxnResult> result = client.Txn(read);
    if (!result.ok()) return result.status();
    for (const OpResult& op : result->results) {
      for (const KeyValue& kv : op.kvs) found[kv.key] = kv;
    }
  }
  return found;
}

}  // namespace chat::registry::etcd::mailbox_internal
