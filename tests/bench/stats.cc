#include "tests/bench/stats.h"

#include <algorithm>
#include <cmath>

namespace chat::bench {

int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(sorted.size()));
  size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  index = std::min(index, sorted.size() - 1);
  return sorted[index];
}

LatencySummary Summarize(const std::vector<int64_t>& sorted_us) {
  LatencySummary summary;
  if (sorted_us.empty()) return summary;
  summary.p50_us = Percentile(sorted_us, 0.50);
  summary.p90_us = Percentile(sorted_us, 0.90);
  summary.p99_us = Percentile(sorted_us, 0.99);
  summary.max_us = sorted_us.back();
  return summary;
}

Spread SpreadOf(std::vector<double> values) {
  Spread spread;
  if (values.empty()) return spread;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  spread.min = values.front();
  spread.max = values.back();
  spread.median =
      n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  return spread;
}

}  // namespace chat::bench
