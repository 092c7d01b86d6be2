// One line per significant event, to stderr, with a UTC timestamp and the
// component's name: what operators read in `docker logs`. And a bound on
// repeated lines, so no client can fill the log.

#ifndef CHAT_COMMON_LOG_H_
#define CHAT_COMMON_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace chat {

// Writes "2026-11-23T19:04:05.123Z registry: <message>\n" in one write(2),
// so lines from several threads never interleave: to stderr, or where
// RedirectLogLines() said. Thread-safe.
void LogLine(const std::string& component, const std::string& message);

// Where log lines go instead of stderr. Thread-safe: many threads write.
class LogDestination {
 public:
  virtual ~LogDestination() = default;
  // `line` ends in '\n'.
  virtual void Write(const std::string& line) = 0;
};

// Sends every later LogLine() of the process (with it what
// RouteLibraryLogs() routes: gRPC's and protobuf's own lines) to
// `destination`, or to stderr again for nullptr. chat-peer uses it so that
// no log line lands on the chat screen. `destination` is not owned and must
// outlive every LogLine() (in practice: the process). Thread-safe.
void RedirectLogLines(LogDestination* destination);

// A log file that never grows much past `max_bytes`: when a line would take
// it beyond, PATH becomes PATH.1 (the previous PATH.1 is dropped) and a new
// PATH starts, so the two hold at most about twice `max_bytes`. Files are
// private (0600): a log may name peers and addresses. A failed write is
// dropped (a log has nowhere better to go); when PATH cannot be opened again
// after a rotation, lines are dropped until it can (tried at every line).
// Thread-safe.
class RotatingLogFile final : public LogDestination {
 public:
  // Opens (appends to) `path`. kUnavailable naming the path when it cannot
  // be opened.
  static absl::StatusOr<std::unique_ptr<RotatingLogFile>> Open(
      const std::string& path, int64_t max_bytes);
  ~RotatingLogFile() override;

  void Write(const std::string& line) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  RotatingLogFile(std::string path, int64_t max_bytes, int fd, int64_t size);

  const std::string path_;
  const int64_t max_bytes_;
  absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_);  // -1 while PATH cannot be opened.
  int64_t size_ ABSL_GUARDED_BY(mu_);
};

// Lets through at most `burst` lines of one kind (a key: the call site that
// logs them) per `interval`; the rest are counted, and the count goes out
// with the next line of that kind after the interval ends (or at Flush()):
// "<line> (and 9,996 more like it in the last 10 s)" style. So 10,000 bad
// requests cost a handful of lines, and an operator still sees how many.
// Thread-safe; `sink` is called outside the lock, never twice at once for
// one key's summary.
class RateLimitedLog {
 public:
  struct Options {
    Millis interval{10000};
    int burst = 3;
    // Distinct keys remembered at most; beyond, every new key shares one
    // bucket (a bound on the limiter's own memory).
    size_t max_keys = 256;
  };
  using Sink = std::function<void(const std::string& line)>;

  // `clock` is not owned and must outlive this.
  RateLimitedLog(Options options, const Clock& clock, Sink sink);

  // Passes `message` to the sink, or counts it when `key` has used its
  // burst in the current interval.
  void Log(const std::string& key, const std::string& message);

  // Sends a summary line for every key with suppressed lines (at shutdown,
  // or from a periodic loop), and starts their intervals afresh.
  void Flush();

  // Lines suppressed so far (for tests and counters).
  int64_t suppressed() const;

 private:
  struct Bucket {
    MonoTime window_start;
    int lines = 0;           // Passed in this window.
    int64_t suppressed = 0;  // Counted in this window.
    std::string last;        // The last suppressed message.
  };
  std::string Summary(const Bucket& bucket) const;

  const Options options_;
  const Clock& clock_;
  const Sink sink_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  int64_t suppressed_total_ ABSL_GUARDED_BY(mu_) = 0;
};

// Sends what gRPC (gpr_log: "Too many open files" on every failed accept)
// and libprotobuf (an ERROR line per request with invalid UTF-8 in a string
// field) log through one process-wide RateLimitedLog, as lines of
// `component`, and returns it (never destroyed); a thread of its own flushes
// the counts every interval. Call once in main(), after
// BlockTerminationSignals() (the thread inherits the mask) and before any
// server starts. Not thread-safe (SetLogHandler is not).
RateLimitedLog& RouteLibraryLogs(const std::string& component);

}  // namespace chat

#endif  // CHAT_COMMON_LOG_H_
