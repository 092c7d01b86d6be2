#include "tests/bench/run_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/bench/bench.h"

namespace chat::bench {

std::string Fixed(double value, int decimals) {
  return absl::StrFormat("%.*f", decimals, value);
}

std::string SpreadJson(const Spread& spread, int decimals) {
  return absl::StrCat("{\"min\":", Fixed(spread.min, decimals),
                      ",\"median\":", Fixed(spread.median, decimals),
                      ",\"max\":", Fixed(spread.max, decimals), "}");
}

void RunReport::Note(const std::string& text) {
  if (!json_) out_ << "# " << text << "\n" << std::flush;
}

void RunReport::Emit(const std::string& json, const std::string& text) {
  out_ << (json_ ? json : text) << "\n" << std::flush;
}

int RunReport::CannotStart(const std::string& message) {
  err_ << "chat-bench: " << message << "\n";
  exit_code_ = kExitCannotStart;
  return exit_code_;
}

bool RunReport::Failed(const std::string& message) {
  err_ << "chat-bench: " << message << "\n";
  if (exit_code_ == 0) exit_code_ = kExitCallsFailed;
  return false;
}

}  // namespace chat::bench
