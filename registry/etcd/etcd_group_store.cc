#include "registry/etcd/etcd_group_store.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "registry/etcd/group_records.pb.h"
#include "registry/groups/group_store_rules.h"

namespace chat::registry::etcd {
namespace {

// How often one Put reads again and decides again after another registry
// changed what it read. Each round is read-only until it wins, so a loser
// changes nothing; within one registry Puts take turns (write_mu_), so
// rounds are lost only to other registries.
constexpr int kMaxRounds = 32;
// Rounds of one Put whose transaction's outcome was unknown (a member timed
// out), each read and decided again, before the error is answered.
constexpr int kMaxUnknownOutcomes = 3;

// The group keys under a deployment's groups root. Group ids are hex and
// owner keys NameKey()s (never '/'), so both go into keys as they are.
class GroupLayout {
 public:
  explicit GroupLayout(std::string root) : root_(std::move(root)) {}

  std::string Head(const std::string& group_id) const {
    return absl::StrCat(root_, "head/", group_id);
  }
  std::string StatesOf(const std::string& group_id) const {
    return absl::StrCat(root_, "state/", group_id, "/");
  }
  // 16 hex digits, so a group's versions sort by number.
  std::string State(const std::string& group_id, int64_t version) const {
    return StatesOf(group_id) +
           absl::StrFormat("%016x", static_cast<uint64_t>(version));
  }
  std::string Total() const { return root_ + "count/total"; }
  std::string Owner(const std::string& owner_key) const {
    return absl::StrCat(root_, "count/owner/", owner_key);
  }

 private:
  const std::string root_;
};

absl::Status Corrupt(const std::string& key) {
  return absl::DataLossError(
      absl::StrCat("the group store's key ", key, " holds a bad value"));
}

absl::StatusOr<GroupHead> DecodeHead(const KeyValue& kv) {
  v1::GroupHeadValue value;
  if (!value.ParseFromString(kv.value) || value.latest_version() < 1) {
    return Corrupt(kv.key);
  }
  return GroupHead{value.latest_version(), value.owner_key(), value.ended()};
}

absl::StatusOr<StoredGroupState> DecodeState(const std::string& group_id,
                                             const KeyValue& kv) {
  v1::GroupStateValue value;
  const size_t slash = kv.key.rfind('/');
  uint64_t version = 0;
  if (!value.ParseFromString(kv.value) || slash == std::string::npos ||
      !absl::SimpleHexAtoi(kv.key.substr(slash + 1), &version)) {
    return Corrupt(kv.key);
  }
  StoredGroupState state;
  state.group_id = group_id;
  state.version = static_cast<int64_t>(version);
  state.owner_key = value.owner_key();
  state.ended = value.ended();
  state.state = value.state();
  return state;
}

int64_t CountOf(const std::optional<KeyValue>& kv) {
  if (!kv.has_value()) return 0;
  v1::GroupCountValue value;
  if (!value.ParseFromString(kv->value)) return 0;
  return std::max<int64_t>(value.count(), 0);
}

// The compare that holds while `key` is as it was read (absent or not).
Compare Unchanged(const std::string& key, const std::optional<KeyValue>& kv) {
  return kv.has_value() ? Compare::ModifiedAt(key, kv->mod_revision)
                        : Compare::Absent(key);
}

// Writes a counter, or deletes it at zero: an owner with no group leaves no
// key behind.
Op CountOp(const std::string& key, int64_t count) {
  if (count <= 0) return Op::Delete(key);
  v1::GroupCountValue value;
  value.set_count(count);
  return Op::Put(key, value.SerializeAsString());
}

class EtcdGroupStore final : public GroupStore {
 public:
  EtcdGroupStore(EtcdClient* client, std::string root,
                 const GroupStoreLimits& limits)
      : client_(*client), layout_(std::move(root)), limits_(limits) {}

  absl::StatusOr<GroupPutOutcome> Put(const StoredGroupState& next) override {
    CHAT_RETURN_IF_ERROR(ValidateGroupPut(next, limits_));
    absl::MutexLock turn(&write_mu_);
    int unknown_outcomes = 0;
    for (int round = 0; round < kMaxRounds; ++round) {
      // The head, the total and the next owner's count, at one revision.
      CHAT_ASSIGN_OR_RETURN(
          std::vector<std::optional<KeyValue>> read,
          ReadKeys({layout_.Head(next.group_id), layout_.Total(),
                    layout_.Owner(next.owner_key)}));
      std::optional<GroupHead> head;
      if (read[0].has_value()) {
        CHAT_ASSIGN_OR_RETURN(head, DecodeHead(*read[0]));
      }
      // An earlier round's transaction whose outcome was unknown may have
      // stored this very state (and others may have followed it): then it
      // is ours.
      if (unknown_outcomes > 0 && head.has_value() &&
          head->version >= next.version) {
        CHAT_ASSIGN_OR_RETURN(StoredGroupState stored,
                              ReadState(next.group_id, next.version));
        if (stored == next) return GroupPutOutcome{true, {}};
      }
      GroupCounts counts;
      counts.groups = static_cast<size_t>(CountOf(read[1]));
      counts.next_owner_groups = static_cast<size_t>(CountOf(read[2]));
      CHAT_ASSIGN_OR_RETURN(const GroupPutPlan plan,
                            DecideGroupPut(head, next, counts, limits_));
      if (!plan.accept) {
        GroupPutOutcome outcome;
        CHAT_ASSIGN_OR_RETURN(outcome.current,
                              ReadState(next.group_id, head->version));
        return outcome;
      }
      TxnRequest txn;
      txn.compares.push_back(Unchanged(layout_.Head(next.group_id), read[0]));
      if (plan.new_group) {
        txn.compares.push_back(Unchanged(layout_.Total(), read[1]));
        txn.success.push_back(CountOp(layout_.Total(), CountOf(read[1]) + 1));
      }
      if (plan.owner_charged.has_value()) {
        txn.compares.push_back(
            Unchanged(layout_.Owner(next.owner_key), read[2]));
        txn.success.push_back(
            CountOp(layout_.Owner(next.owner_key), CountOf(read[2]) + 1));
      }
      if (plan.owner_released.has_value()) {
        const std::string key = layout_.Owner(*plan.owner_released);
        CHAT_ASSIGN_OR_RETURN(std::vector<std::optional<KeyValue>> released,
                              ReadKeys({key}));
        txn.compares.push_back(Unchanged(key, released[0]));
        txn.success.push_back(CountOp(key, CountOf(released[0]) - 1));
      }
      v1::GroupStateValue state;
      state.set_owner_key(next.owner_key);
      state.set_ended(next.ended);
      state.set_state(next.state);
      txn.success.push_back(Op::Put(layout_.State(next.group_id, next.version),
                                    state.SerializeAsString()));
      v1::GroupHeadValue new_head;
      new_head.set_latest_version(next.version);
      new_head.set_owner_key(next.owner_key);
      new_head.set_ended(next.ended);
      txn.success.push_back(
          Op::Put(layout_.Head(next.group_id), new_head.SerializeAsString()));
      absl::StatusOr<TxnResult> result = client_.Txn(txn);
      if (!result.ok()) {
        if (MaybeApplied(result.status()) &&
            ++unknown_outcomes < kMaxUnknownOutcomes) {
          continue;  // Read again: the next round tells whether it stuck.
        }
        return result.status();
      }
      if (result->succeeded) return GroupPutOutcome{true, {}};
      // Another registry changed what this round read: decide again.
    }
    return absl::UnavailableError(
        absl::StrCat("the group store is too busy: a Put lost ", kMaxRounds,
                     " races with other registries in a row; try again"));
  }

  absl::StatusOr<GroupStatesPage> Get(const std::string& group_id,
                                      int64_t after_version,
                                      int max_states) override {
    CHAT_RETURN_IF_ERROR(ValidateGroupId(group_id));
    CHAT_ASSIGN_OR_RETURN(const int page, GroupPageSize(max_states, limits_));
    CHAT_ASSIGN_OR_RETURN(GroupHead head, ReadHead(group_id));
    GroupStatesPage result;
    result.latest_version = head.version;
    if (after_version >= head.version) return result;
    RangeRequest range;
    range.key =
        layout_.State(group_id, std::max<int64_t>(after_version, 0) + 1);
    range.range_end = PrefixEnd(layout_.StatesOf(group_id));
    range.limit = page;
    CHAT_ASSIGN_OR_RETURN(RangeResult states, client_.Range(range));
    for (const KeyValue& kv : states.kvs) {
      CHAT_ASSIGN_OR_RETURN(StoredGroupState state, DecodeState(group_id, kv));
      // A version stored since the head was read: the latest moved on.
      result.latest_version = std::max(result.latest_version, state.version);
      result.states.push_back(std::move(state));
    }
    return result;
  }

  absl::StatusOr<StoredGroupState> Latest(
      const std::string& group_id) override {
    CHAT_RETURN_IF_ERROR(ValidateGroupId(group_id));
    CHAT_ASSIGN_OR_RETURN(GroupHead head, ReadHead(group_id));
    return ReadState(group_id, head.version);
  }

 private:
  // `keys` in one read-only transaction (one revision), each as found or
  // nullopt.
  absl::StatusOr<std::vector<std::optional<KeyValue>>> ReadKeys(
      const std::vector<std::string>& keys) {
    TxnRequest txn;
    for (const std::string& key : keys) txn.success.push_back(Op::Get(key));
    CHAT_ASSIGN_OR_RETURN(TxnResult result, client_.Txn(txn));
    std::vector<std::optional<KeyValue>> found(keys.size());
    for (size_t i = 0; i < keys.size() && i < result.results.size(); ++i) {
      if (!result.results[i].kvs.empty()) found[i] = result.results[i].kvs[0];
    }
    return found;
  }

  absl::StatusOr<GroupHead> ReadHead(const std::string& group_id) {
    CHAT_ASSIGN_OR_RETURN(
        RangeResult read,
        client_.Range(RangeRequest::Key(layout_.Head(group_id))));
    if (read.kvs.empty()) {
      return absl::NotFoundError(
          absl::StrCat("group ", group_id, " is not held here"));
    }
    return DecodeHead(read.kvs[0]);
  }

  // Version `version` of a group, which its head says is stored (a state
  // is never removed).
  absl::StatusOr<StoredGroupState> ReadState(const std::string& group_id,
                                             int64_t version) {
    const std::string key = layout_.State(group_id, version);
    CHAT_ASSIGN_OR_RETURN(RangeResult read,
                          client_.Range(RangeRequest::Key(key)));
    if (read.kvs.empty()) {
      return absl::DataLossError(absl::StrCat(
          "group ", group_id, " has no state at version ", version));
    }
    return DecodeState(group_id, read.kvs[0]);
  }

  EtcdClient& client_;
  const GroupLayout layout_;
  const GroupStoreLimits limits_;
  // Puts of this registry take turns (see kMaxRounds). Group changes are
  // rare (a membership change, not a message), so one at a time costs
  // little.
  absl::Mutex write_mu_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<GroupStore>> OpenEtcdGroupStore(
    EtcdClient* client, const std::string& root,
    const GroupStoreLimits& limits) {
  if (root.empty()) {
    return absl::InvalidArgumentError("the group store needs an etcd root");
  }
  CHAT_RETURN_IF_ERROR(ValidateGroupStoreLimits(limits));
  std::string with_slash = root;
  if (with_slash.back() != '/') with_slash.push_back('/');
  return std::unique_ptr<GroupStore>(
      new EtcdGroupStore(client, std::move(with_slash), limits));
}

}  // namespace chat::registry::etcd
