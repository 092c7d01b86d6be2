// The contacts' SQLite side (table `contacts`). For peer/*_sqlite.cc only.

#ifndef CHAT_PEER_CONTACT_STORE_SQLITE_H_
#define CHAT_PEER_CONTACT_STORE_SQLITE_H_

#include "peer/contact_store.h"
#include "peer/peer_file_sqlite.h"

namespace chat::peer {

class SqliteContacts final : public ContactStore {
 public:
  explicit SqliteContacts(PeerFile* file) : file_(file) {}

  absl::StatusOr<std::vector<Contact>> Contacts() override;
  void SaveContact(const Contact& contact) override;
  void ForgetContact(const std::string& name) override;

 private:
  PeerFile* const file_;
};

}  // namespace chat::peer

#endif  // CHAT_PEER_CONTACT_STORE_SQLITE_H_
