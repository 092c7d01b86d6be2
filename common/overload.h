// Shedding at the door of every server: a call whose deadline has already
// passed is dropped before any work, beyond a bound on calls in progress new
// calls are refused at once instead of queueing without bound, and while
// calls keep reaching their handlers late, the late ones are refused at once
// instead of being served too late to matter.

#ifndef CHAT_COMMON_OVERLOAD_H_
#define CHAT_COMMON_OVERLOAD_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/log.h"

namespace chat {

inline constexpr int kDefaultMaxCallsInProgress = 1000;
inline constexpr int kDefaultMaxStreamsPerConnection = 20;
// Off by default: measured under a 2x overload, no call ever reached its
// handler late (docs/benchmarks-history.md, "Shedding by lateness"); the wait
// is before gRPC parses the request, where a handler cannot see it.
inline constexpr Millis kDefaultLateTarget{0};
inline constexpr Millis kDefaultLateInterval{100};

// How much a server takes on at once (docs/limits.md, "Calls in progress").
struct OverloadOptions {
  // Calls admitted and not yet answered, over all services sharing a
  // CallGate; one more is refused with RESOURCE_EXHAUSTED
  // (--max-calls-in-progress). 0: no bound (deadlines are still checked).
  int max_calls_in_progress = kDefaultMaxCallsInProgress;
  // HTTP/2 streams one connection may have open at once
  // (GRPC_ARG_MAX_CONCURRENT_STREAMS, --max-streams-per-connection): the
  // outer bound on what waits inside gRPC before a handler runs. A client
  // past it waits on its own side, where its deadline ends the wait, instead
  // of queueing in the server. It is not a bound on memory by itself: as
  // measured, a server short of CPU keeps calls its clients have cancelled
  // (a few KB each) at a rate that grows with connections x this; 20 kept a
  // registry on a third of a core at 94 MB where 200 reached 1 GB in 5 s
  // under 8 connections. 20 is far above what one client of the registry
  // or the greeter keeps open (a peer: Watch, Listen and one call per
  // conversation; chatctl: one), and a client with 64 resolves in flight
  // on one connection got no less through it than through 200
  // (docs/limits.md). A peer's own
  // server takes more (kPeerMaxStreamsPerConnection): a sender's window puts
  // 64 messages on one connection at once.
  int max_streams_per_connection = kDefaultMaxStreamsPerConnection;
  // Shedding by lateness, after CoDel (Nichols and Jacobson) as Facebook's
  // "Fail at Scale" applies it to server queues: a standing queue shows as
  // every call waiting longer than a target for a whole interval, and while
  // it stands, calls that waited too long are refused at once.
  //
  // What gRPC 1.51's callback API lets a handler see of a call's wait is its
  // deadline only: no arrival time, and the client's grpc-timeout header is
  // consumed by the core (not in client_metadata()). So lateness is judged
  // by the slack a call has left when its handler starts (deadline minus
  // now): a call is late when it has less than `late_target` left (or none:
  // the expired ones dropped above count too); once every call with a
  // deadline has been late for `late_interval`, the gate sheds: late calls
  // get RESOURCE_EXHAUSTED (--late-target-ms) at once, and the first call
  // with `late_target` or more left ends the shedding. Calls without a
  // deadline tell nothing and are never shed. A client whose own deadlines
  // are shorter than `late_target` is always late and is shed whenever the
  // server is loaded enough for the shedding to begin.
  // late_target 0: no shedding (expired calls are still dropped).
  Millis late_target = kDefaultLateTarget;
  Millis late_interval = kDefaultLateInterval;
  // What deadlines are compared with: gRPC's are wall-clock times, so the
  // real clock; a test sets a FakeClock (its wall runs ahead of the real one)
  // to see every call arrive past its deadline. Not owned; must outlive the
  // gate.
  const Clock* clock = &RealClock();
  // When set, every refusal is logged through it ("overload: ..."; it lets
  // a few lines through per interval, then a count). Not owned; must
  // outlive the gate.
  RateLimitedLog* log = nullptr;
};

// Admits calls: the first thing every handler does. A unary call holds its
// Ticket until it is answered (moved into the completion of an asynchronous
// store call). A stream (Watch, Listen) passes the gate when it opens and
// drops its ticket once it is set up: a long-lived stream is not "in
// progress" work, and the number of streams is bounded by the stream
// limits (docs/limits.md), not by this gate.
//
// Cheap enough for the greeter's baseline: a few atomic operations and two
// clock reads.
// Thread-safe.
class CallGate {
 public:
  // Holds one place of the gate until destroyed (or moved from). An empty
  // Ticket holds nothing.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept : gate_(other.gate_) {
      other.gate_ = nullptr;
    }
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { Release(); }

    // Gives the place back now.
    void Release();

   private:
    friend class CallGate;
    explicit Ticket(CallGate* gate) : gate_(gate) {}
    CallGate* gate_ = nullptr;  // Not owned; outlives every ticket.
  };

  struct Counts {
    int64_t in_progress = 0;
    int64_t admitted = 0;  // Since construction.
    int64_t expired = 0;   // Refused: deadline already passed.
    int64_t refused = 0;   // Refused: max_calls_in_progress reached.
    int64_t shed = 0;      // Refused: late while the gate was shedding.
  };

  explicit CallGate(const OverloadOptions& options);

  // kDeadlineExceeded when `deadline` is not after options.clock's Wall() (the
  // caller has given up: nothing may be done for it); kResourceExhausted
  // when the gate is shedding and the call is late (see
  // OverloadOptions::late_target), or (LimitError, --max-calls-in-progress)
  // when max_calls_in_progress calls hold tickets; otherwise a ticket.
  absl::StatusOr<Ticket> Admit(absl::Time deadline);
  // Admit() with the deadline of a call (infinite when it has none).
  absl::StatusOr<Ticket> Admit(const grpc::ServerContextBase& context);

  Counts counts() const;
  const OverloadOptions& options() const { return options_; }
  // Whether late calls are being refused now (for tests and logs).
  bool shedding() const;

 private:
  // Records one call's lateness at `now`; true when the gate sheds it.
  bool ShedLate(bool late, MonoTime now);

  const OverloadOptions options_;
  // Monotonic time (nanoseconds since the clock's epoch) of the first late
  // call of the current run of late calls; kOnTime when the last call with a
  // deadline was on time. Atomic rather than locked: every call passes here.
  static constexpr int64_t kOnTime = std::numeric_limits<int64_t>::min();
  std::atomic<int64_t> late_since_{kOnTime};
  std::atomic<int64_t> shed_{0};
  std::atomic<int64_t> in_progress_{0};
  std::atomic<int64_t> admitted_{0};
  std::atomic<int64_t> expired_{0};
  std::atomic<int64_t> refused_{0};
};

// Raises this process's soft RLIMIT_NOFILE to its hard limit (every binary
// does it at start: the soft limit is often 1,024 while the hard one allows
// far more sockets) and returns the soft limit now in force; kInternal
// (naming both limits) when it cannot.
absl::StatusOr<uint64_t> RaiseOpenFileLimit();

// What every binary does at start: RaiseOpenFileLimit() (a
// failure is logged, not fatal) and RouteLibraryLogs(component).
void ApplyProcessLimits(const std::string& component);

// The gate of services given none: default options, the real clock. Never
// destroyed.
CallGate& DefaultCallGate();

}  // namespace chat

#endif  // CHAT_COMMON_OVERLOAD_H_
