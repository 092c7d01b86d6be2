// The group book's SQLite side (table `groups`), with every group known
// kept in memory as well (at most max_groups). For peer/*_sqlite.cc only.

#ifndef CHAT_PEER_GROUP_BOOK_SQLITE_H_
#define CHAT_PEER_GROUP_BOOK_SQLITE_H_

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

  // Every group the file holds. A row that does not parse is left out (the
  // group is learnt again from its first version). May throw
  // SQLite::Exception.
  static Known Load(SQLite::Database& db);

  SqliteGroupBook(PeerFile* file, Known known)
      : file_(file), known_(std::move(known)) {}

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
  Known known_ ABSL_GUARDED_BY(mu_);  // As committed.
};

}  // namespace chat::peer

#endif  // CHAT_PEER_GROUP_BOOK_SQLITE_H_
