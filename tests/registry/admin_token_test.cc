// The admin token file: made private and long by the registry, and a
// warning for one an operator made short or readable by others.

#include "registry/admin_token.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace chat::registry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class AdminTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("admin_token_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "admin.token").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& content, mode_t mode) {
    std::ofstream(path_) << content;
    ASSERT_EQ(::chmod(path_.c_str(), mode), 0);
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(AdminTokenTest, AMadeTokenDrawsNoWarning) {
  absl::StatusOr<std::string> token = LoadOrCreateAdminToken(path_);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_THAT(AdminTokenWarnings(path_, *token), IsEmpty());
}

TEST_F(AdminTokenTest, AShortTokenIsWarnedAbout) {
  Write("abc\n", 0600);
  absl::StatusOr<std::string> token = LoadOrCreateAdminToken(path_);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "abc");  // Still works: a warning, not a refusal.
  EXPECT_THAT(AdminTokenWarnings(path_, *token),
              ElementsAre(HasSubstr("is 3 characters long; use 32 or more")));
}

TEST_F(AdminTokenTest, ThirtyTwoCharactersAreEnough) {
  const std::string token(32, 'x');
  Write(token, 0600);
  EXPECT_THAT(AdminTokenWarnings(path_, token), IsEmpty());
  EXPECT_THAT(AdminTokenWarnings(path_, token.substr(1)), SizeIs(1));
}

TEST_F(AdminTokenTest, AWorldReadableFileIsWarnedAbout) {
  const std::string token(64, 'a');
  Write(token, 0644);
  EXPECT_THAT(AdminTokenWarnings(path_, token),
              ElementsAre(AllOf(HasSubstr("may be read by any user"),
                                HasSubstr("mode 0644"),
                                HasSubstr("chmod 600 " + path_))));
}

TEST_F(AdminTokenTest, AGroupReadableFileIsWarnedAbout) {
  const std::string token(64, 'a');
  Write(token, 0640);
  EXPECT_THAT(AdminTokenWarnings(path_, token),
              ElementsAre(HasSubstr("may be read by its group (mode 0640)")));
}

TEST_F(AdminTokenTest, BothAtOnce) {
  Write("abc", 0644);
  EXPECT_THAT(AdminTokenWarnings(path_, "abc"), SizeIs(2));
}

}  // namespace
}  // namespace chat::registry
