#include "registry/client/registry_client.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/tls.h"
#include "registry/convert.h"
#include "registry/names.h"

namespace chat::registry {

std::shared_ptr<grpc::Channel> NewReconnectingChannel(
    const std::string& address, Millis initial_backoff, Millis max_backoff,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(initial_backoff.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(max_backoff.count()));
  // The registry is dialled by host: its certificate must name that host,
  // and no role certificate (a peer's, a greeter's) may pass for it.
  GuardTlsHostCheck(args, address);
  return grpc::CreateCustomChannel(
      address,
      credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(),
      args);
}

namespace {

// What gRPC's text for a failed connection means when TLS is the cause.
std::string TlsHint(const std::string& message) {
  // A TLS server hangs up on a plaintext client.
  if (absl::StrContains(message, "Socket closed")) {
    return " (if it serves TLS, give --tls-ca or CHAT_TLS_CA)";
  }
  if (absl::StrContains(message, "andshake")) {
    return " (TLS: is --tls-ca the CA that signed its certificate, and does "
           "the certificate name the host dialled? Does it ask for a client "
           "certificate?)";
  }
  return "";
}

// What gRPC says about an unreachable registry, in words.
std::string UnreachableReason(const grpc::Status& status) {
  return absl::StrCat(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                          ? "no answer before the deadline"
                          : status.error_message(),
                      TlsHint(status.error_message()));
}

}  // namespace

absl::Status RegistryStatus(const grpc::Status& status,
                            const std::string& target) {
  absl::Status converted = FromGrpcStatus(status);
  if (IsUnreachable(converted)) {
    return absl::Status(
        converted.code(),
        absl::StrCat("registry at ", target,
                     " is unreachable: ", UnreachableReason(status)));
  }
  return converted;
}

bool IsUnreachable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

namespace {

std::vector<RegistryClient::Endpoint> OneEndpoint(
    std::shared_ptr<grpc::Channel> channel, std::string target) {
  std::vector<RegistryClient::Endpoint> endpoints;
  endpoints.push_back({std::move(target), std::move(channel)});
  return endpoints;
}

std::vector<std::string> AddressesOf(
    const std::vector<RegistryClient::Endpoint>& endpoints) {
  std::vector<std::string> addresses;
  for (const RegistryClient::Endpoint& endpoint : endpoints) {
    addresses.push_back(endpoint.address);
  }
  return addresses;
}

}  // namespace

RegistryClient::RegistryClient(std::shared_ptr<grpc::Channel> channel,
                               std::string target, Millis timeout)
    : RegistryClient(OneEndpoint(std::move(channel), std::move(target)),
                     timeout) {}

RegistryClient::RegistryClient(std::vector<Endpoint> endpoints, Millis timeout)
    : picker_(AddressesOf(endpoints)),
      target_(JoinRegistryAddresses(picker_.addresses())),
      timeout_(timeout),
      clock_(&RealClock()) {
  for (Endpoint& endpoint : endpoints) {
    Connection connection;
    connection.address = std::move(endpoint.address);
    connection.channel = std::move(endpoint.channel);
    connection.stub = v1::Registry::NewStub(connection.channel);
    connection.mailbox = v1::Mailbox::NewStub(connection.channel);
    connection.groups = v1::Groups::NewStub(connection.channel);
    connections_.push_back(std::move(connection));
  }
}

std::unique_ptr<RegistryClient> RegistryClient::Connect(
    const std::string& addresses, Millis timeout, Millis max_backoff,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  std::vector<Endpoint> endpoints;
  for (std::string& address : SplitRegistryAddresses(addresses)) {
    // Start small: a registry restart usually takes well under a second.
    std::shared_ptr<grpc::Channel> channel = NewReconnectingChannel(
        address, std::min(Millis(100), max_backoff), max_backoff, credentials);
    endpoints.push_back({std::move(address), std::move(channel)});
  }
  return std::make_unique<RegistryClient>(std::move(endpoints), timeout);
}

const std::string& RegistryClient::current_address() const {
  return connections_[picker_.current()].address;
}

std::shared_ptr<grpc::Channel> RegistryClient::current_channel() const {
  return connections_[picker_.current()].channel;
}

std::unique_ptr<grpc::ClientContext> RegistryClient::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout_);
  return context;
}

std::unique_ptr<grpc::ClientContext> RegistryClient::NewAdminContext() const {
  auto context = NewContext();
  if (!admin_token_.empty()) {
    context->AddMetadata("authorization", "Bearer " + admin_token_);
  }
  return context;
}

absl::Status RegistryClient::Call(
    const std::function<grpc::Status(const Connection&)>& attempt,
    NotFoundAfterFailover not_found) {
  const std::vector<size_t> order =
      picker_.Order(clock_->Monotonic(), [this](size_t index) {
        return connections_[index].channel->GetState(
                   /*try_to_connect=*/false) == GRPC_CHANNEL_TRANSIENT_FAILURE;
      });
  grpc::Status last;
  bool failed_over = false;
  for (size_t index : order) {
    const Connection& connection = connections_[index];
    const grpc::Status status = attempt(connection);
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      Unreachable(index, status);
      last = status;
      failed_over = true;
      continue;
    }
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      Unreachable(index, status);
      return RegistryStatus(status, connection.address);
    }
    picker_.Answered(index);
    if (failed_over && not_found == NotFoundAfterFailover::kDone &&
        status.error_code() == grpc::StatusCode::NOT_FOUND) {
      return absl::OkStatus();
    }
    return RegistryStatus(status, connection.address);
  }
  if (connections_.size() == 1) {
    return RegistryStatus(last, connections_.front().address);
  }
  return absl::UnavailableError(absl::StrCat("no registry reachable (", target_,
                                             "): ", UnreachableReason(last)));
}

void RegistryClient::Unreachable(size_t index, const grpc::Status& status) {
  if (!picker_.Failed(index, clock_->Monotonic()) || !on_switch_) return;
  on_switch_(connections_[index].address, current_address(),
             RegistryStatus(status, connections_[index].address));
}

size_t RegistryClient::StreamIndex() const {
  return picker_
      .Order(clock_->Monotonic(),
             [this](size_t index) {
               return connections_[index].channel->GetState(
                          /*try_to_connect=*/false) ==
                      GRPC_CHANNEL_TRANSIENT_FAILURE;
             })
      .front();
}

void RegistryClient::StreamFinished(size_t index, const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    Unreachable(index, status);
  }
}

absl::StatusOr<std::string> RegistryClient::Challenge(const std::string& name) {
  v1::ChallengeRequest proto;
  proto.set_name(name);
  v1::ChallengeResponse response;
  CHAT_RETURN_IF_ERROR(Call([&](const Connection& connection) {
    return connection.stub->Challenge(NewContext().get(), proto, &response);
  }));
  return response.challenge();
}

int64_t RegistryClient::NextProofTime() {
  const int64_t now = absl::ToUnixMillis(clock_->Wall());
  int64_t last = last_proof_unix_ms_.load();
  int64_t next = 0;
  do {
    next = std::max(now, last + 1);
  } while (!last_proof_unix_ms_.compare_exchange_weak(last, next));
  return next;
}

namespace {

// Whether `status` is a registry from before chat-register-v2 proofs
// refusing one: it reads the empty challenge field.
bool WantsChallenge(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument &&
         absl::StartsWith(status.message(), "challenge must be");
}

}  // namespace

grpc::Status RegistryClient::RegisterAt(const Connection& connection,
                                        const RegisterRequest& request,
                                        const Identity* identity,
                                        v1::RegisterResponse* response) {
  v1::RegisterRequest proto;
  RegisterRequestToProto(request, &proto);
  if (identity != nullptr) {
    const PublicKey& key = identity->public_key();
    const int64_t proof_unix_ms = NextProofTime();
    proto.set_public_key(key.Bytes());
    proto.clear_challenge();
    proto.set_proof_unix_ms(proof_unix_ms);
    proto.set_signature(identity->Sign(TimedRegistrationProofMessage(
        request.name, request.address, key, proof_unix_ms)));
  }
  grpc::Status status =
      connection.stub->Register(NewContext().get(), proto, response);
  if (identity == nullptr || !WantsChallenge(FromGrpcStatus(status))) {
    return status;
  }
  // A challenge lives in the memory of the registry that issued it: asked
  // of this one, and spent here.
  v1::ChallengeRequest challenge_request;
  challenge_request.set_name(request.name);
  v1::ChallengeResponse challenge;
  status = connection.stub->Challenge(NewContext().get(), challenge_request,
                                      &challenge);
  if (!status.ok()) return status;
  proto.clear_proof_unix_ms();
  proto.set_signature(identity->Sign(
      RegistrationProofMessage(request.name, request.address,
                               challenge.challenge(), identity->public_key())));
  proto.set_challenge(challenge.challenge());
  return connection.stub->Register(NewContext().get(), proto, response);
}

absl::StatusOr<Lease> RegistryClient::Register(const RegisterRequest& request,
                                               const Identity* identity) {
  v1::RegisterResponse response;
  CHAT_RETURN_IF_ERROR(Call([&](const Connection& connection) {
    response.Clear();
    return RegisterAt(connection, request, identity, &response);
  }));
  return Lease{response.lease_id(), EntryFromProto(response.entry())};
}

absl::StatusOr<Millis> RegistryClient::KeepAlive(const std::string& name,
                                                 const std::string& lease_id) {
  v1::KeepAliveRequest proto;
  proto.set_name(name);
  proto.set_lease_id(lease_id);
  v1::KeepAliveResponse response;
  CHAT_RETURN_IF_ERROR(Call([&](const Connection& connection) {
    return connection.stub->KeepAlive(NewContext().get(), proto, &response);
  }));
  return Millis(response.ttl_ms());
}

absl::Status RegistryClient::Unregister(const std::string& name,
                                        const std::string& lease_id) {
  v1::UnregisterRequest proto;
  proto.set_name(name);
  proto.set_lease_id(lease_id);
  v1::UnregisterResponse response;
  return Call(
      [&](const Connection& connection) {
        return connection.stub->Unregister(NewContext().get(), proto,
                                           &response);
      },
      NotFoundAfterFailover::kDone);
}

absl::StatusOr<Entry> RegistryClient::Resolve(const std::string& name) {
  v1::ResolveRequest proto;
  proto.set_name(name);
  v1::ResolveResponse response;
  CHAT_RETURN_IF_ERROR(Call([&](const Connection& connection) {
    return connection.stub->Resolve(NewContext().get(), proto, &response);
  }));
  return EntryFromProto(response.entry());
}

absl::StatusOr<ListPage> RegistryClient::List(const std::string& prefix,
                                              int page_size,
                                              const std::string& page_token,
                                              const std::string& service) {
  v1::ListRequest proto;
  proto.set_prefix(prefix);
  proto.set_page_size(page_size);
  proto.set_page_token(page_token);
  proto.set_service(service);
  v1::ListResponse response;
  CHAT_RETURN_IF_ERROR(Call([&](const Connection& connection) {
    response.Clear();
    return connection.stub->List(NewContext().get(), proto, &response);
  }));
  ListPage page;
  // A registry older than services ignores the filter: applied here then (its
  // pages may come out short, and total_size counts everyone).
  const bool filter_here = !service.empty() && response.service() != service;
  for (const v1::Entry& entry : response.entries()) {
    Entry converted = EntryFromProto(entry);
    if (filter_here && !OffersService(converted.services, service)) continue;
    page.entries.push_back(std::move(converted));
  }
  page.next_page_token = response.next_page_token();
  page.total_size = response.total_size();
  page.service = response.service();
  return page;
}

absl::StatusOr<std::vector<Entry>> RegistryClient::ListAll(
    const std::string& prefix, const std::string& service) {
  std::vector<Entry> all;
  std::string token;
  do {
    CHAT_ASSIGN_OR_RETURN(ListPage page, List(prefix, 1000, token, service));
    for (Entry& entry : page.entries) all.push_back(std::move(entry));
    token = std::move(page.next_page_token);
  } while (!token.empty());
  return all;
}

absl::StatusOr<Entry> RegistryClient::PutStatic(
    const std::string& name, const std::string& address,
    const std::vector<std::string>& services) {
  v1::PutStaticRequest proto;
  proto.set_name(name);
  proto.set_address(address);
  for (const std::string& service : services) proto.add_services(service);
  v1::PutStaticResponse response;
  CHAT_RETURN_IF_ERROR(Call([&](const Connection& connection) {
    return connection.stub->PutStatic(NewAdminContext().get(), proto,
                                      &response);
  }));
  return EntryFromProto(response.entry());
}

absl::Status RegistryClient::RemoveStatic(const std::string& name) {
  v1::RemoveStaticRequest proto;
  proto.set_name(name);
  v1::RemoveStaticResponse response;
  return Call(
      [&](const Connection& connection) {
        return connection.stub->RemoveStatic(NewAdminContext().get(), proto,
                                             &response);
      },
      NotFoundAfterFailover::kDone);
}

absl::StatusOr<Binding> RegistryClient::GetBinding(const std::string& name) {
  v1::GetBindingRequest proto;
  proto.set_name(name);
  v1::GetBindingResponse response;
  CHAT_RETURN_IF_ERROR(Call([&](const Connection& connection) {
    return connection.stub->GetBinding(NewContext().get(), proto, &response);
  }));
  return BindingFromProto(response);
}

absl::Status RegistryClient::Release(const std::string& name) {
  v1::ReleaseRequest proto;
  proto.set_name(name);
  v1::ReleaseResponse response;
  return Call(
      [&](const Connection& connection) {
        return connection.stub->Release(NewAdminContext().get(), proto,
                                        &response);
      },
      NotFoundAfterFailover::kDone);
}

absl::Status RegistryClient::Deposit(const MailItem& item) {
  v1::DepositRequest proto;
  MailItemToProto(item, proto.mutable_item());
  v1::DepositResponse response;
  return Call([&](const Connection& connection) {
    return connection.mailbox->Deposit(NewContext().get(), proto, &response);
  });
}

std::unique_ptr<MailStream> RegistryClient::Listen(
    const std::string& name, const std::string& lease_id) {
  const size_t index = StreamIndex();
  const Connection& connection = connections_[index];
  auto context = std::make_unique<grpc::ClientContext>();
  v1::ListenRequest proto;
  proto.set_name(name);
  proto.set_lease_id(lease_id);
  return std::make_unique<MailStream>(
      std::move(context),
      [&](grpc::ClientContext* call,
          grpc::ClientReadReactor<v1::MailItem>* reactor) {
        connection.mailbox->async()->Listen(call, &proto, reactor);
      },
      connection.address, &MailItemFromProto,
      [this, index](const grpc::Status& status) {
        StreamFinished(index, status);
      });
}

absl::Status RegistryClient::Ack(const std::string& name,
                                 const std::string& lease_id,
                                 const std::vector<MailRef>& items,
                                 const std::vector<MailItem>& receipts) {
  v1::AckRequest proto;
  proto.set_name(name);
  proto.set_lease_id(lease_id);
  bool digests = false;
  for (const MailRef& item : items) {
    proto.add_ids(item.id);
    digests = digests || !item.digest.empty();
  }
  // Only when there are any: a request an older registry reads the same.
  if (digests) {
    for (const MailRef& item : items) proto.add_digests(item.digest);
  }
  for (const MailItem& receipt : receipts) {
    MailItemToProto(receipt, proto.add_receipts());
  }
  v1::AckResponse response;
  return Call([&](const Connection& connection) {
    return connection.mailbox->Ack(NewContext().get(), proto, &response);
  });
}

absl::StatusOr<MailboxStats> RegistryClient::MailboxStat(
    const std::string& name) {
  v1::StatRequest proto;
  proto.set_name(name);
  v1::StatResponse response;
  CHAT_RETURN_IF_ERROR(Call([&](const Connection& connection) {
    return connection.mailbox->Stat(NewContext().get(), proto, &response);
  }));
  MailboxStats stats;
  stats.count = static_cast<size_t>(response.count());
  stats.bytes = static_cast<size_t>(response.bytes());
  stats.oldest_age = absl::Milliseconds(response.oldest_age_ms());
  return stats;
}

namespace {

// A state the registry sent, as ours; a malformed one is the registry's
// fault (or that of whoever stands in for it), not the caller's.
absl::StatusOr<GroupState> GroupStateFromRegistry(const v1::GroupState& proto) {
  absl::StatusOr<GroupState> state = GroupStateFromProto(proto);
  if (!state.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the registry sent a malformed group state: ",
                     state.status().message()));
  }
  return state;
}

}  // namespace

absl::StatusOr<RegistryClient::GroupPut> RegistryClient::PutGroupState(
    const GroupState& state) {
  v1::PutGroupStateRequest request;
  GroupStateToProto(state, request.mutable_state());
  v1::PutGroupStateResponse response;
  CHAT_RETURN_IF_ERROR(Call([&](const Connection& connection) {
    return connection.groups->PutGroupState(NewContext().get(), request,
                                            &response);
  }));
  GroupPut put;
  CHAT_ASSIGN_OR_RETURN(put.current,
                        GroupStateFromRegistry(response.current()));
  put.accepted = response.accepted() ||
                 (put.current.version == state.version &&
                  GroupStateHash(put.current) == GroupStateHash(state));
  return put;
}

absl::StatusOr<RegistryClient::GroupStates> RegistryClient::GetGroupStates(
    const std::string& group_id, int64_t after_version, int max_states) {
  v1::GetGroupStatesRequest request;
  request.set_group_id(group_id);
  request.set_after_version(after_version);
  request.set_max_states(max_states);
  v1::GetGroupStatesResponse response;
  CHAT_RETURN_IF_ERROR(Call([&](const Connection& connection) {
    return connection.groups->GetGroupStates(NewContext().get(), request,
                                             &response);
  }));
  GroupStates page;
  page.latest_version = response.latest_version();
  for (const v1::GroupState& proto : response.states()) {
    CHAT_ASSIGN_OR_RETURN(GroupState state, GroupStateFromRegistry(proto));
    page.states.push_back(std::move(state));
  }
  return page;
}

void WatchResumePoint::Saw(const WatchEvent& event) {
  if (event.type == EventType::kSynced) {
    synced_ = true;
    // 0 from a registry that does not know revisions: start over.
    revision_ = event.revision;
  } else if (synced_ && event.revision > 0) {
    revision_ = std::max(revision_, event.revision - 1);
  }
}

std::unique_ptr<WatchStream> RegistryClient::Watch(const std::string& prefix,
                                                   int64_t resume_after) {
  v1::WatchRequest proto;
  proto.set_prefix(prefix);
  proto.set_revision(resume_after);
  return OpenWatch(proto);
}

std::unique_ptr<WatchStream> RegistryClient::WatchNames(
    const std::vector<std::string>& names, int64_t resume_after) {
  v1::WatchRequest proto;
  for (const std::string& name : names) proto.add_names(name);
  proto.set_revision(resume_after);
  return OpenWatch(proto);
}

std::unique_ptr<WatchStream> RegistryClient::OpenWatch(
    const v1::WatchRequest& request) {
  const size_t index = StreamIndex();
  const Connection& connection = connections_[index];
  auto context = std::make_unique<grpc::ClientContext>();
  return std::make_unique<WatchStream>(
      std::move(context),
      [&](grpc::ClientContext* call,
          grpc::ClientReadReactor<v1::WatchEvent>* reactor) {
        connection.stub->async()->Watch(call, &request, reactor);
      },
      connection.address, &WatchEventFromProto,
      [this, index](const grpc::Status& status) {
        StreamFinished(index, status);
      });
}

}  // namespace chat::registry
