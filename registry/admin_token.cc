#include "registry/admin_token.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/private_files.h"
#include "common/random.h"

namespace chat::registry {

std::string DefaultAdminTokenPath(const std::string& db_path) {
  if (db_path.empty() || db_path == ":memory:") return "admin.token";
  const std::filesystem::path dir =
      std::filesystem::path(db_path).parent_path();
  return dir.empty() ? "admin.token" : (dir / "admin.token").string();
}

absl::StatusOr<std::string> ReadAdminToken(const std::string& path) {
  absl::StatusOr<std::string> content = ReadPrivateFile(path);
  if (!content.ok()) return content.status();
  std::string token(absl::StripAsciiWhitespace(*content));
  if (token.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "admin token file ", path,
        " is empty: put a token in it, or remove it to have the registry "
        "make one"));
  }
  return token;
}

absl::StatusOr<std::string> LoadOrCreateAdminToken(const std::string& path) {
  absl::StatusOr<std::string> token = ReadAdminToken(path);
  if (token.status().code() != absl::StatusCode::kNotFound) return token;
  absl::Status created = CreatePrivateFile(path, RandomHex(32) + "\n");
  if (!created.ok() && created.code() != absl::StatusCode::kAlreadyExists) {
    return created;
  }
  return ReadAdminToken(path);
}

std::vector<std::string> AdminTokenWarnings(const std::string& path,
                                            const std::string& token) {
  std::vector<std::string> warnings;
  if (token.size() < kMinAdminTokenChars) {
    warnings.push_back(absl::StrCat("the admin token in ", path, " is ",
                                    token.size(), " characters long; use ",
                                    kMinAdminTokenChars,
                                    " or more random ones (remove the file to "
                                    "have the registry make one)"));
  }
  struct stat info;
  if (::stat(path.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o",
                  static_cast<unsigned>(info.st_mode & 07777));
    warnings.push_back(
        absl::StrCat("the admin token file ", path, " may be read by ",
                     (info.st_mode & 007) != 0 ? "any user" : "its group",
                     " (mode ", mode, "); chmod 600 ", path));
  }
  return warnings;
}

}  // namespace chat::registry
