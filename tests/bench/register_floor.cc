#include "tests/bench/register_floor.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>
#include <utility>
#include <vector>

#include "common/grpc_server.h"
#include "common/identity.h"
#include "common/random.h"
#include "proto/registry.grpc.pb.h"
#include "tests/bench/floor_parts.h"

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
  explicit Service(std::unique_ptr<FloorFile> file) : file_(std::move(file)) {}

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
    file_->Keep(
        "INSERT OR REPLACE INTO names (name, address, public_key, lease_id) "
        "VALUES (?1, ?2, ?3, ?4)",
        [kept = std::move(kept)](SQLite::Statement& upsert) {
          upsert.bind(1, kept.name);
          upsert.bind(2, kept.address);
          upsert.bind(3, kept.public_key.data(),
                      static_cast<int>(kept.public_key.size()));
          upsert.bind(4, kept.lease_id);
        },
        reactor);
    return reactor;
  }

 private:
  const std::unique_ptr<FloorFile> file_;
};

RegisterFloor::RegisterFloor(std::unique_ptr<Service> service)
    : service_(std::move(service)) {}

// server_ stops first: the file's writer answers what it still holds.
RegisterFloor::~RegisterFloor() = default;

absl::StatusOr<std::unique_ptr<RegisterFloor>> RegisterFloor::Start(
    const std::string& path,
    std::shared_ptr<grpc::ServerCredentials> credentials) {
  // synchronous=NORMAL: chat-registry's default.
  absl::StatusOr<std::unique_ptr<FloorFile>> file =
      FloorFile::Open(path, "register floor database", /*sync_full=*/false,
                      kRegisterFloorSchema);
  if (!file.ok()) return file.status();
  std::unique_ptr<RegisterFloor> floor(
      new RegisterFloor(std::make_unique<Service>(*std::move(file))));
  absl::StatusOr<std::unique_ptr<FloorServer>> server =
      FloorServer::Start(floor->service_.get(), std::move(credentials));
  if (!server.ok()) return server.status();
  floor->server_ = *std::move(server);
  return floor;
}

std::string RegisterFloor::target() const { return server_->target(); }

}  // namespace chat::bench
