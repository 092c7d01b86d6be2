// How chat-bench's measurements of real binaries (--system, --cluster)
// report: notes and results on one stream, problems on another, and the exit
// code the problems add up to.

#ifndef CHAT_TESTS_BENCH_RUN_REPORT_H_
#define CHAT_TESTS_BENCH_RUN_REPORT_H_

#include <ostream>
#include <string>

#include "tests/bench/stats.h"

namespace chat::bench {

// `value` with `decimals` digits after the point, for JSON and text alike.
std::string Fixed(double value, int decimals);

// {"min":..,"median":..,"max":..}, each with `decimals` digits.
std::string SpreadJson(const Spread& spread, int decimals);

// Not thread-safe: the bench's own thread reports, never gRPC's.
class RunReport {
 public:
  // `out` and `err`: not owned; must outlive this.
  RunReport(bool json, std::ostream& out, std::ostream& err)
      : json_(json), out_(out), err_(err) {}

  // A comment ("# text"), in the text report only.
  void Note(const std::string& text);

  // One result: the JSON line with --json, else the text.
  void Emit(const std::string& json, const std::string& text);

  // Reports why the run cannot go on; the exit code becomes
  // kExitCannotStart, which it returns.
  int CannotStart(const std::string& message);

  // Reports a failure; the exit code becomes kExitCallsFailed unless one is
  // set already. Returns false, for steps that fail with it.
  bool Failed(const std::string& message);

  // 0 until a problem was reported.
  int exit_code() const { return exit_code_; }

 private:
  const bool json_;
  std::ostream& out_;
  std::ostream& err_;
  int exit_code_ = 0;
};

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_RUN_REPORT_H_
