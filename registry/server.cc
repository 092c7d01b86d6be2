#include "registry/server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/grpc_server.h"
#include "common/log.h"

namespace chat::registry {

absl::StatusOr<std::unique_ptr<RegistryServer>> RegistryServer::Start(
    std::unique_ptr<Store> store, const RegistryServerOptions& options) {
  std::unique_ptr<RegistryServer> registry(
      new RegistryServer(std::move(store)));
  ServerConfig config;
  config.listen_address = options.listen_address;
  config.services = {&registry->service_};
  config.health_names = {kRegistryServiceName};
  absl::StatusOr<RunningServer> running = StartServer(config);
  if (!running.ok()) return running.status();
  registry->server_ = std::move(running->server);
  registry->port_ = running->port;
  registry->expiry_thread_ = std::thread(
      &RegistryServer::ExpiryLoop, registry.get(), options.expiry_interval);
  return registry;
}

RegistryServer::RegistryServer(std::unique_ptr<Store> store)
    : store_(std::move(store)), service_(store_.get()) {}

RegistryServer::~RegistryServer() { Shutdown(); }

std::shared_ptr<grpc::Channel> RegistryServer::InProcessChannel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

void RegistryServer::Shutdown(Millis grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (expiry_thread_.joinable()) expiry_thread_.join();
  store_->CancelWatches();
  if (server_) {
    StopServer(*server_, grace);
    server_->Wait();
  }
  store_.reset();
}

void RegistryServer::ExpiryLoop(Millis interval) {
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                               absl::Milliseconds(interval.count()))) {
    mu_.Unlock();
    absl::StatusOr<std::vector<Entry>> expired = store_->ExpireDue();
    if (!expired.ok()) {
      LogLine("registry", absl::StrCat("expiry failed, will retry: ",
                                       expired.status().message()));
    } else {
      for (const Entry& entry : *expired) {
        LogLine("registry", absl::StrCat("expire ", entry.name, " (was ",
                                         entry.address, ")"));
      }
    }
    mu_.Lock();
  }
}

}  // namespace chat::registry
