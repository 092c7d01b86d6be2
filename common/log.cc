#include "common/log.h"

#include <fcntl.h>
#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/periodic_loop.h"

namespace chat {

namespace {

// Where LogLine() writes; null: stderr. Set by RedirectLogLines().
std::atomic<LogDestination*> log_destination{nullptr};

// Writes all of `line` to `fd`; false when it could not.
bool WriteAll(int fd, const std::string& line) {
  size_t written = 0;
  while (written < line.size()) {
    ssize_t n = ::write(fd, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    written += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

void LogLine(const std::string& component, const std::string& message) {
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " ", component, ": ", message, "\n");
  if (LogDestination* destination = log_destination.load()) {
    destination->Write(line);
    return;
  }
  // stderr gone: nothing better to do with a log.
  WriteAll(STDERR_FILENO, line);
}

void RedirectLogLines(LogDestination* destination) {
  log_destination.store(destination);
}

namespace {

// Opens `path` for appending, private whatever the umask or an older file
// said; -1 (errno set) when it cannot. `size` gets the file's length.
int OpenLogFile(const std::string& path, int flags, int64_t* size) {
  const int fd = ::open(
      path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | flags, 0600);
  if (fd < 0) return -1;
  ::fchmod(fd, 0600);
  struct stat st;
  *size = ::fstat(fd, &st) == 0 ? st.st_size : 0;
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RotatingLogFile>> RotatingLogFile::Open(
    const std::string& path, int64_t max_bytes) {
  int64_t size = 0;
  const int fd = OpenLogFile(path, 0, &size);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open the log file ", path, ": ", strerror(errno)));
  }
  return std::unique_ptr<RotatingLogFile>(
      new RotatingLogFile(path, std::max<int64_t>(max_bytes, 1), fd, size));
}

RotatingLogFile::RotatingLogFile(std::string path, int64_t max_bytes, int fd,
                                 int64_t size)
    : path_(std::move(path)), max_bytes_(max_bytes), fd_(fd), size_(size) {}

RotatingLogFile::~RotatingLogFile() {
  absl::MutexLock lock(&mu_);
  if (fd_ >= 0) ::close(fd_);
}

void RotatingLogFile::Write(const std::string& line) {
  absl::MutexLock lock(&mu_);
  // A rotation that could not open the new file (no fd left, the directory
  // gone) is retried at every line, so logging resumes once the cause has
  // passed; the lines in between are dropped.
  if (fd_ < 0) fd_ = OpenLogFile(path_, 0, &size_);
  if (fd_ < 0) return;
  if (size_ > 0 && size_ + static_cast<int64_t>(line.size()) > max_bytes_) {
    const std::string older = path_ + ".1";
    // When the rename fails, PATH is truncated all the same: losing old
    // lines is better than a log that grows without bound.
    ::rename(path_.c_str(), older.c_str());
    ::close(fd_);
    fd_ = OpenLogFile(path_, O_TRUNC, &size_);
    if (fd_ < 0) return;
  }
  if (WriteAll(fd_, line)) size_ += static_cast<int64_t>(line.size());
}

RateLimitedLog::RateLimitedLog(Options options, const Clock& clock, Sink sink)
    : options_(options), clock_(clock), sink_(std::move(sink)) {}

std::string RateLimitedLog::Summary(const Bucket& bucket) const {
  return absl::StrCat(
      bucket.last, " (and ", bucket.suppressed, " more like it in the last ",
      absl::FormatDuration(
          absl::FromChrono(clock_.Monotonic() - bucket.window_start)),
      ", not logged)");
}

void RateLimitedLog::Log(const std::string& key, const std::string& message) {
  std::vector<std::string> out;
  {
    absl::MutexLock lock(&mu_);
    const MonoTime now = clock_.Monotonic();
    const std::string& bucket_key =
        buckets_.size() >= options_.max_keys && !buckets_.contains(key)
            ? std::string("(other)")
            : key;
    auto [it, fresh] = buckets_.try_emplace(bucket_key);
    Bucket& bucket = it->second;
    if (fresh) bucket.window_start = now;
    if (now - bucket.window_start >= options_.interval) {
      if (bucket.suppressed > 0) out.push_back(Summary(bucket));
      bucket = Bucket();
      bucket.window_start = now;
    }
    if (bucket.lines < options_.burst) {
      ++bucket.lines;
      out.push_back(message);
    } else {
      ++bucket.suppressed;
      ++suppressed_total_;
      bucket.last = message;
    }
  }
  for (const std::string& line : out) sink_(line);
}

void RateLimitedLog::Flush() {
  std::vector<std::string> out;
  {
    absl::MutexLock lock(&mu_);
    const MonoTime now = clock_.Monotonic();
    for (auto& [key, bucket] : buckets_) {
      if (bucket.suppressed == 0) continue;
      out.push_back(Summary(bucket));
      bucket = Bucket();
      bucket.window_start = now;
    }
  }
  for (const std::string& line : out) sink_(line);
}

int64_t RateLimitedLog::suppressed() const {
  absl::MutexLock lock(&mu_);
  return suppressed_total_;
}

namespace {

RateLimitedLog* library_log = nullptr;  // Set once by RouteLibraryLogs().

void GrpcLogHandler(gpr_log_func_args* args) {
  const char* severity = args->severity == GPR_LOG_SEVERITY_ERROR  ? "E"
                         : args->severity == GPR_LOG_SEVERITY_INFO ? "I"
                                                                   : "D";
  library_log->Log(absl::StrCat(args->file, ":", args->line),
                   absl::StrCat("grpc ", severity, " ", args->message, " (",
                                args->file, ":", args->line, ")"));
}

void ProtobufLogHandler(google::protobuf::LogLevel level, const char* filename,
                        int line, const std::string& message) {
  const char* severity = level >= google::protobuf::LOGLEVEL_ERROR     ? "E"
                         : level == google::protobuf::LOGLEVEL_WARNING ? "W"
                                                                       : "I";
  library_log->Log(absl::StrCat(filename, ":", line),
                   absl::StrCat("protobuf ", severity, " ", message, " (",
                                filename, ":", line, ")"));
}

}  // namespace

RateLimitedLog& RouteLibraryLogs(const std::string& component) {
  if (library_log == nullptr) {
    library_log = new RateLimitedLog(
        RateLimitedLog::Options(), RealClock(),
        [component](const std::string& line) { LogLine(component, line); });
    gpr_set_log_function(GrpcLogHandler);
    google::protobuf::SetLogHandler(ProtobufLogHandler);
    // The count of a flood that has stopped still reaches the log.
    const Millis interval = RateLimitedLog::Options().interval;
    new PeriodicLoop(RealClock(), interval,
                     [interval]() -> std::optional<Millis> {
                       library_log->Flush();
                       return interval;
                     });
  }
  return *library_log;
}

}  // namespace chat
