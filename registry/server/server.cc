#include "registry/server/server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/grpc_server.h"
#include "common/log.h"

namespace chat::registry {

absl::StatusOr<std::unique_ptr<RegistryServer>> RegistryServer::Start(
    std::unique_ptr<Store> store, std::unique_ptr<Mailbox> mailbox,
    std::unique_ptr<GroupStore> groups, const RegistryServerOptions& options) {
  std::unique_ptr<RegistryServer> registry(new RegistryServer(
      std::move(store), std::move(mailbox), std::move(groups), options));
  ServerConfig config;
  config.listen_address = options.listen_address;
  config.services = {&registry->service_};
  config.health_names = {kRegistryServiceName};
  config.max_streams_per_connection =
      options.overload.max_streams_per_connection;
  config.credentials = options.credentials;
  if (registry->mailbox_service_ != nullptr) {
    config.services.push_back(registry->mailbox_service_.get());
    config.health_names.push_back(kMailboxServiceName);
  }
  if (registry->groups_service_ != nullptr) {
    config.services.push_back(registry->groups_service_.get());
    config.health_names.push_back(kGroupsServiceName);
  }
  SupervisorOptions supervisor;
  supervisor.on_event = [](const std::string& line) {
    LogLine("registry", line);
  };
  absl::StatusOr<std::unique_ptr<SupervisedServer>> running =
      SupervisedServer::Start(config, std::move(supervisor));
  if (!running.ok()) return running.status();
  registry->server_ = *std::move(running);
  RegistryServer* raw = registry.get();
  registry->lease_expiry_.emplace(
      *options.clock, options.expiry_interval,
      [raw, interval = options.expiry_interval]() -> std::optional<Millis> {
        raw->ExpireLeases();
        return interval;
      });
  if (registry->mailbox_ != nullptr) {
    registry->mail_expiry_.emplace(
        *options.clock, options.mail_expiry_interval,
        [raw,
         interval = options.mail_expiry_interval]() -> std::optional<Millis> {
          raw->ExpireMail();
          return interval;
        });
  }
  return registry;
}

RegistryServer::RegistryServer(std::unique_ptr<Store> store,
                               std::unique_ptr<Mailbox> mailbox,
                               std::unique_ptr<GroupStore> groups,
                               const RegistryServerOptions& options)
    : store_(std::move(store)),
      mailbox_(std::move(mailbox)),
      groups_(std::move(groups)),
      challenges_(*options.clock, options.challenges),
      gate_(options.overload),
      service_(store_.get(), &challenges_,
               RegistryServiceOptions{options.admin_token, options.require_key,
                                      &gate_, options.streams}) {
  if (mailbox_ != nullptr) {
    mailbox_service_ = std::make_unique<MailboxService>(
        store_.get(), mailbox_.get(), &gate_, options.streams);
  }
  if (groups_ != nullptr) {
    groups_service_ = std::make_unique<GroupsService>(
        store_.get(), groups_.get(), options.groups, &gate_);
  }
}

RegistryServer::~RegistryServer() { Shutdown(); }

std::shared_ptr<grpc::Channel> RegistryServer::InProcessChannel() {
  return server_->InProcessChannel();
}

void RegistryServer::Shutdown(Millis grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (lease_expiry_) lease_expiry_->Stop();
  if (mail_expiry_) mail_expiry_->Stop();
  store_->CancelWatches();
  if (server_) server_->Stop(grace);
  // What the gate did over the process's life: how an operator (and the
  // overload benchmark) tells shed load from served load.
  const CallGate::Counts counts = gate_.counts();
  LogLine("registry", absl::StrCat("overload: calls admitted ", counts.admitted,
                                   ", dropped past their deadline ",
                                   counts.expired, ", shed late ", counts.shed,
                                   ", refused at --max-calls-in-progress ",
                                   counts.refused));
  mailbox_service_.reset();
  mailbox_.reset();
  groups_service_.reset();
  groups_.reset();
  store_.reset();
}

void RegistryServer::ExpireLeases() {
  absl::StatusOr<std::vector<Entry>> expired = store_->ExpireDue();
  if (!expired.ok()) {
    LogLine("registry", absl::StrCat("expiry failed, will retry: ",
                                     expired.status().message()));
    return;
  }
  for (const Entry& entry : *expired) {
    LogLine("registry",
            absl::StrCat("expire ", entry.name, " (was ", entry.address, ")"));
  }
}

void RegistryServer::ExpireMail() {
  absl::StatusOr<size_t> removed = mailbox_->ExpireOld();
  if (!removed.ok() || *removed > 0) {
    LogLine("registry", removed.ok()
                            ? absl::StrCat("mail expired: ", *removed, " items")
                            : absl::StrCat("mail expiry failed, will retry: ",
                                           removed.status().message()));
  }
}

}  // namespace chat::registry
