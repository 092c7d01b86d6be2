#include "peer/group_book_sqlite.h"

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace chat::peer {

using registry::GroupState;

namespace {

// `blob` as a group state; nullopt when it does not parse.
std::optional<GroupState> ParseGroupState(const SQLite::Column& blob) {
  registry::v1::GroupState proto;
  if (!proto.ParseFromArray(blob.getBlob(), blob.getBytes())) {
    return std::nullopt;
  }
  absl::StatusOr<GroupState> state = registry::GroupStateFromProto(proto);
  if (!state.ok()) return std::nullopt;
  return *std::move(state);
}

std::string SerializeGroupState(const GroupState& state) {
  registry::v1::GroupState proto;
  registry::GroupStateToProto(state, &proto);
  std::string bytes;
  proto.SerializeToString(&bytes);
  return bytes;
}

}  // namespace

SqliteGroupBook::Loaded SqliteGroupBook::Load(SQLite::Database& db) {
  Loaded loaded;
  SQLite::Statement select(db, "SELECT state, member FROM groups");
  while (select.executeStep()) {
    std::optional<GroupState> state = ParseGroupState(select.getColumn(0));
    if (!state.has_value()) continue;
    const bool member = select.getColumn(1).getInt() != 0;
    std::string id = state->group_id;
    loaded.verified[id][state->version] = *state;
    loaded.known[std::move(id)] = KnownGroup{*std::move(state), member};
  }
  SQLite::Statement states(db, "SELECT state FROM group_states");
  while (states.executeStep()) {
    std::optional<GroupState> state = ParseGroupState(states.getColumn(0));
    // A state of a group not known (its row did not parse) is of no use.
    if (!state.has_value() || loaded.known.count(state->group_id) == 0) {
      continue;
    }
    std::map<int64_t, GroupState>& versions = loaded.verified[state->group_id];
    const int64_t version = state->version;
    versions.emplace(version, *std::move(state));
  }
  return loaded;
}

absl::StatusOr<GroupAdvance> SqliteGroupBook::Apply(
    const std::vector<GroupState>& states, const registry::GroupMember& self) {
  absl::MutexLock one_at_a_time(&apply_mu_);
  if (states.empty()) {
    return absl::InvalidArgumentError("no group states to apply");
  }
  std::optional<GroupState> held;
  int64_t groups_known = 0;
  {
    absl::MutexLock lock(&mu_);
    auto found = known_.find(states[0].group_id);
    if (found != known_.end()) held = found->second.state;
    groups_known = static_cast<int64_t>(known_.size());
  }
  absl::StatusOr<GroupAdvance> advance =
      AdvanceGroup(held, states, file_->limits.group_limits);
  if (!advance.ok() || !advance->latest.has_value()) return advance;
  if (advance->first_known) {
    absl::Status room =
        RoomForAnotherGroup(groups_known, file_->limits.max_groups);
    if (!room.ok()) return room;
  }
  KnownGroup latest{*advance->latest,
                    IsGroupMember(*advance->latest, self.name, self.key)};
  const std::string bytes = SerializeGroupState(latest.state);
  const int64_t now = absl::ToUnixMillis(file_->clock.Wall());
  absl::Status stored = file_->batch->Run([this, &latest, &bytes, &advance,
                                           now](SQLite::Database&) {
    file_->db_mu.AssertHeld();
    // Every state on the way to the latest, the latest too.
    ScopedStatement keep(
        file_->statements,
        "INSERT OR REPLACE INTO group_states (group_id, version, state) "
        "VALUES (?1, ?2, ?3)");
    for (const GroupState& state : advance->verified) {
      const std::string state_bytes = SerializeGroupState(state);
      keep->reset();
      keep->bind(1, state.group_id);
      keep->bind(2, static_cast<int64_t>(state.version));
      keep->bind(3, state_bytes.data(), static_cast<int>(state_bytes.size()));
      keep->exec();
    }
    ScopedStatement upsert(
        file_->statements,
        "INSERT INTO groups (group_id, version, state, display_name, "
        "member, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT "
        "(group_id) DO UPDATE SET version = ?2, state = ?3, display_name "
        "= ?4, member = ?5, updated_ms = ?6");
    upsert->bind(1, latest.state.group_id);
    upsert->bind(2, static_cast<int64_t>(latest.state.version));
    upsert->bind(3, bytes.data(), static_cast<int>(bytes.size()));
    upsert->bind(4, latest.state.display_name);
    upsert->bind(5, latest.member ? 1 : 0);
    upsert->bind(6, now);
    upsert->exec();
    return absl::OkStatus();
  });
  if (!stored.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "cannot store group ", latest.state.group_id, ": ", stored.message()));
  }
  absl::MutexLock lock(&mu_);
  std::map<int64_t, GroupState>& versions = verified_[latest.state.group_id];
  for (const GroupState& state : advance->verified) {
    versions[state.version] = state;
  }
  std::string id = latest.state.group_id;
  known_[std::move(id)] = std::move(latest);
  return advance;
}

bool SqliteGroupBook::IsMember(const std::string& group_id,
                               const std::string& name, const PublicKey& key) {
  absl::MutexLock lock(&mu_);
  auto found = known_.find(group_id);
  return found != known_.end() && IsGroupMember(found->second.state, name, key);
}

std::optional<registry::GroupState> SqliteGroupBook::StateAt(
    const std::string& group_id, int64_t version) {
  absl::MutexLock lock(&mu_);
  auto group = verified_.find(group_id);
  if (group == verified_.end()) return std::nullopt;
  auto found = group->second.find(version);
  if (found == group->second.end()) return std::nullopt;
  return found->second;
}

std::optional<KnownGroup> SqliteGroupBook::Latest(const std::string& group_id) {
  absl::MutexLock lock(&mu_);
  auto found = known_.find(group_id);
  if (found == known_.end()) return std::nullopt;
  return found->second;
}

std::vector<KnownGroup> SqliteGroupBook::List() {
  absl::MutexLock lock(&mu_);
  std::vector<KnownGroup> groups;
  groups.reserve(known_.size());
  for (const auto& [id, group] : known_) groups.push_back(group);
  return groups;
}

std::vector<KnownGroup> SqliteGroupBook::ByDisplayName(
    const std::string& display_name) {
  absl::MutexLock lock(&mu_);
  std::vector<KnownGroup> groups;
  for (const auto& [id, group] : known_) {
    if (group.state.display_name == display_name) groups.push_back(group);
  }
  return groups;
}

}  // namespace chat::peer
