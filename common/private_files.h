// Files and directories only their owner may read: key files, pins, tokens,
// databases. Mode 0700 for directories and 0600 for files whatever the umask,
// and whether or not they existed before.

#ifndef CHAT_COMMON_PRIVATE_FILES_H_
#define CHAT_COMMON_PRIVATE_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chat {

// Every function here is thread-safe (no state of its own; the file system
// orders concurrent calls) and names the path in every error message.
// Errors: kNotFound (a missing path where one must exist), kPermissionDenied
// (EACCES/EPERM: not ours to read or chmod), kFailedPrecondition (the path is
// something else than expected, e.g. a file where a directory must be),
// kUnavailable (any other I/O failure: disk full, read-only file system).

// Creates `dir` and its missing parents with mode 0700, and sets `dir` to
// 0700 if it existed already (parents that existed are left as they are).
// A symlink to a directory is followed: the directory it names is chmodded.
absl::Status EnsurePrivateDir(const std::string& dir);

// Replaces the file at `path` atomically by one holding `bytes`, mode 0600:
// a temporary file in the same directory (O_CREAT|O_EXCL, fchmod 0600, so no
// moment where another user may open it), written, fsync'ed, renamed over
// `path`, then the directory fsync'ed. After a crash `path` holds either the
// old or the new content, never a mix; a stray "<path>.tmp-*" may remain.
// The directory must exist.
absl::Status WritePrivateFile(const std::string& path, absl::string_view bytes);

// As WritePrivateFile, but never replaces an existing file: kAlreadyExists
// when `path` exists (also when another process created it meanwhile), and
// the existing file is untouched. For files that must never be overwritten
// by accident, such as an identity key.
absl::Status CreatePrivateFile(const std::string& path,
                               absl::string_view bytes);

// The whole content of the file at `path`. kNotFound when it does not exist.
// Does not change its mode (see MakePrivate).
absl::StatusOr<std::string> ReadPrivateFile(const std::string& path);

// Sets the file at `path` to mode 0600; OK when it does not exist.
absl::Status MakePrivate(const std::string& path);

}  // namespace chat

#endif  // CHAT_COMMON_PRIVATE_FILES_H_
