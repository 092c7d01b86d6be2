// The floor under `send` (docs/benchmarks-history.md, "The floor under send"):
// a ChattingService that does only what any receiver that keeps its messages
// must do, so that what `send` costs above it is the price of what a peer
// does besides. Each SendMessage is opened (sealed for this server's key by
// the bench's own sender) and written as one row of one table, keyed by its
// row id only, through the peers' group commit (common/sqlite_batch.h: WAL,
// a savepoint per job, the peers' synchronous mode), and answered from the
// after-commit hook, as a peer answers. Not kept: the id for duplicates, the
// order of a conversation, the shown mark, the history, the read note. Never
// trimmed either: a bench run of minutes leaves some hundred thousand rows
// in the lab's scratch directory, which goes with the lab.

#ifndef CHAT_TESTS_BENCH_FLOOR_H_
#define CHAT_TESTS_BENCH_FLOOR_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/identity.h"
#include "tests/bench/floor_parts.h"

namespace chat::bench {

// Thread-safe once started.
class DurableFloor {
 public:
  // Serves on 127.0.0.1 (a free port) with `credentials` (null:
  // plaintext) and keeps messages in a new SQLite file at `path`; takes
  // messages from `sender_name` sealed by `sender_key` for name(). Errors:
  // kUnavailable when the file cannot be opened or the server cannot listen.
  static absl::StatusOr<std::unique_ptr<DurableFloor>> Start(
      const std::string& path, bool sync_full,
      std::shared_ptr<grpc::ServerCredentials> credentials,
      const PublicKey& sender_key);

  // Stops the server, then commits what is queued.
  ~DurableFloor();

  const std::string& name() const { return name_; }
  const PublicKey& key() const;
  std::string target() const;  // "127.0.0.1:PORT"

 private:
  class Service;
  DurableFloor(std::string name, std::unique_ptr<Service> service);

  const std::string name_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<FloorServer> server_;  // After service_: stops first.
};

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_FLOOR_H_
