#include "common/grpc_server.h"

#include <dirent.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace chat {

absl::StatusOr<RunningServer> StartServer(const ServerConfig& config) {
  // Both are process-wide switches that take effect for servers built later.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  RunningServer running;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen_address,
                           config.credentials != nullptr
                               ? config.credentials
                               : grpc::InsecureServerCredentials(),
                           &running.port);
  builder.SetMaxReceiveMessageSize(config.max_request_bytes);
  // gRPC turns SO_REUSEPORT on by default, which would let a second server
  // silently share a port already in use instead of failing to start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // What waits inside gRPC, per connection, before a handler can shed it
  // (common/overload.h); 0 keeps gRPC's default (no bound).
  if (config.max_streams_per_connection > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                               config.max_streams_per_connection);
  }
  if (config.handshake_timeout > Millis(0)) {
    builder.AddChannelArgument(
        GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
        static_cast<int>(config.handshake_timeout.count()));
  }
  for (grpc::Service* service : config.services) {
    builder.RegisterService(service);
  }
  running.server = builder.BuildAndStart();
  if (running.server == nullptr || running.port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen_address,
                     config.credentials != nullptr
                         ? " (is the address valid and the port free, and do "
                           "the TLS certificate and key match?)"
                         : " (is the address valid and the port free?)"));
  }
  grpc::HealthCheckServiceInterface* health =
      running.server->GetHealthCheckService();
  for (const std::string& name : config.health_names) {
    health->SetServingStatus(name, true);
  }
  return running;
}

grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* context,
                                  const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

void StopServer(grpc::Server& server, std::chrono::milliseconds grace) {
  if (grpc::HealthCheckServiceInterface* health =
          server.GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  server.Shutdown(std::chrono::system_clock::now() + grace);
}

AcceptLoopWatch::Action AcceptLoopWatch::Decide(MonoTime now,
                                                const Look& look) {
  switch (state_) {
    case State::kHealthy:
      if (!look.connections_waiting) return Action::kNothing;
      state_ = State::kProbing;
      probing_since_ = now;
      return Action::kOpenProbe;
    case State::kProbing:
      if (look.probe_accepted) {
        state_ = State::kHealthy;
        return Action::kCloseProbe;
      }
      if (now - probing_since_ < options_.stall) return Action::kNothing;
      state_ = State::kStopped;
      stopped_since_ = now;
      waited_for_fds_ = false;
      next_attempt_ = now;
      backoff_ = Millis(0);
      break;
    case State::kStopped:
      break;
  }
  if (now < next_attempt_) return Action::kNothing;
  const bool fds_short =
      look.fd_limit > 0 &&
      static_cast<double>(look.open_fds) >=
          options_.fd_headroom * static_cast<double>(look.fd_limit);
  if (fds_short && now - stopped_since_ < options_.max_fd_wait) {
    if (waited_for_fds_) return Action::kNothing;
    waited_for_fds_ = true;
    return Action::kWaitForFds;
  }
  return Action::kRelisten;
}

void AcceptLoopWatch::Relistened(MonoTime now, bool ok) {
  if (ok) {
    state_ = State::kHealthy;
    backoff_ = Millis(0);
    return;
  }
  backoff_ = backoff_ == Millis(0)
                 ? options_.first_backoff
                 : std::min(backoff_ * 2, options_.max_backoff);
  next_attempt_ = now + backoff_;
}

namespace {

// What the supervisor reads about this process's sockets. Everything here
// is read-only towards gRPC's fds: poll() and getsockname() consume nothing.

bool SameAddress(const sockaddr_storage& a, socklen_t a_len,
                 const sockaddr_storage& b, socklen_t b_len) {
  return a_len == b_len && std::memcmp(&a, &b, a_len) == 0;
}

int PortOf(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  }
  return 0;
}

// Calls `visit(fd)` for every fd of this process but the directory's own;
// false when /proc/self/fd cannot be read.
template <typename Visit>
bool ForEachFd(Visit visit) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  const int own = ::dirfd(dir);
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd != own) visit(fd);
  }
  ::closedir(dir);
  return true;
}

// The fds open in this process; nullopt when /proc/self/fd cannot even be
// opened (most likely for want of an fd).
std::optional<uint64_t> CountOpenFds() {
  uint64_t count = 0;
  if (!ForEachFd([&count](int) { ++count; })) return std::nullopt;
  return count;
}

uint64_t SoftFdLimit() {
  rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 ||
      limit.rlim_cur == RLIM_INFINITY) {
    return 0;
  }
  return limit.rlim_cur;
}

// The listening sockets of this process bound to `port`.
std::vector<int> FindListeners(int port) {
  std::vector<int> found;
  ForEachFd([&found, port](int fd) {
    int listening = 0;
    socklen_t length = sizeof(listening);
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 ||
        listening == 0) {
      return;
    }
    sockaddr_storage address{};
    socklen_t address_length = sizeof(address);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address),
                      &address_length) == 0 &&
        PortOf(address) == port) {
      found.push_back(fd);
    }
  });
  return found;
}

bool ConnectionsWaiting(const std::vector<int>& listeners) {
  for (int fd : listeners) {
    pollfd entry{fd, POLLIN, 0};
    if (::poll(&entry, 1, 0) == 1 && (entry.revents & POLLIN) != 0) {
      return true;
    }
  }
  return false;
}

// A non-blocking connection to the address `listener` is bound to (the
// loopback when it is a wildcard); -1 when no fd or no connection.
int OpenProbe(int listener) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) !=
      0) {
    return -1;
  }
  bool wildcard = false;
  if (address.ss_family == AF_INET) {
    wildcard = reinterpret_cast<sockaddr_in&>(address).sin_addr.s_addr ==
               htonl(INADDR_ANY);
  } else if (address.ss_family == AF_INET6) {
    wildcard = IN6_IS_ADDR_UNSPECIFIED(
        &reinterpret_cast<sockaddr_in6&>(address).sin6_addr);
  } else {
    return -1;
  }
  if (wildcard) {
    // 127.0.0.1 reaches 0.0.0.0 and a dual-stack [::] alike.
    sockaddr_in loopback{};
    loopback.sin_family = AF_INET;
    loopback.sin_port = htons(static_cast<uint16_t>(PortOf(address)));
    loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::memset(&address, 0, sizeof(address));
    std::memcpy(&address, &loopback, sizeof(loopback));
    length = sizeof(loopback);
  }
  const int fd = ::socket(address.ss_family,
                          SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 &&
      errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the server took the probe: its end is an fd of this process (the
// peer address of some socket is the probe's own), or it has already closed
// it (memory pressure makes gRPC drop what it accepts).
bool ProbeAccepted(int probe) {
  char byte;
  const ssize_t read = ::recv(probe, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (read >= 0 || errno == ECONNRESET) return true;
  sockaddr_storage own{};
  socklen_t own_length = sizeof(own);
  if (::getsockname(probe, reinterpret_cast<sockaddr*>(&own), &own_length) !=
      0) {
    return false;
  }
  bool accepted = false;
  ForEachFd([&](int fd) {
    if (accepted || fd == probe) return;
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof(peer);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_length) !=
        0) {
      return;
    }
    if (SameAddress(peer, peer_length, own, own_length)) {
      accepted = true;
      return;
    }
    // The server's end of a v4 probe on a dual-stack socket: ::ffff:a.b.c.d.
    if (own.ss_family == AF_INET && peer.ss_family == AF_INET6) {
      const auto& v6 = reinterpret_cast<const sockaddr_in6&>(peer);
      const auto& v4 = reinterpret_cast<const sockaddr_in&>(own);
      accepted = IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr) &&
                 v6.sin6_port == v4.sin_port &&
                 std::memcmp(&v6.sin6_addr.s6_addr[12], &v4.sin_addr, 4) == 0;
    }
  });
  return accepted;
}

// "host:0" -> "host:<port>", so a new server binds the port the first got.
std::string PinPort(const std::string& address, int port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return address;
  return absl::StrCat(address.substr(0, colon + 1), port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SupervisedServer>> SupervisedServer::Start(
    const ServerConfig& config, SupervisorOptions options) {
  absl::StatusOr<RunningServer> running = StartServer(config);
  if (!running.ok()) return running.status();
  std::unique_ptr<SupervisedServer> supervised(
      new SupervisedServer(config, std::move(options), *std::move(running)));
  SupervisedServer* raw = supervised.get();
  supervised->loop_.emplace(*supervised->options_.clock,
                            supervised->options_.interval,
                            [raw]() { return raw->Step(); });
  return supervised;
}

SupervisedServer::SupervisedServer(const ServerConfig& config,
                                   SupervisorOptions options,
                                   RunningServer running)
    : config_(config),
      options_(std::move(options)),
      port_(running.port),
      watch_(options_.watch),
      listeners_(FindListeners(running.port)),
      server_(std::move(running.server)) {
  config_.listen_address = PinPort(config.listen_address, port_);
  if (listeners_.empty()) {
    Say(absl::StrCat("cannot see the listening socket of port ", port_,
                     " in /proc/self/fd: its accept loop is not watched"));
  }
}

SupervisedServer::~SupervisedServer() { Stop(Millis(0)); }

std::shared_ptr<grpc::Channel> SupervisedServer::InProcessChannel() {
  absl::MutexLock lock(&mu_);
  if (server_ == nullptr) return nullptr;
  return server_->InProcessChannel(grpc::ChannelArguments());
}

void SupervisedServer::Stop(Millis grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (loop_) loop_->Stop();
  if (probe_fd_ >= 0) {
    ::close(probe_fd_);
    probe_fd_ = -1;
  }
  absl::MutexLock lock(&mu_);
  if (server_ != nullptr) {
    StopServer(*server_, grace);
    server_->Wait();
  }
}

void SupervisedServer::Say(const std::string& line) const {
  if (options_.on_event) {
    options_.on_event(line);
  } else {
    LogLine("server", line);
  }
}

std::optional<Millis> SupervisedServer::Step() {
  AcceptLoopWatch::Look look;
  look.connections_waiting = ConnectionsWaiting(listeners_);
  const bool probe_out = probe_fd_ >= 0;
  look.probe_accepted = probe_out && ProbeAccepted(probe_fd_);
  // Counting fds costs a pass over /proc/self/fd: only when it matters.
  if (look.connections_waiting || probe_out || watch_.stopped()) {
    look.fd_limit = SoftFdLimit();
    look.open_fds = CountOpenFds().value_or(look.fd_limit);
  }
  const MonoTime now = options_.clock->Monotonic();
  const std::string fds =
      absl::StrCat(look.open_fds, " of ", look.fd_limit, " open files in use");
  switch (watch_.Decide(now, look)) {
    case AcceptLoopWatch::Action::kNothing:
      break;
    case AcceptLoopWatch::Action::kOpenProbe:
      probe_fd_ = listeners_.empty() ? -1 : OpenProbe(listeners_.front());
      break;
    case AcceptLoopWatch::Action::kCloseProbe:
      ::close(probe_fd_);
      probe_fd_ = -1;
      break;
    case AcceptLoopWatch::Action::kWaitForFds:
      Say(absl::StrCat("port ", port_,
                       ": gRPC stopped accepting connections (file "
                       "descriptors ran out); listening again once they are "
                       "free (",
                       fds, ")"));
      break;
    case AcceptLoopWatch::Action::kRelisten: {
      if (probe_fd_ >= 0) {
        ::close(probe_fd_);
        probe_fd_ = -1;
      }
      Say(absl::StrCat("port ", port_,
                       ": gRPC stopped accepting connections; starting a new "
                       "server on it (",
                       fds, ")"));
      const bool ok = Relisten();
      watch_.Relistened(options_.clock->Monotonic(), ok);
      break;
    }
  }
  return options_.interval;
}

bool SupervisedServer::Relisten() {
  absl::MutexLock lock(&mu_);
  if (stopped_) return true;
  listeners_.clear();
  if (server_ != nullptr) {
    StopServer(*server_, options_.grace);
    server_->Wait();
    server_.reset();
  }
  absl::StatusOr<RunningServer> running = StartServer(config_);
  if (!running.ok()) {
    Say(absl::StrCat("port ", port_, ": ", running.status().message(),
                     "; trying again"));
    return false;
  }
  server_ = std::move(running->server);
  listeners_ = FindListeners(port_);
  relistens_.fetch_add(1);
  Say(absl::StrCat("port ", port_, ": listening again"));
  return true;
}

}  // namespace chat
