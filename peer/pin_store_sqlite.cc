#include "peer/pin_store_sqlite.h"

#include "absl/strings/str_cat.h"
#include "registry/names.h"

namespace chat::peer {

using registry::NameKey;

absl::StatusOr<std::vector<Pin>> SqlitePins::Pins() {
  absl::MutexLock lock(&file_->db_mu);
  std::vector<Pin> pins;
  try {
    ScopedStatement select(file_->statements,
                           "SELECT name, public_key FROM pins");
    while (select->executeStep()) {
      const SQLite::Column key = select->getColumn(1);
      absl::StatusOr<PublicKey> parsed = PublicKey::FromBytes(
          absl::string_view(static_cast<const char*>(key.getBlob()),
                            static_cast<size_t>(key.getBytes())));
      if (!parsed.ok()) continue;  // Damaged: met again on first use.
      pins.push_back(Pin{select->getColumn(0).getString(), *parsed});
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the pinned keys: ", e.what()));
  }
  return pins;
}

absl::Status SqlitePins::SavePin(const std::string& name,
                                 const std::optional<PublicKey>& key) {
  const int64_t now = absl::ToUnixMillis(file_->clock.Wall());
  return file_->batch->Run([this, name, key, now](SQLite::Database&) {
    file_->db_mu.AssertHeld();
    if (!key.has_value()) {
      ScopedStatement remove(file_->statements,
                             "DELETE FROM pins WHERE name_key = ?1");
      remove->bind(1, NameKey(name));
      remove->exec();
      return absl::OkStatus();
    }
    ScopedStatement upsert(
        file_->statements,
        "INSERT INTO pins (name_key, name, public_key, pinned_at_ms) VALUES "
        "(?1, ?2, ?3, ?4) ON CONFLICT (name_key) DO UPDATE SET name = ?2, "
        "public_key = ?3, pinned_at_ms = ?4");
    const std::string bytes = key->Bytes();
    upsert->bind(1, NameKey(name));
    upsert->bind(2, name);
    upsert->bind(3, bytes.data(), static_cast<int>(bytes.size()));
    upsert->bind(4, now);
    upsert->exec();
    return absl::OkStatus();
  });
}

}  // namespace chat::peer
