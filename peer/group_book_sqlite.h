// The group book's SQLite side (tables `groups`, the latest state of each
// group, and `group_states`, every state verified), with all of it kept in
// memory as well (at most max_groups groups; every version of each, as
// StateAt answers from memory). For peer/*_sqlite.cc only.

#ifndef CHAT_PEER_GROUP_BOOK_SQLITE_H_
#define CHAT_PEER_GROUP_BOOK_SQLITE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "peer/group_book.h"
#include "peer/peer_file_sqlite.h"

namespace chat::peer {

class SqliteGroupBook final : public GroupBook {
 public:
  using Known = std::map<std::string, KnownGroup>;  // By group id.
  // By group id, then version.
  using Verified =
      std::map<std::string, std::map<int64_t, registry::GroupState>>;
  struct Loaded {
    Known known;
    Verified verified;  // Each group's latest among them.
  };

  // Every group the file holds, and every state verified of each. A row
  // that does not parse is left out (the group is learnt again from its
  // first version; a state of the past is not known). May throw
  // SQLite::Exception.
  static Loaded Load(SQLite::Database& db);

  SqliteGroupBook(PeerFile* file, Loaded loaded)
      : file_(file),
        known_(std::move(loaded.known)),
        verified_(std::move(loaded.verified)) {}

  absl::StatusOr<GroupAdvance> Apply(
      const std::vector<registry::GroupState>& states,
      const registry::GroupMember& self) override;
  bool IsMember(const std::string& group_id, const std::string& name,
                const PublicKey& key) override;
  std::optional<registry::GroupState> StateAt(const std::string& group_id,
                                              int64_t version) override;
  std::optional<KnownGroup> Latest(const std::string& group_id) override;
  std::vector<KnownGroup> List() override;
  std::vector<KnownGroup> ByDisplayName(
      const std::string& display_name) override;

 private:
  PeerFile* const file_;
  // One Apply at a time, from reading what is known to storing what
  // follows (held across the commit; never while holding mu_).
  absl::Mutex apply_mu_;
  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(apply_mu_);
  Known known_ ABSL_GUARDED_BY(mu_);        // As committed.
  Verified verified_ ABSL_GUARDED_BY(mu_);  // As committed.
};

}  // namespace chat::peer

#endif  // CHAT_PEER_GROUP_BOOK_SQLITE_H_
