#include "registry/admin_token.h"

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

}  // namespace chat::registry
