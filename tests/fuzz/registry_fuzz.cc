// Fuzzes the registry's request handling through its service adapters
// (registry/server/service.cc, registry/server/mailbox_service.cc): bytes
// become requests to a real RegistryServer (in-memory store and mailbox) over
// its in-process channel, decoded by gRPC and handled as any client's would be.
// Two servers run: one that needs a key and its proof to register (as
// chat-registry does), one that does not (so the store's rules are reached
// without one).
//
// Input: byte 0 picks the method, byte 1 holds flags, the rest is the
// request. Flags:
//   1  the keyless server
//   2  the admin token is sent (PutStatic, RemoveStatic, Release)
//   4  structured: the rest must parse as the method's request, which is
//      then completed as a real client would: a lease id the registry
//      granted for that name earlier in this run, and for Register on the
//      keyed server a real proof (challenge asked, signed with a key).
//      Without it the bytes go as they are, parsable or not.
// Every call must end (deadline 10 s) with a status; a structured request
// never ends in UNKNOWN or INTERNAL (an exception, a bug).

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/identity.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "proto/registry.grpc.pb.h"
#include "registry/groups/sqlite_group_store.h"
#include "registry/mailbox/sqlite_mailbox.h"
#include "registry/names.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;

constexpr char kAdminToken[] = "fuzz-admin-token";

void Check(bool condition) {
  if (!condition) std::abort();
}

struct Method {
  const char* service;
  const char* name;
  bool streaming;
};

constexpr Method kMethods[] = {
    {"chat.registry.v1.Registry", "Register", false},
    {"chat.registry.v1.Registry", "Challenge", false},
    {"chat.registry.v1.Registry", "GetBinding", false},
    {"chat.registry.v1.Registry", "Release", false},
    {"chat.registry.v1.Registry", "KeepAlive", false},
    {"chat.registry.v1.Registry", "Unregister", false},
    {"chat.registry.v1.Registry", "Resolve", false},
    {"chat.registry.v1.Registry", "List", false},
    {"chat.registry.v1.Registry", "Watch", true},
    {"chat.registry.v1.Registry", "PutStatic", false},
    {"chat.registry.v1.Registry", "RemoveStatic", false},
    {"chat.registry.v1.Mailbox", "Deposit", false},
    {"chat.registry.v1.Mailbox", "Listen", true},
    {"chat.registry.v1.Mailbox", "Ack", false},
    {"chat.registry.v1.Mailbox", "Stat", false},
    {"chat.registry.v1.Groups", "PutGroupState", false},
    {"chat.registry.v1.Groups", "GetGroupStates", false},
};
constexpr size_t kMethodCount = sizeof(kMethods) / sizeof(kMethods[0]);

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

// One registry and what the fuzzer learnt from it.
struct Registry {
  std::unique_ptr<chat::registry::RegistryServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
  std::unique_ptr<chat::registry::v1::Registry::Stub> typed;
  // Name key -> the lease the registry granted for it (bounded).
  absl::flat_hash_map<std::string, std::string> leases;
};

struct World {
  Registry registries[2];  // [0] needs keys, [1] does not.
  chat::Identity identity = chat::Identity::Generate();
};

std::unique_ptr<chat::registry::RegistryServer> StartServer(bool require_key) {
  const chat::Clock& clock = chat::RealClock();
  auto store = chat::registry::OpenSqliteStore(":memory:", clock);
  Check(store.ok());
  auto mailbox = chat::registry::OpenSqliteMailbox(":memory:", clock);
  Check(mailbox.ok());
  auto groups = chat::registry::OpenSqliteGroupStore(":memory:");
  Check(groups.ok());
  chat::registry::RegistryServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.admin_token = kAdminToken;
  options.require_key = require_key;
  auto server = chat::registry::RegistryServer::Start(
      *std::move(store), *std::move(mailbox), *std::move(groups), options);
  Check(server.ok());
  return *std::move(server);
}

// Made on first use, never destroyed (the fuzzer exits without returning).
World& TheWorld() {
  static World* world = [] {
    auto* w = new World;
    for (int k = 0; k < 2; ++k) {
      Registry& r = w->registries[k];
      r.server = StartServer(/*require_key=*/k == 0);
      r.channel = r.server->InProcessChannel();
      r.stub = std::make_unique<grpc::GenericStub>(r.channel);
      r.typed = chat::registry::v1::Registry::NewStub(r.channel);
    }
    return w;
  }();
  return *world;
}

const MethodDescriptor* Describe(const Method& method) {
  const auto* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          method.service);
  Check(service != nullptr);
  const MethodDescriptor* found = service->FindMethodByName(method.name);
  Check(found != nullptr);
  return found;
}

std::unique_ptr<Message> NewMessage(const Descriptor* type) {
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type);
  Check(prototype != nullptr);
  return std::unique_ptr<Message>(prototype->New());
}

std::string StringField(const Message& message, const char* name) {
  const FieldDescriptor* field = message.GetDescriptor()->FindFieldByName(name);
  if (field == nullptr || field->type() != FieldDescriptor::TYPE_STRING ||
      field->is_repeated()) {
    return "";
  }
  return message.GetReflection()->GetString(message, field);
}

// Completes `request` as a client holding what this run learnt would.
void Complete(World& world, Registry& registry, bool keyed,
              const std::string& method, Message& request) {
  const std::string name = StringField(request, "name");
  const FieldDescriptor* lease_field =
      request.GetDescriptor()->FindFieldByName("lease_id");
  if (lease_field != nullptr && !lease_field->is_repeated()) {
    auto it = registry.leases.find(chat::registry::NameKey(name));
    if (it != registry.leases.end() &&
        (method != "Register" ||
         request.GetReflection()->GetString(request, lease_field) == "L")) {
      request.GetReflection()->SetString(&request, lease_field, it->second);
    }
  }
  if (method == "Register" && keyed) {
    auto& req = static_cast<chat::registry::v1::RegisterRequest&>(request);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    chat::registry::v1::ChallengeRequest ask;
    ask.set_name(req.name());
    chat::registry::v1::ChallengeResponse challenge;
    if (!registry.typed->Challenge(&context, ask, &challenge).ok()) return;
    const chat::PublicKey& key = world.identity.public_key();
    req.set_public_key(key.Bytes());
    req.set_challenge(challenge.challenge());
    req.set_signature(world.identity.Sign(chat::RegistrationProofMessage(
        req.name(), req.address(), challenge.challenge(), key)));
  }
}

// Remembers the lease a Register granted.
void Learn(Registry& registry, const std::string& method,
           const std::string& response) {
  if (method != "Register") return;
  chat::registry::v1::RegisterResponse granted;
  if (!granted.ParseFromString(response) || granted.lease_id().empty()) return;
  if (registry.leases.size() >= 1000) registry.leases.clear();
  registry.leases[chat::registry::NameKey(granted.entry().name())] =
      granted.lease_id();
}

bool Next(grpc::CompletionQueue& cq) {
  void* tag = nullptr;
  bool ok = false;
  Check(cq.Next(&tag, &ok));
  return ok;
}

grpc::Status Unary(Registry& registry, grpc::ClientContext& context,
                   const std::string& path, const std::string& request,
                   std::string* response) {
  grpc::CompletionQueue cq;
  grpc::ByteBuffer answer;
  grpc::Status status;
  auto call =
      registry.stub->PrepareUnaryCall(&context, path, ToBuffer(request), &cq);
  call->StartCall();
  call->Finish(&answer, &status, nullptr);
  Next(cq);
  if (status.ok()) *response = FromBuffer(answer);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// A server stream: reads what is there (the snapshot up to SYNCED for
// Watch; for Listen as many items as Stat says wait), then cancels.
grpc::Status Stream(Registry& registry, grpc::ClientContext& context,
                    const std::string& method, const std::string& path,
                    const std::string& request) {
  size_t expect = 0;
  if (method == "Listen") {
    chat::registry::v1::ListenRequest listen;
    if (listen.ParseFromString(request)) {
      auto mail = chat::registry::v1::Mailbox::NewStub(registry.channel);
      grpc::ClientContext stat_context;
      stat_context.set_deadline(std::chrono::system_clock::now() +
                                std::chrono::seconds(10));
      chat::registry::v1::StatRequest ask;
      ask.set_name(listen.name());
      chat::registry::v1::StatResponse stat;
      if (mail->Stat(&stat_context, ask, &stat).ok()) {
        expect = static_cast<size_t>(std::min<int64_t>(stat.count(), 64));
      }
    }
  }
  grpc::CompletionQueue cq;
  auto call = registry.stub->PrepareCall(&context, path, &cq);
  call->StartCall(nullptr);
  bool ok = Next(cq);
  if (ok) {
    call->Write(ToBuffer(request), nullptr);
    ok = Next(cq);
  }
  if (ok) {
    call->WritesDone(nullptr);
    ok = Next(cq);
  }
  // Listen on a lease that holds nothing waits for new mail: do not wait.
  const size_t limit = method == "Watch" ? 100000 : expect;
  for (size_t read = 0; ok && read < limit; ++read) {
    grpc::ByteBuffer buffer;
    call->Read(&buffer, nullptr);
    ok = Next(cq);
    if (ok && method == "Watch") {
      chat::registry::v1::WatchEvent event;
      if (event.ParseFromString(FromBuffer(buffer)) &&
          event.type() == chat::registry::v1::WatchEvent::SYNCED) {
        break;
      }
    }
  }
  context.TryCancel();
  grpc::Status status;
  call->Finish(&status, nullptr);
  Next(cq);
  cq.Shutdown();
  void* tag;
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // libprotobuf logs each string field of invalid UTF-8 it parses (the
  // overload track rate-limits that in the binaries); here it is only noise.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& world = TheWorld();
  if (size < 2) return 0;
  const Method& method = kMethods[data[0] % kMethodCount];
  const uint8_t flags = data[1];
  const bool keyed = (flags & 1) == 0;
  const bool admin = (flags & 2) != 0;
  const bool structured = (flags & 4) != 0;
  Registry& registry = world.registries[keyed ? 0 : 1];
  std::string request(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::string path =
      std::string("/") + method.service + "/" + method.name;

  if (structured) {
    std::unique_ptr<Message> parsed =
        NewMessage(Describe(method)->input_type());
    if (!parsed->ParseFromString(request)) return 0;
    Complete(world, registry, keyed, method.name, *parsed);
    request = parsed->SerializeAsString();
  }

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  if (admin) {
    context.AddMetadata("authorization", std::string("Bearer ") + kAdminToken);
  }
  grpc::Status status;
  if (method.streaming) {
    status = Stream(registry, context, method.name, path, request);
  } else {
    std::string response;
    status = Unary(registry, context, path, request, &response);
    if (status.ok()) Learn(registry, method.name, response);
  }
  // A call always ends; only a cancelled stream may say CANCELLED.
  Check(status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED);
  if (structured) {
    Check(status.error_code() != grpc::StatusCode::UNKNOWN);
    Check(status.error_code() != grpc::StatusCode::INTERNAL);
  }
  return 0;
}
