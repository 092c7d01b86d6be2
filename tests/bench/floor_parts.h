// What the bench's floors (floor.h under send, register_floor.h under
// register) share: a file each answer waits on, and a server on loopback.

#ifndef CHAT_TESTS_BENCH_FLOOR_PARTS_H_
#define CHAT_TESTS_BENCH_FLOOR_PARTS_H_

#include <SQLiteCpp/SQLiteCpp.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/sqlite_batch.h"
#include "common/sqlite_util.h"

namespace chat::bench {

// One SQLite file written as the stores write theirs: through the group
// commit (common/sqlite_batch.h: WAL, a savepoint per job), each write
// answered from the after-commit hook. Thread-safe.
class FloorFile {
 public:
  // Opens a new file at `path` with `schema`; `what` names it in errors
  // (kUnavailable when it cannot be opened).
  static absl::StatusOr<std::unique_ptr<FloorFile>> Open(
      const std::string& path, const std::string& what, bool sync_full,
      std::vector<const char*> schema);

  // Commits what is queued.
  ~FloorFile();

  // Runs `sql` (prepared once) with what `bind` binds to it in the next
  // commit, then finishes `reactor` with the commit's outcome. `bind` runs
  // on the writer's thread.
  void Keep(const char* sql, std::function<void(SQLite::Statement&)> bind,
            grpc::ServerUnaryReactor* reactor);

 private:
  explicit FloorFile(SqliteFile file);

  SqliteFile file_;
  absl::Mutex db_mu_;
  SqliteStatements statements_ ABSL_GUARDED_BY(db_mu_);
  SqliteBatch batch_;  // Last: its writer uses the above.
};

// A floor's server on 127.0.0.1, a free port. Stops on destruction (calls
// in flight get a second), so hold it after what its services use.
class FloorServer {
 public:
  // Serves `service` (not owned; must outlive this) with `credentials`
  // (null: plaintext). kUnavailable when it cannot listen.
  static absl::StatusOr<std::unique_ptr<FloorServer>> Start(
      grpc::Service* service,
      std::shared_ptr<grpc::ServerCredentials> credentials);

  ~FloorServer();

  std::string target() const;  // "127.0.0.1:PORT"

 private:
  FloorServer(std::unique_ptr<grpc::Server> server, int port);

  std::unique_ptr<grpc::Server> server_;
  const int port_;
};

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_FLOOR_PARTS_H_
