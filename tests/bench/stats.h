// Latency and throughput arithmetic for chat-bench: percentiles of recorded
// latencies and min/median/max over rounds.

#ifndef CHAT_TESTS_BENCH_STATS_H_
#define CHAT_TESTS_BENCH_STATS_H_

#include <cstdint>
#include <vector>

namespace chat::bench {

struct LatencySummary {
  int64_t p50_us = 0;
  int64_t p90_us = 0;
  int64_t p99_us = 0;
  int64_t max_us = 0;
};

// Nearest-rank percentiles of `sorted_us` (ascending); all zero when empty.
LatencySummary Summarize(const std::vector<int64_t>& sorted_us);

// The value at nearest rank `q` (0 < q <= 1) of ascending `sorted`.
int64_t Percentile(const std::vector<int64_t>& sorted, double q);

struct Spread {
  double min = 0;
  double median = 0;
  double max = 0;
};

// Min, median (mean of the middle two for an even count) and max; all zero
// when `values` is empty.
Spread SpreadOf(std::vector<double> values);

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_STATS_H_
