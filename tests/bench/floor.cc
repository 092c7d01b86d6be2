#include "tests/bench/floor.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "common/sqlite_batch.h"
#include "common/sqlite_util.h"
#include "common/status.h"
#include "peer/sealing.h"
#include "proto/chat.grpc.pb.h"

namespace chat::bench {
namespace {

constexpr char kFloorName[] = "bench-floor";

const std::vector<const char*> kFloorSchema = {
    "CREATE TABLE kept (n INTEGER PRIMARY KEY, id TEXT NOT NULL, "
    "text TEXT NOT NULL)",
};

}  // namespace

class DurableFloor::Service final : public ::ChattingService::CallbackService {
 public:
  Service(SqliteFile file, const PublicKey& sender_key)
      : file_(std::move(file)),
        cipher_(identity_),
        sender_key_(sender_key),
        statements_(file_.db.get()),
        batch_(file_.db.get(), &db_mu_) {}

  ~Service() override {
    batch_.Stop();
    absl::MutexLock lock(&db_mu_);
    statements_.Clear();
  }

  const PublicKey& key() const { return identity_.public_key(); }

  grpc::ServerUnaryReactor* SendMessage(grpc::CallbackServerContext* context,
                                        const ::Message* request,
                                        ::NullMsg* /*response*/) override {
    absl::StatusOr<peer::ChatMessage> opened =
        peer::OpenMessage(cipher_, sender_key_, *request, kFloorName);
    if (!opened.ok()) return Respond(context, opened.status());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    batch_.Post(
        [this, message = *std::move(opened)](SQLite::Database&) {
          db_mu_.AssertHeld();
          ScopedStatement insert(statements_,
                                 "INSERT INTO kept (id, text) VALUES (?1, ?2)");
          insert->bind(1, message.id);
          insert->bind(2, message.text);
          insert->exec();
          return absl::OkStatus();
        },
        [reactor](const absl::Status& status) {
          reactor->Finish(ToGrpcStatus(status));
        });
    return reactor;
  }

 private:
  SqliteFile file_;
  const Identity identity_ = Identity::Generate();
  PairCipher cipher_;  // Thread-safe; caches the pair's shared key.
  const PublicKey sender_key_;
  absl::Mutex db_mu_;
  SqliteStatements statements_ ABSL_GUARDED_BY(db_mu_);
  SqliteBatch batch_;  // Last: its writer uses the above.
};

DurableFloor::DurableFloor(std::string name, std::unique_ptr<Service> service)
    : name_(std::move(name)), service_(std::move(service)) {}

DurableFloor::~DurableFloor() {
  // The writer answers what the server still holds, so it stops second.
  if (server_ != nullptr) {
    StopServer(*server_, Millis(1000));
    server_->Wait();
  }
}

absl::StatusOr<std::unique_ptr<DurableFloor>> DurableFloor::Start(
    const std::string& path, bool sync_full,
    std::shared_ptr<grpc::ServerCredentials> credentials,
    const PublicKey& sender_key) {
  SqliteOpenOptions open;
  open.what = "floor database";
  open.program = "chat-bench";
  open.sync_full = sync_full;
  open.migrations = kFloorSchema;
  absl::StatusOr<SqliteFile> file = OpenSqlite(path, open);
  if (!file.ok()) return file.status();
  std::unique_ptr<DurableFloor> floor(new DurableFloor(
      kFloorName, std::make_unique<Service>(*std::move(file), sender_key)));
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

const PublicKey& DurableFloor::key() const { return service_->key(); }

std::string DurableFloor::target() const {
  return absl::StrCat("127.0.0.1:", port_);
}

}  // namespace chat::bench
