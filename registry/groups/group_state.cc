#include "registry/groups/group_state.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/random.h"
#include "common/utf8.h"
#include "registry/names.h"

namespace chat::registry {
namespace {

constexpr absl::string_view kGroupStateDomain("chat-group-state-v1\0", 20);

// Printable form of possibly hostile input, for error messages.
std::string Quote(const std::string& text) {
  constexpr size_t kShown = 40;
  std::string shown;
  for (char c : text.substr(0, kShown)) {
    const auto u = static_cast<unsigned char>(c);
    shown += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  if (text.size() > kShown) shown += "...";
  return absl::StrCat("\"", shown, "\"");
}

void AppendU32(std::string& out, size_t value) {
  const auto v = static_cast<uint32_t>(value);
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void AppendU64(std::string& out, int64_t value) {
  const auto v = static_cast<uint64_t>(value);
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void AppendField(std::string& out, const std::string& field) {
  AppendU32(out, field.size());
  out.append(field);
}

// The members in the order they are signed in: by NameKey, then by name and
// key, so that every list (even one with duplicates) has one order.
std::vector<const GroupMember*> CanonicalOrder(
    const std::vector<GroupMember>& members) {
  std::vector<std::pair<std::string, const GroupMember*>> keyed;
  keyed.reserve(members.size());
  for (const GroupMember& member : members) {
    keyed.emplace_back(NameKey(member.name), &member);
  }
  std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    if (a.second->name != b.second->name) {
      return a.second->name < b.second->name;
    }
    return a.second->key.bytes < b.second->key.bytes;
  });
  std::vector<const GroupMember*> ordered;
  ordered.reserve(keyed.size());
  for (const auto& entry : keyed) ordered.push_back(entry.second);
  return ordered;
}

bool IsLowerHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

absl::Status ValidateDisplayName(const std::string& name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("display_name is empty");
  }
  if (name.size() > kMaxGroupDisplayNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("display_name is ", name.size(), " bytes; at most ",
                     kMaxGroupDisplayNameBytes, " are allowed"));
  }
  for (size_t pos = 0; pos < name.size();) {
    const size_t length = Utf8SequenceLength(name, pos);
    if (length == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("display_name is not valid UTF-8 (at byte ", pos, ")"));
    }
    const auto lead = static_cast<unsigned char>(name[pos]);
    const auto second =
        length == 2 ? static_cast<unsigned char>(name[pos + 1]) : 0;
    // C0 and DEL are one byte; C1 (U+0080..U+009F) is 0xC2 0x80..0x9F.
    const bool control = (length == 1 && (lead < 0x20 || lead == 0x7f)) ||
                         (length == 2 && lead == 0xC2 && second <= 0x9F);
    if (control) {
      return absl::InvalidArgumentError(absl::StrCat(
          "display_name contains a control character (at byte ", pos, ")"));
    }
    pos += length;
  }
  return absl::OkStatus();
}

// Every check of ValidateGroupState but the member limit; the signature's
// size only when `check_signature` (SignGroupState is about to set it).
absl::Status ValidateFields(const GroupState& state, bool check_signature) {
  if (!IsGroupId(state.group_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("group_id must be ", kGroupIdHexChars,
                     " lowercase hex characters (16 random bytes), not ",
                     Quote(state.group_id)));
  }
  if (state.version < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "version is ", state.version, "; a group's versions start at 1"));
  }
  if (state.version == 1 && !state.previous_hash.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "previous_hash must be empty for version 1 (nothing precedes it), "
        "not ",
        state.previous_hash.size(), " bytes"));
  }
  if (state.version > 1 && state.previous_hash.size() != kGroupHashBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "previous_hash is ", state.previous_hash.size(), " bytes, not ",
        kGroupHashBytes, " (the hash of version ", state.version - 1, ")"));
  }
  absl::Status display = ValidateDisplayName(state.display_name);
  if (!display.ok()) return display;
  absl::Status owner = ValidateName(state.owner);
  if (!owner.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("owner: ", owner.message()));
  }
  // NameKey -> index, to name the earlier spelling of a duplicate.
  absl::flat_hash_map<std::string, size_t> seen;
  seen.reserve(state.members.size());
  for (size_t i = 0; i < state.members.size(); ++i) {
    const std::string& name = state.members[i].name;
    absl::Status valid = ValidateName(name);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("members[", i, "].name: ", valid.message()));
    }
    const auto [it, inserted] = seen.emplace(NameKey(name), i);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("members[", i, "].name ", Quote(name), " is members[",
                       it->second, "] (", Quote(state.members[it->second].name),
                       ") again: names are unique regardless of case"));
    }
  }
  if (!state.ended && !seen.contains(NameKey(state.owner))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "owner ", Quote(state.owner),
        " is not a member (only an ended group's owner may have left)"));
  }
  if (state.signed_at_unix_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("signed_at_unix_ms is ", state.signed_at_unix_ms,
                     "; a time before 1970 is not a signing time"));
  }
  if (check_signature && state.signature.size() != kSignatureBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signature is ", state.signature.size(), " bytes, not ",
        kSignatureBytes,
        state.signature.empty() ? " (the state is not signed)" : ""));
  }
  return absl::OkStatus();
}

// Whether `state` carries a signature of its signed bytes by the key that
// `signed_by` lists for its owner; `whose` says which version that is, for
// the message.
absl::Status CheckSignedByOwnerOf(const GroupState& signed_by,
                                  const GroupState& state,
                                  const std::string& whose) {
  const std::optional<PublicKey> key =
      GroupMemberKey(signed_by, signed_by.owner);
  if (!key.has_value()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "version ", signed_by.version, " of group ", state.group_id,
        " lists no key for its owner ", Quote(signed_by.owner),
        ", so nobody can sign what follows it"));
  }
  if (!VerifySignature(*key, GroupStateSignedBytes(state), state.signature)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "version ", state.version, " of group ", state.group_id,
        " is not signed by ", Quote(signed_by.owner), " (", whose, ", key ",
        ShortFingerprint(*key),
        "); only the owner may change a group, and no field may change after "
        "signing"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string NewGroupId() { return RandomHex(kGroupIdHexChars / 2); }

bool IsGroupId(absl::string_view id) {
  return id.size() == kGroupIdHexChars &&
         std::all_of(id.begin(), id.end(), IsLowerHex);
}

void GroupStateToProto(const GroupState& state, v1::GroupState* proto) {
  proto->Clear();
  proto->set_group_id(state.group_id);
  proto->set_version(state.version);
  proto->set_previous_hash(state.previous_hash);
  proto->set_display_name(state.display_name);
  proto->set_owner(state.owner);
  for (const GroupMember& member : state.members) {
    v1::GroupMember* out = proto->add_members();
    out->set_name(member.name);
    out->set_public_key(member.key.Bytes());
  }
  proto->set_ended(state.ended);
  proto->set_signed_at_unix_ms(state.signed_at_unix_ms);
  proto->set_signature(state.signature);
}

absl::StatusOr<GroupState> GroupStateFromProto(const v1::GroupState& proto) {
  GroupState state;
  state.group_id = proto.group_id();
  state.version = proto.version();
  state.previous_hash = proto.previous_hash();
  state.display_name = proto.display_name();
  state.owner = proto.owner();
  state.members.reserve(static_cast<size_t>(proto.members_size()));
  for (int i = 0; i < proto.members_size(); ++i) {
    const v1::GroupMember& member = proto.members(i);
    absl::StatusOr<PublicKey> key = PublicKey::FromBytes(member.public_key());
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "members[", i, "].public_key is ", member.public_key().size(),
          " bytes, not ", kPublicKeyBytes));
    }
    state.members.push_back(GroupMember{member.name(), *key});
  }
  state.ended = proto.ended();
  state.signed_at_unix_ms = proto.signed_at_unix_ms();
  state.signature = proto.signature();
  absl::Status valid = ValidateFields(state, /*check_signature=*/true);
  if (!valid.ok()) return valid;
  return state;
}

std::string GroupStateSignedBytes(const GroupState& state) {
  std::string out(kGroupStateDomain.data(), kGroupStateDomain.size());
  AppendField(out, state.group_id);
  AppendU64(out, state.version);
  AppendField(out, state.previous_hash);
  AppendField(out, state.display_name);
  AppendField(out, state.owner);
  AppendU32(out, state.members.size());
  for (const GroupMember* member : CanonicalOrder(state.members)) {
    AppendField(out, member->name);
    AppendField(out, member->key.Bytes());
  }
  out.push_back(state.ended ? '\1' : '\0');
  AppendU64(out, state.signed_at_unix_ms);
  return out;
}

std::string GroupStateHash(const GroupState& state) {
  std::string hashed = GroupStateSignedBytes(state);
  AppendField(hashed, state.signature);
  return ContentDigest(hashed);
}

absl::StatusOr<GroupState> SignGroupState(GroupState state,
                                          const Identity& signer) {
  absl::Status valid = ValidateFields(state, /*check_signature=*/false);
  if (!valid.ok()) return valid;
  state.signature = signer.Sign(GroupStateSignedBytes(state));
  return state;
}

absl::Status ValidateGroupState(const GroupState& state,
                                const GroupLimits& limits) {
  // First, so that an over-long list costs nothing more.
  if (state.members.size() >
      static_cast<size_t>(std::max(limits.max_members, 0))) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "group ", Quote(state.group_id), " has ", state.members.size(),
        " members; a group may have at most ", limits.max_members));
  }
  return ValidateFields(state, /*check_signature=*/true);
}

absl::Status CheckGenesis(const GroupState& state, const GroupLimits& limits) {
  absl::Status valid = ValidateGroupState(state, limits);
  if (!valid.ok()) return valid;
  if (state.version != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("version ", state.version, " of group ", state.group_id,
                     " is not its creation: it follows version ",
                     state.version - 1, ", which is not held here"));
  }
  if (state.ended) {
    return absl::InvalidArgumentError(
        absl::StrCat("group ", state.group_id, " cannot be created ended"));
  }
  return CheckSignedByOwnerOf(state, state, "its owner");
}

absl::Status CheckSuccessor(const GroupState& current, const GroupState& next,
                            const GroupLimits& limits) {
  absl::Status valid = ValidateGroupState(next, limits);
  if (!valid.ok()) return valid;
  if (next.group_id != current.group_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("the state is of group ", next.group_id, ", not of group ",
                     Quote(current.group_id)));
  }
  if (current.ended) {
    return absl::FailedPreconditionError(
        absl::StrCat("group ", current.group_id, " ended at version ",
                     current.version, "; no version follows it"));
  }
  // next.version >= 1 (validated), so this cannot overflow.
  if (next.version - 1 != current.version) {
    return absl::FailedPreconditionError(
        absl::StrCat("version ", next.version, " of group ", next.group_id,
                     " does not follow the latest, version ", current.version,
                     next.version <= current.version
                         ? " (that version is taken)"
                         : " (versions in between are missing)"));
  }
  if (next.previous_hash != GroupStateHash(current)) {
    return absl::UnauthenticatedError(
        absl::StrCat("version ", next.version, " of group ", next.group_id,
                     " does not chain to version ", current.version,
                     ": its previous_hash is not that version's hash"));
  }
  return CheckSignedByOwnerOf(
      current, next, absl::StrCat("the owner of version ", current.version));
}

std::optional<PublicKey> GroupMemberKey(const GroupState& state,
                                        const std::string& name) {
  const std::string key = NameKey(name);
  for (const GroupMember& member : state.members) {
    if (NameKey(member.name) == key) return member.key;
  }
  return std::nullopt;
}

GroupChange DiffGroupStates(const GroupState& before, const GroupState& after) {
  GroupChange change;
  absl::flat_hash_map<std::string, const GroupMember*> was;
  for (const GroupMember& member : before.members) {
    was.emplace(NameKey(member.name), &member);
  }
  absl::flat_hash_map<std::string, const GroupMember*> is;
  for (const GroupMember& member : after.members) {
    is.emplace(NameKey(member.name), &member);
  }
  for (const GroupMember* member : CanonicalOrder(after.members)) {
    const auto it = was.find(NameKey(member->name));
    if (it == was.end()) {
      change.added.push_back(*member);
    } else if (it->second->key != member->key) {
      change.rekeyed.push_back(*member);
    }
  }
  for (const GroupMember* member : CanonicalOrder(before.members)) {
    if (!is.contains(NameKey(member->name))) change.removed.push_back(*member);
  }
  if (NameKey(before.owner) != NameKey(after.owner)) {
    change.new_owner = after.owner;
  }
  if (before.display_name != after.display_name) {
    change.new_display_name = after.display_name;
  }
  change.ended = after.ended && !before.ended;
  return change;
}

}  // namespace chat::registry
