// Private files and directories: modes whatever the umask, atomic
// replacement, errors that name the path.

#include "common/private_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/common/file_modes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::ModeOf;
using ::chat::testing::ScopedUmask;
using ::chat::testing::StatusIs;
using ::chat::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The content of `path`, or the error as text.
std::string Read(const std::string& path) {
  absl::StatusOr<std::string> content = ReadPrivateFile(path);
  return content.ok() ? *content : "error: " + content.status().ToString();
}

// Names in `dir` other than `keep`: leftovers of a write.
std::vector<std::string> OtherFiles(const std::string& dir,
                                    const std::string& keep) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename();
    if (name != keep) names.push_back(name);
  }
  return names;
}

TEST(PrivateFilesTest, EnsurePrivateDirCreatesParentsPrivate) {
  TempDir temp;
  for (mode_t mask : {022, 0, 0177}) {
    ScopedUmask umask(mask);
    const std::string top = temp.File("m" + std::to_string(mask));
    const std::string dir = top + "/a/b/";
    ASSERT_THAT(EnsurePrivateDir(dir), IsOk());
    EXPECT_EQ(ModeOf(top), 0700) << "umask " << mask;
    EXPECT_EQ(ModeOf(top + "/a"), 0700) << "umask " << mask;
    EXPECT_EQ(ModeOf(top + "/a/b"), 0700) << "umask " << mask;
    EXPECT_THAT(EnsurePrivateDir(dir), IsOk());  // Idempotent.
  }
}

TEST(PrivateFilesTest, EnsurePrivateDirTightensAnExistingDir) {
  TempDir temp;
  ScopedUmask umask(022);
  const std::string dir = temp.File("data");
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(ModeOf(dir), 0755);
  ASSERT_THAT(EnsurePrivateDir(dir), IsOk());
  EXPECT_EQ(ModeOf(dir), 0700);
}

TEST(PrivateFilesTest, EnsurePrivateDirRefusesAFile) {
  TempDir temp;
  const std::string file = temp.File("file");
  std::ofstream(file) << "x";
  EXPECT_THAT(EnsurePrivateDir(file),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(file + " exists and is not a directory")));
  EXPECT_THAT(EnsurePrivateDir(file + "/sub"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(file)));
  EXPECT_THAT(EnsurePrivateDir(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PrivateFilesTest, WritePrivateFileIs0600WhateverTheUmask) {
  TempDir temp;
  for (mode_t mask : {022, 0}) {
    ScopedUmask umask(mask);
    const std::string path = temp.File("key" + std::to_string(mask));
    ASSERT_THAT(WritePrivateFile(path, "secret"), IsOk());
    EXPECT_EQ(ModeOf(path), 0600) << "umask " << mask;
    EXPECT_EQ(Read(path), std::string("secret"));
  }
}

TEST(PrivateFilesTest, WritePrivateFileReplacesAndTightensAnOldFile) {
  TempDir temp;
  ScopedUmask umask(022);
  const std::string path = temp.File("token");
  std::ofstream(path) << "old content, longer than the new one";
  ASSERT_EQ(ModeOf(path), 0644);
  ASSERT_THAT(WritePrivateFile(path, std::string("new\0bytes", 9)), IsOk());
  EXPECT_EQ(ModeOf(path), 0600);
  EXPECT_EQ(Read(path), std::string("new\0bytes", 9));
  EXPECT_THAT(OtherFiles(temp.File(""), "token"), IsEmpty());
}

TEST(PrivateFilesTest, WritePrivateFileInAMissingDirNamesThePath) {
  TempDir temp;
  const std::string path = temp.File("missing/file");
  EXPECT_THAT(WritePrivateFile(path, "x"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
  EXPECT_THAT(CreatePrivateFile(path, "x"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
}

TEST(PrivateFilesTest, CreatePrivateFileNeverReplaces) {
  TempDir temp;
  ScopedUmask umask(022);
  const std::string path = temp.File("identity");
  ASSERT_THAT(CreatePrivateFile(path, "first"), IsOk());
  EXPECT_EQ(ModeOf(path), 0600);
  EXPECT_THAT(CreatePrivateFile(path, "second"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr(path)));
  EXPECT_EQ(Read(path), std::string("first"));
  EXPECT_THAT(OtherFiles(temp.File(""), "identity"), IsEmpty());
}

TEST(PrivateFilesTest, ReadPrivateFileOfAMissingFileIsNotFound) {
  TempDir temp;
  const std::string path = temp.File("nothing");
  EXPECT_THAT(ReadPrivateFile(path),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
  EXPECT_THAT(ReadPrivateFile(temp.File("")),
              StatusIs(absl::StatusCode::kFailedPrecondition));  // EISDIR.
}

TEST(PrivateFilesTest, MakePrivateTightensAndIgnoresMissingFiles) {
  TempDir temp;
  ScopedUmask umask(022);
  const std::string path = temp.File("pins");
  std::ofstream(path) << "x";
  ASSERT_EQ(ModeOf(path), 0644);
  ASSERT_THAT(MakePrivate(path), IsOk());
  EXPECT_EQ(ModeOf(path), 0600);
  EXPECT_THAT(MakePrivate(temp.File("missing")), IsOk());
}

}  // namespace
}  // namespace chat
