#include "tests/bench/floor_parts.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "common/status.h"

namespace chat::bench {

absl::StatusOr<std::unique_ptr<FloorFile>> FloorFile::Open(
    const std::string& path, const std::string& what, bool sync_full,
    std::vector<const char*> schema) {
  SqliteOpenOptions open;
  open.what = what;
  open.program = "chat-bench";
  open.sync_full = sync_full;
  open.migrations = std::move(schema);
  absl::StatusOr<SqliteFile> file = OpenSqlite(path, open);
  if (!file.ok()) return file.status();
  return std::unique_ptr<FloorFile>(new FloorFile(*std::move(file)));
}

FloorFile::FloorFile(SqliteFile file)
    : file_(std::move(file)),
      statements_(file_.db.get()),
      batch_(file_.db.get(), &db_mu_) {}

FloorFile::~FloorFile() {
  batch_.Stop();
  absl::MutexLock lock(&db_mu_);
  statements_.Clear();
}

void FloorFile::Keep(const char* sql,
                     std::function<void(SQLite::Statement&)> bind,
                     grpc::ServerUnaryReactor* reactor) {
  batch_.Post(
      [this, sql, bind = std::move(bind)](SQLite::Database&) {
        db_mu_.AssertHeld();
        ScopedStatement statement(statements_, sql);
        bind(*statement);
        statement->exec();
        return absl::OkStatus();
      },
      [reactor](const absl::Status& status) {
        reactor->Finish(ToGrpcStatus(status));
      });
}

absl::StatusOr<std::unique_ptr<FloorServer>> FloorServer::Start(
    grpc::Service* service,
    std::shared_ptr<grpc::ServerCredentials> credentials) {
  ServerConfig config;
  config.listen_address = "127.0.0.1:0";
  config.credentials = std::move(credentials);
  config.services = {service};
  absl::StatusOr<RunningServer> server = StartServer(config);
  if (!server.ok()) return server.status();
  return std::unique_ptr<FloorServer>(
      new FloorServer(std::move(server->server), server->port));
}

FloorServer::FloorServer(std::unique_ptr<grpc::Server> server, int port)
    : server_(std::move(server)), port_(port) {}

FloorServer::~FloorServer() {
  StopServer(*server_, Millis(1000));
  server_->Wait();
}

std::string FloorServer::target() const {
  return absl::StrCat("127.0.0.1:", port_);
}

}  // namespace chat::bench
