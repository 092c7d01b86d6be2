// How every server in the project is built: the health service, server
// reflection and a bound on request size, the same way everywhere; and the
// supervisor that makes a server listen again after gRPC's accept loop has
// stopped (fd exhaustion).

#ifndef CHAT_COMMON_GRPC_SERVER_H_
#define CHAT_COMMON_GRPC_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/overload.h"
#include "common/periodic_loop.h"

namespace chat {

// Requests bigger than this are refused with RESOURCE_EXHAUSTED.
inline constexpr int kDefaultMaxRequestBytes = 64 * 1024;

// How long a connection may take from accept to a finished TLS and HTTP/2
// handshake. gRPC's default is 120 s, so idle sockets that never say a word
// held an fd and a few KB each for two minutes; 10 s is ample for any real
// client and sheds such sockets twelve times sooner.
inline constexpr Millis kDefaultHandshakeTimeout{10000};

struct ServerConfig {
  std::string listen_address;  // "0.0.0.0:50050"; port 0 picks a free port.
  std::vector<grpc::Service*> services;  // Not owned; must outlive the server.
  // Fully qualified service names reported SERVING by the health service.
  std::vector<std::string> health_names;
  int max_request_bytes = kDefaultMaxRequestBytes;
  // OverloadOptions::max_streams_per_connection.
  int max_streams_per_connection = kDefaultMaxStreamsPerConnection;
  // TLS (common/tls.h MakeServerCredentials); null: plaintext. Shared
  // because gRPC's API hands credentials out as shared_ptr.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS; 0 keeps gRPC's default.
  Millis handshake_timeout = kDefaultHandshakeTimeout;
};

struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // The port actually bound.
};

// Builds and starts a server with the health service and reflection on.
// kUnavailable (naming the address) when it cannot listen.
absl::StatusOr<RunningServer> StartServer(const ServerConfig& config);

// Finishes a unary callback-API call with `status` (OK: the response as
// filled in) and returns its reactor, for `return Respond(context, ...)`.
grpc::ServerUnaryReactor* Respond(grpc::CallbackServerContext* context,
                                  const absl::Status& status);

// Marks every service NOT_SERVING, then shuts down: new calls are refused,
// calls in flight get `grace` to finish before they are cancelled.
void StopServer(grpc::Server& server, std::chrono::milliseconds grace);

// The decisions of ServerSupervisor, apart from the sockets it looks at, so
// they run against a fake clock in tests.
//
// Why it exists: gRPC 1.51's TCP server (tcp_server_posix.cc, on_read) ends
// its accept loop for good on any accept4 error but EINTR, EAGAIN and
// ECONNABORTED, so one EMFILE ("Failed accept4: Too many open files") leaves
// the port bound (the kernel still completes handshakes into the backlog)
// while nobody accepts. No channel argument of 1.51 caps incoming
// connections, so the only cure is a new server on the same port.
//
// How it tells: a connection waiting in the listen queue is only a hint (a
// busy but healthy server has them for microseconds); the proof is a probe
// connection of our own that a living accept loop takes at once and a dead
// one never takes. It listens again only once open fds are back below
// `fd_headroom` of the limit (else the new listener would die the same way
// or fail to bind) or after `max_fd_wait` at most, and retries a failed
// bind with a doubling backoff.
//
// Not thread-safe: one supervisor thread owns it.
class AcceptLoopWatch {
 public:
  struct Options {
    // How long the probe may wait unaccepted before the loop counts as
    // stopped. A living loop takes it in microseconds; the margin is for a
    // process stalled (swapping, stopped in a debugger) rather than dead.
    Millis stall{3000};
    // Listen again once open fds < fd_headroom * RLIMIT_NOFILE...
    double fd_headroom = 0.75;
    // ...or after this long anyway: the old server's own connections may be
    // what holds the fds (handshaken ones are not shed by the handshake
    // timeout), and stopping it closes them.
    Millis max_fd_wait{30000};
    // Backoff between failed attempts to listen again.
    Millis first_backoff{500};
    Millis max_backoff{30000};
  };

  // What the supervisor saw at one look.
  struct Look {
    bool connections_waiting = false;  // The listen queue is not empty.
    // Our probe connection is open and the server has accepted it.
    bool probe_accepted = false;
    uint64_t open_fds = 0;
    uint64_t fd_limit = 0;  // Soft RLIMIT_NOFILE; 0: unknown.
  };

  enum class Action {
    kNothing,
    kOpenProbe,   // Open a probe connection (a hint was seen).
    kCloseProbe,  // The loop is alive: close the probe.
    kWaitForFds,  // The loop has stopped; fds are still short.
    kRelisten,    // Stop the server, start a new one on the same port.
  };

  explicit AcceptLoopWatch(Options options) : options_(options) {}

  // The next thing to do, given what was seen `now`. kRelisten must be
  // followed by Relistened. After kOpenProbe the stall clock runs whether or
  // not a probe could be opened: a process with no fd for it has a stopped
  // accept loop as soon as anyone connects.
  Action Decide(MonoTime now, const Look& look);

  // The outcome of a kRelisten.
  void Relistened(MonoTime now, bool ok);

  // Whether the loop is believed stopped now (for tests and logs).
  bool stopped() const { return state_ == State::kStopped; }

 private:
  enum class State { kHealthy, kProbing, kStopped };

  const Options options_;
  State state_ = State::kHealthy;
  MonoTime probing_since_{};
  MonoTime stopped_since_{};
  bool waited_for_fds_ = false;  // kWaitForFds reported since kStopped.
  MonoTime next_attempt_{};      // Backoff after a failed relisten.
  Millis backoff_{0};
};

struct SupervisorOptions {
  // How often the supervisor looks at the listen queue.
  Millis interval{1000};
  AcceptLoopWatch::Options watch;
  // Calls in flight on the old server get this long before they are
  // cancelled when it is replaced.
  Millis grace{1000};
  // What the supervisor waits on. Not owned; must outlive the server.
  const Clock* clock = &RealClock();
  // Where the supervisor says what it did ("accept loop stopped ...",
  // "listening again ..."); null: LogLine("server", ...).
  std::function<void(const std::string& line)> on_event;
};

// A server (StartServer) that is rebuilt on the same port, with the same
// services, when its accept loop has stopped; see AcceptLoopWatch. Callback
// services can be registered on a new server once the old one has shut
// down (Server::RegisterService only ties services with async methods to
// one server), so nothing outside notices but clients that were connected:
// they get UNAVAILABLE or a GOAWAY and reconnect.
//
// Thread-safe.
class SupervisedServer {
 public:
  // StartServer(config), then supervises it until Stop(). The services in
  // `config` must outlive this. Errors: those of StartServer.
  static absl::StatusOr<std::unique_ptr<SupervisedServer>> Start(
      const ServerConfig& config, SupervisorOptions options = {});

  // Same as Stop(Millis(0)).
  ~SupervisedServer();

  SupervisedServer(const SupervisedServer&) = delete;
  SupervisedServer& operator=(const SupervisedServer&) = delete;

  // The port bound at start; a new server binds the same one.
  int port() const { return port_; }

  // A channel to the current server that skips the network stack; it ends
  // with that server (a later one needs a new channel). Null while no server
  // runs (between a failed attempt to listen again and the next).
  std::shared_ptr<grpc::Channel> InProcessChannel() ABSL_LOCKS_EXCLUDED(mu_);

  // Ends the supervision, then StopServer(grace) and waits for the server's
  // calls to end. Idempotent.
  void Stop(Millis grace) ABSL_LOCKS_EXCLUDED(mu_);

  // How many times a new server was started on the port.
  int64_t relistens() const { return relistens_.load(); }

 private:
  SupervisedServer(const ServerConfig& config, SupervisorOptions options,
                   RunningServer running);
  std::optional<Millis> Step() ABSL_LOCKS_EXCLUDED(mu_);
  bool Relisten() ABSL_LOCKS_EXCLUDED(mu_);
  void Say(const std::string& line) const;

  ServerConfig config_;  // listen_address pinned to the bound port.
  const SupervisorOptions options_;
  const int port_;
  AcceptLoopWatch watch_;       // Used by the supervisor thread only.
  int probe_fd_ = -1;           // Supervisor thread only.
  std::vector<int> listeners_;  // The server's listening fds; supervisor only.
  std::atomic<int64_t> relistens_{0};

  absl::Mutex mu_;
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<PeriodicLoop> loop_;  // Set once in Start().
};

}  // namespace chat

#endif  // CHAT_COMMON_GRPC_SERVER_H_
