#include "peer/group_gate.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "registry/names.h"

namespace chat::peer {

using registry::GroupState;

namespace {

constexpr Millis kRefusalEvery{60'000};
// Past these, the memories are dropped whole: at worst a refusal or an
// alarm is told once more.
constexpr size_t kRefusalSendersKept = 4096;
constexpr size_t kForkAlarmsKept = 4096;

std::string UnknownGroupLabel(const std::string& group_id) {
  return absl::StrCat("group ", group_id.substr(0, 8));
}

// Whether `state` lists `name` with `key`, ended or not.
bool Lists(const GroupState& state, const std::string& name,
           const PublicKey& key) {
  std::optional<PublicKey> listed = registry::GroupMemberKey(state, name);
  return listed.has_value() && *listed == key;
}

bool SameName(const std::string& a, const std::string& b) {
  return registry::NameKey(a) == registry::NameKey(b);
}

}  // namespace

GroupGate::GroupGate(GroupBook* book, GroupDirectory* directory,
                     SenderKeys* keys, EventSink* events, const Clock& clock,
                     Options options)
    : book_(*book),
      directory_(*directory),
      keys_(*keys),
      events_(*events),
      clock_(clock),
      options_(std::move(options)) {}

bool GroupGate::NeedsFetch(const ChatMessage& message) {
  if (message.group_id.empty()) return false;
  std::optional<KnownGroup> latest = book_.Latest(message.group_id);
  return !latest.has_value() || message.group_version > latest->state.version;
}

absl::StatusOr<GroupVerdict> GroupGate::Admit(const ChatMessage& message) {
  GroupVerdict verdict;
  if (message.group_id.empty()) return verdict;
  const std::string& group_id = message.group_id;
  const int64_t version = message.group_version;
  if (!registry::IsGroupId(group_id) || version < 1 ||
      message.group_state_hash.size() != registry::kGroupHashBytes) {
    return Refuse(message,
                  absl::InvalidArgumentError("its group fields are malformed"));
  }

  std::optional<KnownGroup> latest = book_.Latest(group_id);
  if (!latest.has_value() || version > latest->state.version) {
    absl::Status caught_up = CatchUp(message, latest, &verdict.advanced);
    if (caught_up.code() == absl::StatusCode::kUnavailable) return caught_up;
    if (!caught_up.ok()) return Refuse(message, std::move(caught_up));
    latest = book_.Latest(group_id);
    if (!latest.has_value() || latest->state.version < version) {
      return absl::UnavailableError(
          absl::StrCat("the state of ",
                       latest.has_value() ? latest->state.display_name
                                          : UnknownGroupLabel(group_id),
                       " the message names is not known yet"));
    }
  }
  const std::string& label = latest->state.display_name;

  // Rule 3: the state the sender saw, as verified here.
  std::optional<GroupState> seen = book_.StateAt(group_id, version);
  if (!seen.has_value() && latest->state.version == version) {
    seen = latest->state;
  }
  const bool judged_as_seen = seen.has_value();
  const GroupState judged = judged_as_seen ? *seen : latest->state;
  if (judged_as_seen &&
      registry::GroupStateHash(judged) != message.group_state_hash) {
    // Only a member of the version as we hold it can raise the alarm: a
    // stranger who learnt a group's id must not be able to cry fork.
    if (!registry::GroupMemberKey(judged, message.from).has_value()) {
      return Refuse(message, absl::PermissionDeniedError(absl::StrCat(
                                 message.from, " is not a member of ", label)));
    }
    RaiseForkAlarm(
        group_id, label, version,
        absl::StrCat("a message from ", message.from, " names another"));
    return Refuse(message, absl::FailedPreconditionError(absl::StrCat(
                               "it names another version ", version, " of ",
                               label, " than the one verified here")));
  }

  // Rule 4: a member with the key trusted for it, or the notice's signer.
  const std::optional<PublicKey> trusted = keys_.TrustedKey(message.from);
  if (!trusted.has_value()) {
    return Refuse(message, absl::PermissionDeniedError(absl::StrCat(
                               "no key is trusted for ", message.from)));
  }
  // The state `judged` changed, when held: its owner signed the change, and
  // its members are the ones a change notice is for. For version 1, and
  // when it is not held, `judged` stands in.
  std::optional<GroupState> before;
  if (judged_as_seen && version > 1) {
    before = book_.StateAt(group_id, version - 1);
  }
  const GroupState& signer_state = before.has_value() ? *before : judged;
  const GroupState& vouching = message.group_change ? signer_state : judged;
  if (message.group_change && !SameName(message.from, signer_state.owner)) {
    return Refuse(message,
                  absl::PermissionDeniedError(absl::StrCat(
                      message.from, " did not sign version ", judged.version,
                      " of ", label, ", which its change notice announces")));
  }
  const std::optional<PublicKey> listed =
      registry::GroupMemberKey(vouching, message.from);
  if (!listed.has_value()) {
    return Refuse(message, absl::PermissionDeniedError(absl::StrCat(
                               message.from, " is not a member of ", label)));
  }
  if (*listed != *trusted) {
    return Refuse(message,
                  absl::PermissionDeniedError(absl::StrCat(
                      label, " lists another key for ", message.from, " (",
                      ShortFingerprint(*listed), ") than the one trusted (",
                      ShortFingerprint(*trusted), "); if it changed, /trust ",
                      message.from, " first")),
                  EventKind::kError);
  }
  if (!message.group_change && judged.ended) {
    return Refuse(message, absl::PermissionDeniedError(
                               absl::StrCat(label, " had ended")));
  }

  // Rule 5: the first later state that no longer has the sender decides.
  for (int64_t later = judged.version + 1; later <= latest->state.version;
       ++later) {
    std::optional<GroupState> state = later == latest->state.version
                                          ? std::optional(latest->state)
                                          : book_.StateAt(group_id, later);
    if (!state.has_value() || IsGroupMember(*state, message.from, *trusted)) {
      continue;
    }
    if (message.sent_at != absl::InfinitePast() &&
        message.sent_at <= absl::FromUnixMillis(state->signed_at_unix_ms)) {
      break;
    }
    std::string what;
    if (state->ended) {
      what = absl::StrCat(label, " ended");
    } else if (registry::GroupMemberKey(*state, message.from).has_value()) {
      what = absl::StrCat(message.from, "'s key in ", label, " changed");
    } else {
      what = absl::StrCat(message.from, " was removed from ", label);
    }
    return Refuse(message, absl::PermissionDeniedError(
                               absl::StrCat("it is dated after ", what)));
  }

  // Rule 6: we are in it, or this is the notice that says we no longer are.
  const bool in_group =
      IsGroupMember(latest->state, options_.self.name, options_.self.key);
  const bool notice_to_us =
      message.group_change &&
      Lists(signer_state, options_.self.name, options_.self.key);
  if (!in_group && !notice_to_us) {
    return Refuse(message, absl::PermissionDeniedError(
                               absl::StrCat("you are not in ", label)));
  }

  if (message.group_change && judged_as_seen) {
    if (version == 1) {
      verdict.announced = registry::DiffGroupStates(GroupState(), judged);
    } else if (before.has_value()) {
      verdict.announced = registry::DiffGroupStates(*before, judged);
    }
  }
  verdict.judged_by = judged;
  return verdict;
}

absl::Status GroupGate::CatchUp(const ChatMessage& message,
                                const std::optional<KnownGroup>& known,
                                std::vector<GroupAdvance>* advanced) {
  const std::string& group_id = message.group_id;
  const std::string label = known.has_value() ? known->state.display_name
                                              : UnknownGroupLabel(group_id);
  bool known_group = known.has_value();
  int64_t after = known_group ? known->state.version : 0;
  std::vector<GroupState> fetched;
  for (int page = 0; page < options_.max_fetch_pages; ++page) {
    absl::StatusOr<registry::RegistryClient::GroupStates> got =
        directory_.Get(group_id, after);
    if (!got.ok()) {
      if (got.status().code() == absl::StatusCode::kNotFound && !known_group &&
          fetched.empty()) {
        return absl::PermissionDeniedError(
            absl::StrCat(label, " is held by nobody"));
      }
      return absl::UnavailableError(absl::StrCat(
          "the state of ", label, " the message names cannot be fetched now: ",
          got.status().message()));
    }
    if (got->states.empty()) break;
    for (GroupState& state : got->states) {
      after = std::max(after, state.version);
      fetched.push_back(std::move(state));
    }
    const bool more =
        after < got->latest_version && after < message.group_version;
    // A group not known is handed to the book only once it is seen whole
    // (as far as the message needs), for whether it lists us.
    if (!known_group && more) continue;
    const size_t advances_before = advanced->size();
    CHAT_RETURN_IF_ERROR(
        ApplyFetched(message, known_group, &fetched, advanced));
    known_group = book_.Latest(group_id).has_value();
    if (!known_group) break;  // Nothing of it verified: asking on is no use.
    const std::optional<int64_t> fetch_after =
        advanced->size() > advances_before ? advanced->back().fetch_after
                                           : std::nullopt;
    if (fetch_after.has_value() && *fetch_after < after) {
      after = *fetch_after;  // A gap in what was handed out: ask again.
      continue;
    }
    if (!more) break;
  }
  if (!fetched.empty()) {  // The pages ran out before the group was seen.
    CHAT_RETURN_IF_ERROR(
        ApplyFetched(message, known_group, &fetched, advanced));
  }
  return absl::OkStatus();
}

absl::Status GroupGate::ApplyFetched(const ChatMessage& message,
                                     bool known_group,
                                     std::vector<GroupState>* fetched,
                                     std::vector<GroupAdvance>* advanced) {
  std::vector<GroupState> states = std::move(*fetched);
  fetched->clear();
  if (!known_group &&
      std::none_of(states.begin(), states.end(), [this](const GroupState& s) {
        return Lists(s, options_.self.name, options_.self.key);
      })) {
    return absl::PermissionDeniedError(
        absl::StrCat("you are not in ", UnknownGroupLabel(message.group_id)));
  }
  absl::StatusOr<GroupAdvance> advance = book_.Apply(states, options_.self);
  if (!advance.ok()) {
    if (advance.status().code() == absl::StatusCode::kResourceExhausted) {
      return advance.status();
    }
    return absl::UnavailableError(absl::StrCat(
        "the states of ", UnknownGroupLabel(message.group_id),
        " fetched cannot be kept now: ", advance.status().message()));
  }
  const std::string label = advance->latest.has_value()
                                ? advance->latest->display_name
                                : UnknownGroupLabel(message.group_id);
  for (const GroupFork& fork : advance->forks) {
    RaiseForkAlarm(message.group_id, label, fork.version,
                   "the registry hands out another");
  }
  if (advance->latest.has_value() || advance->fetch_after.has_value()) {
    advanced->push_back(*std::move(advance));
  }
  return absl::OkStatus();
}

void GroupGate::RaiseForkAlarm(const std::string& group_id,
                               const std::string& label, int64_t version,
                               const std::string& detail) {
  {
    absl::MutexLock lock(&mu_);
    if (fork_alarms_.size() >= kForkAlarmsKept) fork_alarms_.clear();
    if (!fork_alarms_.insert(absl::StrCat(group_id, "/", version)).second) {
      return;
    }
  }
  PeerEvent alarm = ErrorEvent(absl::StrCat(
      "group ", label, " has forked: two different states claim version ",
      version, " (", detail, " than the one verified here); nothing of the ",
      "other is taken, and its messages are refused"));
  alarm.detail = group_id;
  events_.OnEvent(alarm);
}

absl::Status GroupGate::Refuse(const ChatMessage& message, absl::Status status,
                               EventKind kind) {
  const MonoTime now = clock_.Monotonic();
  {
    absl::MutexLock lock(&mu_);
    if (refusal_told_.size() >= kRefusalSendersKept) refusal_told_.clear();
    auto [told, first] =
        refusal_told_.try_emplace(registry::NameKey(message.from), now);
    if (!first && now - told->second < kRefusalEvery) return status;
    told->second = now;
  }
  PeerEvent event = MakeEvent(
      kind, message.from, "",
      absl::StrCat("refused a group message from ", message.from, ": ",
                   status.message(),
                   " (not shown; told at most once a minute per sender)"));
  event.detail =
      absl::StrCat(absl::StatusCodeToString(status.code()), " group ",
                   message.group_id, " version ", message.group_version);
  events_.OnEvent(event);
  return status;
}

}  // namespace chat::peer
