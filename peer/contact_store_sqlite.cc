#include "peer/contact_store_sqlite.h"

#include "absl/strings/str_cat.h"
#include "registry/names.h"

namespace chat::peer {

using registry::NameKey;

absl::StatusOr<std::vector<Contact>> SqliteContacts::Contacts() {
  absl::MutexLock lock(&file_->db_mu);
  std::vector<Contact> contacts;
  try {
    ScopedStatement select(file_->statements,
                           "SELECT name, state, last_ms FROM contacts ORDER "
                           "BY last_ms DESC");
    while (select->executeStep()) {
      Contact contact;
      contact.name = select->getColumn(0).getString();
      const int state = select->getColumn(1).getInt();
      if (state < 0 || state > 2) continue;  // From a newer build.
      contact.state = static_cast<Contact::State>(state);
      contact.last_unix_ms = select->getColumn(2).getInt64();
      contacts.push_back(std::move(contact));
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the contacts: ", e.what()));
  }
  return contacts;
}

void SqliteContacts::SaveContact(const Contact& contact) {
  file_->batch->PostLazily([this, contact](SQLite::Database&) {
    file_->db_mu.AssertHeld();
    ScopedStatement upsert(
        file_->statements,
        "INSERT INTO contacts (name_key, name, state, last_ms) VALUES (?1, "
        "?2, ?3, ?4) ON CONFLICT (name_key) DO UPDATE SET name = ?2, state "
        "= ?3, last_ms = ?4");
    upsert->bind(1, NameKey(contact.name));
    upsert->bind(2, contact.name);
    upsert->bind(3, static_cast<int>(contact.state));
    upsert->bind(4, contact.last_unix_ms);
    upsert->exec();
    return absl::OkStatus();
  });
}

void SqliteContacts::ForgetContact(const std::string& name) {
  file_->batch->PostLazily([this, name](SQLite::Database&) {
    file_->db_mu.AssertHeld();
    ScopedStatement remove(file_->statements,
                           "DELETE FROM contacts WHERE name_key = ?1");
    remove->bind(1, NameKey(name));
    remove->exec();
    return absl::OkStatus();
  });
}

}  // namespace chat::peer
