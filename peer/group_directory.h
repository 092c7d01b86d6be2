// Where a peer's groups are sequenced: the registry's Groups service, seen
// through the two calls the peer makes of it, so the parts that change and
// check groups are tested against a fake sequencer.

#ifndef CHAT_PEER_GROUP_DIRECTORY_H_
#define CHAT_PEER_GROUP_DIRECTORY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "registry/client/registry_client.h"
#include "registry/groups/group_state.h"

namespace chat::peer {

// Thread-safe. Errors: those of the calls (kUnavailable when the registry
// cannot be reached), as RegistryClient says.
class GroupDirectory {
 public:
  virtual ~GroupDirectory() = default;

  // Offers `state` (signed) as its group's next version: accepted, or the
  // group's current state to re-base on (RegistryClient::PutGroupState).
  virtual absl::StatusOr<registry::RegistryClient::GroupPut> Put(
      const registry::GroupState& state) = 0;

  // One page of the versions of `group_id` after `after_version`, oldest
  // first, and the latest version (RegistryClient::GetGroupStates); the
  // chain is the caller's to check. kNotFound for a group not held.
  virtual absl::StatusOr<registry::RegistryClient::GroupStates> Get(
      const std::string& group_id, int64_t after_version) = 0;
};

// The registry's Groups service through `client` (not owned; outlives this).
class RegistryGroupDirectory final : public GroupDirectory {
 public:
  explicit RegistryGroupDirectory(registry::RegistryClient* client)
      : client_(*client) {}

  absl::StatusOr<registry::RegistryClient::GroupPut> Put(
      const registry::GroupState& state) override {
    return client_.PutGroupState(state);
  }
  absl::StatusOr<registry::RegistryClient::GroupStates> Get(
      const std::string& group_id, int64_t after_version) override {
    return client_.GetGroupStates(group_id, after_version);
  }

 private:
  registry::RegistryClient& client_;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_GROUP_DIRECTORY_H_
