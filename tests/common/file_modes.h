// Test helpers for file permissions: a umask set for one scope, a file's
// mode bits.

#ifndef CHAT_TESTS_COMMON_FILE_MODES_H_
#define CHAT_TESTS_COMMON_FILE_MODES_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <string>

namespace chat::testing {

// Sets the process umask while it lives and restores the old one after.
// The umask is per process: tests that use it must not run threads that
// create files meanwhile.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  const mode_t old_;
};

// The permission bits of `path` (not following a symlink at the end), or -1
// when it cannot be stat'ed.
inline int ModeOf(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

}  // namespace chat::testing

#endif  // CHAT_TESTS_COMMON_FILE_MODES_H_
