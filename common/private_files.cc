#include "common/private_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/random.h"

namespace chat {
namespace {

constexpr mode_t kPrivateDirMode = 0700;
constexpr mode_t kPrivateFileMode = 0600;

// `what` failed with `error` (an errno value), as a status naming `what`.
absl::Status ErrnoStatus(int error, const std::string& what) {
  std::string message = absl::StrCat(what, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ENOTDIR:
    case EISDIR:
    case ELOOP:
      return absl::FailedPreconditionError(message);
    default:
      return absl::UnavailableError(message);
  }
}

// `path` without trailing slashes ("/" stays "/").
std::string TrimSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// The directory holding `path`, for the fsync after a rename.
std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status ChmodDir(const std::string& dir) {
  if (::chmod(dir.c_str(), kPrivateDirMode) != 0) {
    return ErrnoStatus(
        errno, absl::StrCat("cannot set directory ", dir, " to mode 0700"));
  }
  return absl::OkStatus();
}

absl::Status EnsureDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, " exists and is not a directory"));
    }
    return ChmodDir(dir);
  }
  if (errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("cannot look at directory ", dir));
  }
  const size_t slash = dir.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    const std::string parent = dir.substr(0, slash);
    struct stat parent_st;
    if (::stat(parent.c_str(), &parent_st) != 0) {
      // Missing parents are ours to create, so they are private too.
      absl::Status made = EnsureDir(TrimSlashes(parent));
      if (!made.ok()) return made;
    }
  }
  if (::mkdir(dir.c_str(), kPrivateDirMode) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, absl::StrCat("cannot create directory ", dir));
  }
  // The umask may have taken bits mkdir was given (0100 would leave a
  // directory we cannot enter), and on EEXIST another process made it.
  return ChmodDir(dir);
}

// Writes all of `bytes` to `fd`, retrying short writes and EINTR.
absl::Status WriteAll(int fd, absl::string_view bytes,
                      const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("cannot write ", path));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SyncDirectoryOf(const std::string& path) {
  const std::string dir = DirectoryOf(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return ErrnoStatus(errno, absl::StrCat("cannot open directory ", dir));
  }
  const int synced = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (synced != 0) {
    return ErrnoStatus(error, absl::StrCat("cannot sync directory ", dir));
  }
  return absl::OkStatus();
}

// Writes `bytes` to a new private temporary file next to `path` and returns
// its name; removes it again on failure.
absl::StatusOr<std::string> WriteTemporary(const std::string& path,
                                           absl::string_view bytes) {
  const std::string temp = absl::StrCat(path, ".tmp-", RandomHex(8));
  const int fd =
      ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
             kPrivateFileMode);
  if (fd < 0) {
    return ErrnoStatus(errno, absl::StrCat("cannot create ", temp));
  }
  absl::Status status;
  if (::fchmod(fd, kPrivateFileMode) != 0) {
    status =
        ErrnoStatus(errno, absl::StrCat("cannot set ", temp, " to mode 0600"));
  }
  if (status.ok()) status = WriteAll(fd, bytes, temp);
  if (status.ok() && ::fsync(fd) != 0) {
    status = ErrnoStatus(errno, absl::StrCat("cannot sync ", temp));
  }
  if (::close(fd) != 0 && status.ok()) {
    status = ErrnoStatus(errno, absl::StrCat("cannot close ", temp));
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  return temp;
}

}  // namespace

absl::Status EnsurePrivateDir(const std::string& dir) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("empty directory name");
  }
  return EnsureDir(TrimSlashes(dir));
}

absl::Status WritePrivateFile(const std::string& path,
                              absl::string_view bytes) {
  absl::StatusOr<std::string> temp = WriteTemporary(path, bytes);
  if (!temp.ok()) return temp.status();
  if (::rename(temp->c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp->c_str());
    return ErrnoStatus(error, absl::StrCat("cannot replace ", path));
  }
  return SyncDirectoryOf(path);
}

absl::Status CreatePrivateFile(const std::string& path,
                               absl::string_view bytes) {
  absl::StatusOr<std::string> temp = WriteTemporary(path, bytes);
  if (!temp.ok()) return temp.status();
  // link() fails with EEXIST where rename() would replace: the one atomic
  // "create with this content unless it exists".
  const int linked = ::link(temp->c_str(), path.c_str());
  const int error = errno;
  ::unlink(temp->c_str());
  if (linked != 0) {
    if (error == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat(path, " exists already"));
    }
    return ErrnoStatus(error, absl::StrCat("cannot create ", path));
  }
  return SyncDirectoryOf(path);
}

absl::StatusOr<std::string> ReadPrivateFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return ErrnoStatus(errno, absl::StrCat("cannot open ", path));
  }
  std::string content;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return ErrnoStatus(error, absl::StrCat("cannot read ", path));
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return content;
}

absl::Status MakePrivate(const std::string& path) {
  if (::chmod(path.c_str(), kPrivateFileMode) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno,
                       absl::StrCat("cannot set ", path, " to mode 0600"));
  }
  return absl::OkStatus();
}

}  // namespace chat
