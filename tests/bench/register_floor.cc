#include "tests/bench/register_floor.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "common/identity.h"
#include "common/random.h"
#include "common/sqlite_batch.h"
#include "common/sqlite_util.h"
#include "common/status.h"
#include "proto/registry.grpc.pb.h"

namespace chat::bench {
namespace {

// What the registry grants when a request asks for its default.
constexpr int64_t kFloorTtlMs = 10000;

const std::vector<const char*> kRegisterFloorSchema = {
    "CREATE TABLE names (name TEXT PRIMARY KEY NOT NULL, "
    "address TEXT NOT NULL, public_key BLOB NOT NULL, "
    "lease_id TEXT NOT NULL) WITHOUT ROWID",
};

struct KeptName {
  std::string name;
  std::string address;
  std::string public_key;
  std::string lease_id;
};

}  // namespace

class RegisterFloor::Service final
    : public registry::v1::Registry::CallbackService {
 public:
  explicit Service(SqliteFile file)
      : file_(std::move(file)),
        statements_(file_.db.get()),
        batch_(file_.db.get(), &db_mu_) {}

  ~Service() override {
    batch_.Stop();
    absl::MutexLock lock(&db_mu_);
    statements_.Clear();
  }

  grpc::ServerUnaryReactor* Register(
      grpc::CallbackServerContext* context,
      const registry::v1::RegisterRequest* request,
      registry::v1::RegisterResponse* response) override {
    absl::StatusOr<PublicKey> key = PublicKey::FromBytes(request->public_key());
    if (!key.ok()) return Respond(context, key.status());
    if (!VerifyTimedRegistrationProof(request->name(), request->address(), *key,
                                      request->proof_unix_ms(),
                                      request->signature())) {
      return Respond(context, absl::UnauthenticatedError(
                                  "signature is not public_key's signature of "
                                  "this name, address and proof_unix_ms"));
    }
    KeptName kept{request->name(), request->address(), request->public_key(),
                  RandomHex(16)};
    response->set_lease_id(kept.lease_id);
    response->set_ttl_ms(request->ttl_ms() > 0 ? request->ttl_ms()
                                               : kFloorTtlMs);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    batch_.Post(
        [this, kept = std::move(kept)](SQLite::Database&) {
          db_mu_.AssertHeld();
          ScopedStatement upsert(
              statements_,
              "INSERT OR REPLACE INTO names (name, address, public_key, "
              "lease_id) VALUES (?1, ?2, ?3, ?4)");
          upsert->bind(1, kept.name);
          upsert->bind(2, kept.address);
          upsert->bind(3, kept.public_key.data(),
                       static_cast<int>(kept.public_key.size()));
          upsert->bind(4, kept.lease_id);
          upsert->exec();
          return absl::OkStatus();
        },
        [reactor](const absl::Status& status) {
          reactor->Finish(ToGrpcStatus(status));
        });
    return reactor;
  }

 private:
  SqliteFile file_;
  absl::Mutex db_mu_;
  SqliteStatements statements_ ABSL_GUARDED_BY(db_mu_);
  SqliteBatch batch_;  // Last: its writer uses the above.
};

RegisterFloor::RegisterFloor(std::unique_ptr<Service> service)
    : service_(std::move(service)) {}

RegisterFloor::~RegisterFloor() {
  // The writer answers what the server still holds, so it stops second.
  if (server_ != nullptr) {
    StopServer(*server_, Millis(1000));
    server_->Wait();
  }
}

absl::StatusOr<std::unique_ptr<RegisterFloor>> RegisterFloor::Start(
    const std::string& path,
    std::shared_ptr<grpc::ServerCredentials> credentials) {
  SqliteOpenOptions open;
  open.what = "register floor database";
  open.program = "chat-bench";
  open.sync_full = false;  // chat-registry's default.
  open.migrations = kRegisterFloorSchema;
  absl::StatusOr<SqliteFile> file = OpenSqlite(path, open);
  if (!file.ok()) return file.status();
  std::unique_ptr<RegisterFloor> floor(
      new RegisterFloor(std::make_unique<Service>(*std::move(file))));
  ServerConfig config;
  config.listen_address = "127.0.0.1:0";
  config.credentials = std::move(credentials);
  config.services = {floor->service_.get()};
  absl::StatusOr<RunningServer> server = StartServer(config);
  if (!server.ok()) return server.status();
  floor->server_ = std::move(server->server);
  floor->port_ = server->port;
  return floor;
}

std::string RegisterFloor::target() const {
  return absl::StrCat("127.0.0.1:", port_);
}

}  // namespace chat::bench
