#include "tests/bench/floor.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>
#include <utility>
#include <vector>

#include "common/grpc_server.h"
#include "peer/sealing.h"
#include "proto/chat.grpc.pb.h"
#include "tests/bench/floor_parts.h"

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
  Service(std::unique_ptr<FloorFile> file, const PublicKey& sender_key)
      : file_(std::move(file)), cipher_(identity_), sender_key_(sender_key) {}

  const PublicKey& key() const { return identity_.public_key(); }

  grpc::ServerUnaryReactor* SendMessage(grpc::CallbackServerContext* context,
                                        const ::Message* request,
                                        ::NullMsg* /*response*/) override {
    absl::StatusOr<peer::ChatMessage> opened =
        peer::OpenMessage(cipher_, sender_key_, *request, kFloorName);
    if (!opened.ok()) return Respond(context, opened.status());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    file_->Keep(
        "INSERT INTO kept (id, text) VALUES (?1, ?2)",
        [message = *std::move(opened)](SQLite::Statement& insert) {
          insert.bind(1, message.id);
          insert.bind(2, message.text);
        },
        reactor);
    return reactor;
  }

 private:
  const std::unique_ptr<FloorFile> file_;
  const Identity identity_ = Identity::Generate();
  PairCipher cipher_;  // Thread-safe; caches the pair's shared key.
  const PublicKey sender_key_;
};

DurableFloor::DurableFloor(std::string name, std::unique_ptr<Service> service)
    : name_(std::move(name)), service_(std::move(service)) {}

// server_ stops first: the file's writer answers what it still holds.
DurableFloor::~DurableFloor() = default;

absl::StatusOr<std::unique_ptr<DurableFloor>> DurableFloor::Start(
    const std::string& path, bool sync_full,
    std::shared_ptr<grpc::ServerCredentials> credentials,
    const PublicKey& sender_key) {
  absl::StatusOr<std::unique_ptr<FloorFile>> file =
      FloorFile::Open(path, "floor database", sync_full, kFloorSchema);
  if (!file.ok()) return file.status();
  std::unique_ptr<DurableFloor> floor(new DurableFloor(
      kFloorName, std::make_unique<Service>(*std::move(file), sender_key)));
  absl::StatusOr<std::unique_ptr<FloorServer>> server =
      FloorServer::Start(floor->service_.get(), std::move(credentials));
  if (!server.ok()) return server.status();
  floor->server_ = *std::move(server);
  return floor;
}

const PublicKey& DurableFloor::key() const { return service_->key(); }

std::string DurableFloor::target() const { return server_->target(); }

}  // namespace chat::bench
