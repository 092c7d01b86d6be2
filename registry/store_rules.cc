#include "registry/store_rules.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "registry/names.h"

namespace chat::registry {

Millis GrantedTtl(const LeasePolicy& policy, Millis requested) {
  if (requested.count() <= 0) requested = policy.default_ttl;
  return std::clamp(requested, policy.min_ttl, policy.max_ttl);
}

Entry ToEntry(const Record& record, MonoTime now) {
  Entry entry;
  entry.name = record.name;
  entry.address = record.address;
  entry.is_static = record.is_static();
  if (!record.is_static()) {
    entry.ttl = record.ttl;
    entry.expires_in = Millis(MillisUntil(record.expires_at, now));
  }
  return entry;
}

bool SameSecret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

absl::Status HeldError(const Record& holder, MonoTime now,
                       absl::Time wall_now) {
  if (holder.is_static()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "\"", holder.name,
        "\" is a static entry (an operator can remove it with: chatctl "
        "unregister ",
        holder.name, " --static)"));
  }
  const int64_t left_ms = MillisUntil(holder.expires_at, now);
  return absl::AlreadyExistsError(absl::StrFormat(
      "\"%s\" is held by another live lease until %s (%.1f s from now "
      "unless it is renewed)",
      holder.name, FormatWallTime(wall_now + absl::Milliseconds(left_ms)),
      static_cast<double>(left_ms) / 1000.0));
}

absl::Status CheckHolder(const std::string& name, const std::string& lease_id,
                         const Record* record, MonoTime now) {
  if (lease_id.empty()) {
    return absl::InvalidArgumentError("lease id is empty");
  }
  if (record == nullptr || !record->LiveAt(now)) {
    return absl::NotFoundError(absl::StrCat("no live lease holds \"", name,
                                            "\" (it expired; register again)"));
  }
  if (record->is_static() || !SameSecret(record->lease_id, lease_id)) {
    return absl::PermissionDeniedError(
        absl::StrCat("that lease id does not hold \"", record->name, "\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateRegisterRequest(const RegisterRequest& request) {
  CHAT_RETURN_IF_ERROR(ValidateName(request.name));
  CHAT_RETURN_IF_ERROR(ValidateAddress(request.address));
  if (request.ttl.count() < 0) {
    return absl::InvalidArgumentError("ttl must not be negative");
  }
  return absl::OkStatus();
}

absl::StatusOr<Record> DecideRegister(
    const RegisterRequest& request, const std::optional<Record>& current,
    const LeasePolicy& policy, MonoTime now, absl::Time wall_now,
    absl::FunctionRef<std::string()> new_lease_id) {
  Record record;
  if (current && current->LiveAt(now)) {
    if (current->is_static() || request.lease_id.empty() ||
        !SameSecret(current->lease_id, request.lease_id)) {
      return HeldError(*current, now, wall_now);
    }
    record = *current;  // The holder renews and perhaps moves.
    record.address = request.address;
  } else {
    record.name = request.name;
    record.address = request.address;
    record.lease_id = new_lease_id();
  }
  record.ttl = GrantedTtl(policy, request.ttl);
  record.expires_at = now + record.ttl;
  return record;
}

absl::StatusOr<Record> DecidePutStatic(const std::string& name,
                                       const std::string& address,
                                       const std::optional<Record>& current,
                                       MonoTime now, absl::Time wall_now) {
  Record record;
  if (current && current->LiveAt(now)) {
    if (!current->is_static()) return HeldError(*current, now, wall_now);
    record = *current;
  } else {
    record.name = name;
  }
  record.address = address;
  return record;
}

absl::Status CheckRemoveStatic(const std::string& name,
                               const std::optional<Record>& current,
                               MonoTime now) {
  if (!current || !current->LiveAt(now)) {
    return absl::NotFoundError(
        absl::StrCat("no static entry named \"", name, "\""));
  }
  if (!current->is_static()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "\"", current->name,
        "\" is held by a peer's lease, not a static entry; it leaves when "
        "the peer unregisters or its lease expires"));
  }
  return absl::OkStatus();
}

std::vector<WatchEvent> ChangeEvents(Record* before, const Record* after,
                                     MonoTime now, EventReason delete_reason) {
  std::vector<WatchEvent> events;
  const bool before_live = before != nullptr && before->LiveAt(now);
  if (before != nullptr && !before_live && !before->expiry_reported) {
    // It expired but nobody removed it yet: report that first.
    events.push_back(WatchEvent{EventType::kDelete, EventReason::kExpired,
                                ToEntry(*before, now)});
    before->expiry_reported = true;
  }
  if (after == nullptr) {
    if (before_live) {
      events.push_back(
          WatchEvent{EventType::kDelete, delete_reason, ToEntry(*before, now)});
    }
    return events;
  }
  EventReason reason = EventReason::kRegistered;
  if (before_live) {
    reason = before->address == after->address ? EventReason::kNone
                                               : EventReason::kAddressChanged;
  }
  if (reason != EventReason::kNone) {
    events.push_back(WatchEvent{EventType::kPut, reason, ToEntry(*after, now)});
  }
  return events;
}

std::vector<WatchEvent> UndoEvents(const Record* current, Record* restored,
                                   MonoTime now) {
  std::vector<WatchEvent> events;
  // What watchers believe is there now, and should believe afterwards.
  const bool seen_now = current != nullptr && !current->expiry_reported;
  const bool seen_after = restored != nullptr && !restored->expiry_reported &&
                          restored->LiveAt(now);
  if (restored != nullptr) restored->expiry_reported = !seen_after;
  if (seen_now && !seen_after) {
    events.push_back(WatchEvent{EventType::kDelete,
                                current->LiveAt(now)
                                    ? EventReason::kUnregistered
                                    : EventReason::kExpired,
                                ToEntry(*current, now)});
  } else if (!seen_now && seen_after) {
    events.push_back(WatchEvent{EventType::kPut, EventReason::kRegistered,
                                ToEntry(*restored, now)});
  } else if (seen_now && seen_after && current->address != restored->address) {
    events.push_back(WatchEvent{EventType::kPut, EventReason::kAddressChanged,
                                ToEntry(*restored, now)});
  }
  return events;
}

}  // namespace chat::registry
