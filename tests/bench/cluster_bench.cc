#include "tests/bench/cluster_bench.h"

#include <algorithm>

#include "tests/bench/cluster_measures.h"
#include "tests/bench/cluster_setup.h"
#include "tests/bench/run_report.h"

namespace chat::bench {

absl::StatusOr<std::vector<std::string>> ParseClusterMeasures(
    const std::string& list) {
  static const auto* const kAll =
      new std::vector<std::string>{"watch-fanout", "mailbox"};
  return ParseChoices(list, *kAll, "measurement");
}

int RunClusterBench(const BenchOptions& options, std::ostream& out,
                    std::ostream& err) {
  RunReport report(options.json, out, err);
  BenchCluster cluster(options, &report);
  if (!cluster.Start()) return report.exit_code();
  auto wants = [&](const char* measure) {
    return std::find(options.cluster.begin(), options.cluster.end(), measure) !=
           options.cluster.end();
  };
  if (wants("watch-fanout")) RunWatchFanout({options, cluster, report});
  if (wants("mailbox")) RunMailbox({options, cluster, report});
  cluster.Stop();
  return report.exit_code();
}

}  // namespace chat::bench
