#include "registry/store/store_rules.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/identity.h"
#include "common/limits.h"
#include "common/status.h"
#include "registry/names.h"

namespace chat::registry {

Millis GrantedTtl(const LeasePolicy& policy, Millis requested) {
  if (requested.count() <= 0) requested = policy.default_ttl;
  return std::clamp(requested, policy.min_ttl, policy.max_ttl);
}

absl::Time LeaseEndWall(const Record& record, MonoTime now,
                        absl::Time wall_now) {
  const auto delta = std::chrono::duration_cast<std::chrono::milliseconds>(
      record.expires_at - now);
  return wall_now + absl::Milliseconds(delta.count());
}

namespace {

// Whether a live lease of the binding's key holds the name.
bool HeldByLiveLease(const NameState& state, MonoTime now) {
  return state.binding && state.record && !state.record->is_static() &&
         state.record->LiveAt(now) && state.record->public_key &&
         *state.record->public_key == state.binding->key;
}

std::string FormatReservationEnd(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M UTC", t, absl::UTCTimeZone());
}

}  // namespace

absl::Time BindingEnd(const NameState& state, const LeasePolicy& policy,
                      MonoTime now, absl::Time wall_now) {
  if (!state.binding) return absl::InfinitePast();
  if (HeldByLiveLease(state, now)) return absl::InfiniteFuture();
  if (state.binding->reserved_until != absl::InfiniteFuture()) {
    return state.binding->reserved_until;
  }
  // Its lease ran out and nobody recorded that yet (or it was lost).
  if (state.record && !state.record->is_static() && state.record->public_key &&
      *state.record->public_key == state.binding->key) {
    return LeaseEndWall(*state.record, now, wall_now) + policy.reserve;
  }
  return wall_now + policy.reserve;
}

bool IsBound(const NameState& state, const LeasePolicy& policy, MonoTime now,
             absl::Time wall_now) {
  return BindingEnd(state, policy, now, wall_now) > wall_now;
}

absl::StatusOr<Binding> BindingOf(const std::string& name,
                                  const NameState& state,
                                  const LeasePolicy& policy, MonoTime now,
                                  absl::Time wall_now) {
  if (!IsBound(state, policy, now, wall_now)) {
    return absl::NotFoundError(
        absl::StrCat("name ", name, " is not bound to a key"));
  }
  Binding binding;
  binding.name = state.binding->name;
  binding.key = state.binding->key;
  binding.online = HeldByLiveLease(state, now);
  binding.reserved_until = BindingEnd(state, policy, now, wall_now);
  return binding;
}

absl::Status BoundError(const NameState& state, const LeasePolicy& policy,
                        MonoTime now, absl::Time wall_now) {
  const BindingRecord& binding = *state.binding;
  const std::string prefix = absl::StrCat(
      "name ", binding.name, " belongs to another key (fingerprint ",
      ShortFingerprint(binding.key), "...)");
  if (HeldByLiveLease(state, now)) {
    return absl::PermissionDeniedError(absl::StrCat(prefix, " and is online"));
  }
  return absl::PermissionDeniedError(absl::StrCat(
      prefix, " until ",
      FormatReservationEnd(BindingEnd(state, policy, now, wall_now))));
}

std::optional<BindingRecord> BindingAfterLeaseEnds(
    const std::optional<BindingRecord>& binding, const Record& ended,
    const LeasePolicy& policy, absl::Time ended_at) {
  if (!binding || !ended.public_key || *ended.public_key != binding->key ||
      binding->reserved_until != absl::InfiniteFuture()) {
    return binding;
  }
  BindingRecord reserved = *binding;
  reserved.reserved_until = ended_at + policy.reserve;
  return reserved;
}

absl::Status CheckProofFreshness(const RegisterRequest& request,
                                 const std::optional<BindingRecord>& binding,
                                 const LeasePolicy& policy,
                                 absl::Time wall_now) {
  if (request.proof_unix_ms == 0) return absl::OkStatus();
  const absl::Duration ahead =
      absl::FromUnixMillis(request.proof_unix_ms) - wall_now;
  if (ahead > policy.proof_skew || -ahead > policy.proof_skew) {
    return absl::UnauthenticatedError(
        absl::StrCat("registration proof for ", request.name, " is dated ",
                     absl::FormatDuration(absl::Trunc(
                         ahead > absl::ZeroDuration() ? ahead : -ahead,
                         absl::Milliseconds(1))),
                     ahead > absl::ZeroDuration() ? " ahead of" : " behind",
                     " the registry's clock (at most ",
                     absl::FormatDuration(policy.proof_skew),
                     " either way is taken): set this machine's clock right"));
  }
  if (binding && request.public_key && binding->key == *request.public_key &&
      request.proof_unix_ms <= binding->last_proof_unix_ms) {
    return absl::UnauthenticatedError(absl::StrCat(
        "registration proof for ", request.name,
        " is not later than the last one the registry took for this name "
        "and key (",
        binding->last_proof_unix_ms - request.proof_unix_ms,
        " ms older): a replayed request, or this machine's clock went back"));
  }
  return absl::OkStatus();
}

std::optional<BindingRecord> BindingAfterRelease(const BindingRecord& binding,
                                                 const LeasePolicy& policy,
                                                 absl::Time wall_now) {
  if (binding.last_proof_unix_ms == 0 ||
      absl::FromUnixMillis(binding.last_proof_unix_ms) + policy.proof_skew <=
          wall_now) {
    return std::nullopt;
  }
  BindingRecord tombstone = binding;
  tombstone.reserved_until = wall_now;
  return tombstone;
}

absl::Time BindingForgetAt(const BindingRecord& binding,
                           const LeasePolicy& policy) {
  if (binding.reserved_until == absl::InfiniteFuture()) {
    return absl::InfiniteFuture();
  }
  if (binding.last_proof_unix_ms == 0) return binding.reserved_until;
  return std::max(
      binding.reserved_until,
      absl::FromUnixMillis(binding.last_proof_unix_ms) + policy.proof_skew);
}

Entry ToEntry(const Record& record, MonoTime now) {
  Entry entry;
  entry.name = record.name;
  entry.address = record.address;
  entry.is_static = record.is_static();
  entry.public_key = record.public_key;
  entry.services = SplitServices(record.services);
  if (!record.is_static()) {
    entry.ttl = record.ttl;
    entry.expires_in = Millis(MillisUntil(record.expires_at, now));
  }
  return entry;
}

bool RecordOffers(const Record& record, const std::string& service) {
  if (record.services.empty()) return service == kChatService;
  for (absl::string_view piece : absl::StrSplit(record.services, ',')) {
    if (piece == service) return true;
  }
  return false;
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
  if (request.proof_unix_ms < 0) {
    return absl::InvalidArgumentError("proof_unix_ms must not be negative");
  }
  if (request.proof_unix_ms != 0 && !request.public_key) {
    return absl::InvalidArgumentError(
        "public_key is required with proof_unix_ms");
  }
  return CanonicalServices(request.services).status();
}

std::string NameOwner(const Record& record) {
  if (record.is_static()) return "";
  if (record.public_key) return "k" + record.public_key->Bytes();
  return record.client.empty() ? "" : "c" + record.client;
}

std::string NameOwner(const RegisterRequest& request) {
  if (request.public_key) return "k" + request.public_key->Bytes();
  return request.client.empty() ? "" : "c" + request.client;
}

namespace {

// LimitError when a name new to the owner of `request` would go past its
// quota.
absl::Status CheckNameQuota(const RegisterRequest& request,
                            const std::optional<Record>& current,
                            const NameQuotas& quotas,
                            const NameCounts& counts) {
  const std::string owner = NameOwner(request);
  if (owner.empty()) return absl::OkStatus();
  // Its record replaces the one counted under this owner already.
  if (current && NameOwner(*current) == owner) return absl::OkStatus();
  if (request.public_key) {
    if (counts.owner_names < quotas.max_per_key) return absl::OkStatus();
    return LimitError(
        absl::StrCat("too many names for key ",
                     ShortFingerprint(*request.public_key), "..."),
        static_cast<int64_t>(quotas.max_per_key), "max-names-per-key");
  }
  if (counts.owner_names < quotas.max_per_client) return absl::OkStatus();
  return LimitError(
      absl::StrCat("too many names without a key from ", request.client),
      static_cast<int64_t>(quotas.max_per_client), "max-names-per-client");
}

}  // namespace

absl::StatusOr<RegisterDecision> DecideRegister(
    const RegisterRequest& request, const NameState& state,
    const LeasePolicy& policy, const NameQuotas& quotas,
    const NameCounts& counts, MonoTime now, absl::Time wall_now,
    absl::FunctionRef<std::string()> new_lease_id) {
  // First: a proof that is not fresh says nothing about who is asking.
  CHAT_RETURN_IF_ERROR(
      CheckProofFreshness(request, state.binding, policy, wall_now));
  const bool bound = IsBound(state, policy, now, wall_now);
  if (bound &&
      (!request.public_key || *request.public_key != state.binding->key)) {
    return BoundError(state, policy, now, wall_now);
  }
  const std::optional<Record>& current = state.record;
  Record record;
  if (current && current->LiveAt(now)) {
    if (current->is_static() || request.lease_id.empty() ||
        !SameSecret(current->lease_id, request.lease_id)) {
      return HeldError(*current, now, wall_now);
    }
    CHAT_RETURN_IF_ERROR(CheckNameQuota(request, current, quotas, counts));
    record = *current;  // The holder renews and perhaps moves.
    record.address = request.address;
  } else {
    CHAT_RETURN_IF_ERROR(CheckNameQuota(request, current, quotas, counts));
    record.name = request.name;
    record.address = request.address;
    record.lease_id = new_lease_id();
  }
  record.ttl = GrantedTtl(policy, request.ttl);
  record.expires_at = now + record.ttl;
  record.public_key = request.public_key;
  record.client = request.public_key ? "" : request.client;
  // What it registers now replaces what it offered (a row written by an
  // older client has none).
  CHAT_ASSIGN_OR_RETURN(std::vector<std::string> services,
                        CanonicalServices(request.services));
  record.services = JoinServices(services);
  RegisterDecision decision;
  decision.binding = state.binding;
  if (request.public_key) {
    BindingRecord binding;
    // Keeps the spelling it was first bound with while it holds.
    binding.name = bound ? state.binding->name : record.name;
    binding.key = *request.public_key;
    binding.last_proof_unix_ms = request.proof_unix_ms;
    if (request.proof_unix_ms == 0 && state.binding &&
        state.binding->key == binding.key) {
      // A v1 proof (its challenge used up) leaves the last v2 one standing.
      binding.last_proof_unix_ms = state.binding->last_proof_unix_ms;
    }
    decision.binding = binding;
  }
  decision.record = std::move(record);
  return decision;
}

absl::StatusOr<Record> DecidePutStatic(
    const std::string& name, const std::string& address,
    const std::vector<std::string>& services, const NameState& state,
    const LeasePolicy& policy, const NameQuotas& quotas,
    const NameCounts& counts, MonoTime now, absl::Time wall_now) {
  if (IsBound(state, policy, now, wall_now)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "name ", state.binding->name, " is bound to a key (fingerprint ",
        ShortFingerprint(state.binding->key),
        "...); a static entry cannot take it (an operator can end the "
        "binding with: chatctl release ",
        state.binding->name, ")"));
  }
  CHAT_ASSIGN_OR_RETURN(std::vector<std::string> canonical,
                        CanonicalServices(services));
  if (canonical.empty()) canonical.push_back(kChatService);
  const std::optional<Record>& current = state.record;
  Record record;
  if (current && current->LiveAt(now)) {
    if (!current->is_static()) return HeldError(*current, now, wall_now);
    record = *current;
  } else {
    if (counts.static_names >= quotas.max_static) {
      return LimitError("too many static entries",
                        static_cast<int64_t>(quotas.max_static),
                        "max-static-names");
    }
    record.name = name;
  }
  record.address = address;
  record.services = JoinServices(canonical);
  return record;
}

absl::Status CheckRelease(const std::string& name, const NameState& state,
                          const LeasePolicy& policy, MonoTime now,
                          absl::Time wall_now) {
  if (!IsBound(state, policy, now, wall_now)) {
    return absl::NotFoundError(
        absl::StrCat("name ", name, " is not bound to a key"));
  }
  return absl::OkStatus();
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
    // A new key or new services are news to watchers as much as a new
    // address.
    reason = before->address == after->address &&
                     before->public_key == after->public_key &&
                     before->services == after->services
                 ? EventReason::kNone
                 : EventReason::kAddressChanged;
  }
  if (reason != EventReason::kNone) {
    events.push_back(WatchEvent{EventType::kPut, reason, ToEntry(*after, now)});
  }
  return events;
}

}  // namespace chat::registry
