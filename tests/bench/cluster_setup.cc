#include "tests/bench/cluster_setup.h"

#include <unistd.h>

#include <fstream>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/random.h"

namespace chat::bench {
namespace {

constexpr Millis kStartTimeout{60000};
constexpr Millis kStopTimeout{30000};

// etcd's process id, for its CPU time: the one child of ours that runs
// /usr/bin/etcd. 0 when not found.
pid_t EtcdPid() {
  std::error_code error;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc", error)) {
    pid_t pid = 0;
    const std::string name = entry.path().filename().string();
    if (!absl::SimpleAtoi(name, &pid)) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // pid (comm) state ppid ...
    const size_t close = line.rfind(')');
    if (close == std::string::npos ||
        line.find("(etcd)") == std::string::npos) {
      continue;
    }
    std::vector<std::string> fields =
        absl::StrSplit(line.substr(close + 2), ' ');
    if (fields.size() > 1 && fields[1] == std::to_string(getpid())) {
      return pid;
    }
  }
  return 0;
}

}  // namespace

BenchCluster::BenchCluster(const BenchOptions& options, RunReport* report)
    : options_(options),
      report_(report),
      bin_dir_(options.bin_dir.empty() ? DefaultBinDir() : options.bin_dir) {}

BenchCluster::~BenchCluster() {
  registries_.clear();  // Kills any still running, before etcd goes.
  etcd_.reset();
  std::error_code ignored;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
}

bool BenchCluster::Start() {
  std::error_code error;
  dir_ = std::filesystem::temp_directory_path(error) /
         ("chat-bench-cluster-" + RandomHex(6));
  if (error || !std::filesystem::create_directories(dir_, error)) {
    report_->CannotStart(
        absl::StrCat("cannot create a scratch directory: ", error.message()));
    return false;
  }
  report_->Note(absl::StrCat("binaries from ", bin_dir_, "; all on 127.0.0.1; ",
                             std::thread::hardware_concurrency(),
                             " CPUs, load average ", LoadAverage()));
  absl::StatusOr<std::unique_ptr<testing::EtcdCluster>> etcd =
      testing::EtcdCluster::Start();
  if (!etcd.ok()) {
    report_->CannotStart(
        absl::StrCat("cannot start etcd: ", etcd.status().message()));
    return false;
  }
  etcd_ = *std::move(etcd);
  etcd_pid_ = EtcdPid();
  const std::string prefix = absl::StrCat("/chat-bench/", RandomHex(6), "/");
  const std::string endpoints = absl::StrJoin(etcd_->ClientEndpoints(), ",");
  for (const char* label : {"etcd-a", "etcd-b"}) {
    if (!StartRegistry(label, {"--store", "etcd", "--etcd-endpoints", endpoints,
                               "--etcd-prefix", prefix})) {
      return false;
    }
  }
  if (!StartRegistry("sqlite", {"--db", (dir_ / "registry.db").string()})) {
    return false;
  }
  report_->Note(
      absl::StrCat("etcd 1 member on ", endpoints, " (pid ", etcd_pid_,
                   "); registries etcd-a and etcd-b share it (prefix ", prefix,
                   "), registry sqlite is the baseline"));
  return true;
}

void BenchCluster::Stop() {
  for (RunningRegistry& registry : registries_) {
    if (!StopChild(*registry.process, kStopTimeout, registry.label).ok()) {
      report_->Failed(absl::StrCat(
          "registry ", registry.label,
          " did not stop cleanly: ", registry.process->StderrTail()));
    }
  }
}

const std::string& BenchCluster::Target(const std::string& label) const {
  for (const RunningRegistry& registry : registries_) {
    if (registry.label == label) return registry.target;
  }
  return registries_.front().target;
}

double BenchCluster::ServersCpu() const {
  double total = 0;
  for (const RunningRegistry& registry : registries_) {
    total +=
        ReadCpuSeconds(std::to_string(registry.process->pid())).value_or(0);
  }
  if (etcd_pid_ > 0) {
    total += ReadCpuSeconds(std::to_string(etcd_pid_)).value_or(0);
  }
  return total;
}

bool BenchCluster::StartRegistry(const std::string& label,
                                 const std::vector<std::string>& store_args) {
  std::vector<std::string> argv = {
      (std::filesystem::path(bin_dir_) / "chat-registry").string(), "--listen",
      "127.0.0.1:0",
      // One token for all: registries of one etcd must agree on it.
      "--admin-token-file", (dir_ / "admin-token").string(), "--max-ttl",
      "3600",
      // Every watcher and listener of the bench comes from 127.0.0.1.
      "--max-watch-streams-per-client", "100000",
      "--max-listen-streams-per-client", "100000",
      // The bench's names share one key.
      "--max-names-per-key", "100000"};
  argv.insert(argv.end(), store_args.begin(), store_args.end());
  ChildStart how;
  how.cpus = options_.server_cpus;
  how.cgroup = options_.server_cgroup;
  how.ready_line = "start: listening";
  how.ready_on_stderr = true;
  how.timeout = kStartTimeout;
  how.name = "registry " + label;
  absl::StatusOr<ReadyChild> child = StartChild(argv, how);
  if (!child.ok()) {
    report_->CannotStart(std::string(child.status().message()));
    return false;
  }
  const int port = PortInLine(child->ready.text);
  if (port == 0) {
    report_->CannotStart("no port in the registry's line: " +
                         child->ready.text);
    return false;
  }
  RunningRegistry registry;
  registry.label = label;
  registry.process = std::move(child->process);
  registry.target = absl::StrCat("127.0.0.1:", port);
  report_->Note(absl::StrCat("chat-registry ", label, " pid ",
                             registry.process->pid(), " on ", registry.target));
  registries_.push_back(std::move(registry));
  return true;
}

}  // namespace chat::bench
