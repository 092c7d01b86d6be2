// A scratch directory for a test, removed with it.

#ifndef CHAT_TESTS_TESTING_TEMP_DIR_H_
#define CHAT_TESTS_TESTING_TEMP_DIR_H_

#include <filesystem>
#include <string>

#include "common/random.h"

namespace chat::testing {

class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("chat-test-" + RandomHex(8))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The path of `name` inside the directory.
  std::string File(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_TEMP_DIR_H_
