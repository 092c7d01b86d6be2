// The floor under `register`: a Registry service whose Register does only
// what any name server that binds names to keys and keeps them must do, so
// that what `register` costs above it is the price of the registry's rules.
// Each Register's chat-register-v2 proof is checked (one Ed25519
// verification), and the name is written as one row of one table keyed by
// the name (its key, address and a new lease id) through the registry's
// group commit (common/sqlite_batch.h: WAL, a savepoint per job,
// synchronous=NORMAL as chat-registry runs), and answered from the
// after-commit hook, as the registry answers. Not kept: who may take a name
// (holder, binding, reservation, quotas), whether the proof is fresh, the
// in-memory index, watchers, expiry. Every other method is unimplemented.

#ifndef CHAT_TESTS_BENCH_REGISTER_FLOOR_H_
#define CHAT_TESTS_BENCH_REGISTER_FLOOR_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/bench/floor_parts.h"

namespace chat::bench {

// Thread-safe once started.
class RegisterFloor {
 public:
  // Serves on 127.0.0.1 (a free port) with `credentials` (null: plaintext)
  // and keeps names in a new SQLite file at `path`. Errors: kUnavailable
  // when the file cannot be opened or the server cannot listen.
  static absl::StatusOr<std::unique_ptr<RegisterFloor>> Start(
      const std::string& path,
      std::shared_ptr<grpc::ServerCredentials> credentials);

  // Stops the server, then commits what is queued.
  ~RegisterFloor();

  std::string target() const;  // "127.0.0.1:PORT"

 private:
  class Service;
  explicit RegisterFloor(std::unique_ptr<Service> service);

  std::unique_ptr<Service> service_;
  std::unique_ptr<FloorServer> server_;  // After service_: stops first.
};

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_REGISTER_FLOOR_H_
