// RunProgram: what reaches the program's own Run, and what stops before it.
// No signals blocked and no process limits applied here: the test process
// keeps its own.

#include "common/program.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace chat {
namespace {

namespace po = boost::program_options;

constexpr int kRunExit = 7;
constexpr int kCannotStart = 4;

class RunProgramTest : public ::testing::Test {
 protected:
  RunProgramTest() {
    start_.command_line.program = "program-test";
    start_.command_line.synopsis = "program-test [OPTIONS]";
    start_.command_line.environment = {{"CHAT_PROGRAM_TEST_NAME", "name"}};
    start_.block_termination_signals = false;
    start_.options.add_options()(
        "name", po::value<std::string>()->default_value("nobody"), "a name");
  }
  ~RunProgramTest() override { unsetenv("CHAT_PROGRAM_TEST_NAME"); }

  // Runs RunProgram over `args`; what Run saw goes to runs_ and name_.
  int Run(std::vector<std::string> args) {
    args.insert(args.begin(), "program-test");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    return RunProgram(static_cast<int>(argv.size()), argv.data(), start_,
                      [this](const po::variables_map& vm) {
                        ++runs_;
                        name_ = vm["name"].as<std::string>();
                        return kRunExit;
                      });
  }

  ProgramStart start_;
  int runs_ = 0;
  std::string name_;
};

TEST_F(RunProgramTest, ReturnsWhatRunReturns) {
  EXPECT_EQ(Run({"--name", "alice"}), kRunExit);
  EXPECT_EQ(runs_, 1);
  EXPECT_EQ(name_, "alice");
}

TEST_F(RunProgramTest, AnOptionNotGivenComesFromTheEnvironment) {
  setenv("CHAT_PROGRAM_TEST_NAME", "bob", 1);
  EXPECT_EQ(Run({}), kRunExit);
  EXPECT_EQ(name_, "bob");
  EXPECT_EQ(Run({"--name", "carol"}), kRunExit);
  EXPECT_EQ(name_, "carol");
}

TEST_F(RunProgramTest, HelpAndVersionExitZeroWithoutRunning) {
  EXPECT_EQ(Run({"--help"}), kExitOk);
  EXPECT_EQ(Run({"--version"}), kExitOk);
  EXPECT_EQ(runs_, 0);
}

TEST_F(RunProgramTest, AUsageErrorExitsTwoWithoutRunning) {
  EXPECT_EQ(Run({"--no-such-option"}), kExitUsage);
  EXPECT_EQ(Run({"stray"}), kExitUsage);
  EXPECT_EQ(runs_, 0);
}

TEST(StartFailureExitCodeTest, BadInputIsUsageAnythingElseCannotStart) {
  EXPECT_EQ(StartFailureExitCode(absl::InvalidArgumentError("bad file name"),
                                 kCannotStart),
            kExitUsage);
  EXPECT_EQ(
      StartFailureExitCode(absl::UnavailableError("in use"), kCannotStart),
      kCannotStart);
  EXPECT_EQ(StartFailureExitCode(absl::NotFoundError("no file"), kCannotStart),
            kCannotStart);
}

}  // namespace
}  // namespace chat
