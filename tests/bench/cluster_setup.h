// The servers chat-bench --cluster measures: a one-member etcd on loopback,
// two chat-registry binaries sharing it ("etcd-a", "etcd-b") and one on
// SQLite ("sqlite") as the baseline, all child processes on 127.0.0.1.

#ifndef CHAT_TESTS_BENCH_CLUSTER_SETUP_H_
#define CHAT_TESTS_BENCH_CLUSTER_SETUP_H_

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "tests/bench/bench.h"
#include "tests/bench/child.h"
#include "tests/bench/run_report.h"
#include "tests/testing/etcd_cluster.h"

namespace chat::bench {

// The deadline of each of the measurements' unary calls.
inline constexpr Millis kClusterCallTimeout{10000};
// The leases the measurements take: nothing renews them.
inline constexpr Millis kClusterLeaseTtl{3600 * 1000};

// Not thread-safe. The destructor kills whatever still runs (the registries
// before etcd) and removes the scratch directory.
class BenchCluster {
 public:
  // `options` and `report`: not owned; must outlive this.
  BenchCluster(const BenchOptions& options, RunReport* report);
  ~BenchCluster();
  BenchCluster(const BenchCluster&) = delete;
  BenchCluster& operator=(const BenchCluster&) = delete;

  // Makes the scratch directory, starts etcd and the three registries, and
  // notes where each serves. False, with the report's exit code
  // kExitCannotStart, when one does not start.
  bool Start();

  // Stops the registries with SIGTERM; one that does not exit 0 is a
  // failure of the run.
  void Stop();

  // host:port of the registry `label`; the first one's for an unknown label.
  const std::string& Target(const std::string& label) const;

  // CPU seconds every server (the registries and etcd) has used so far.
  double ServersCpu() const;

 private:
  // A chat-registry child process and where it serves.
  struct RunningRegistry {
    std::string label;
    std::unique_ptr<ChildProcess> process;
    std::string target;
  };

  bool StartRegistry(const std::string& label,
                     const std::vector<std::string>& store_args);

  const BenchOptions& options_;
  RunReport* const report_;  // Not owned.
  const std::string bin_dir_;
  std::filesystem::path dir_;
  std::unique_ptr<testing::EtcdCluster> etcd_;
  pid_t etcd_pid_ = 0;
  std::vector<RunningRegistry> registries_;
};

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_CLUSTER_SETUP_H_
