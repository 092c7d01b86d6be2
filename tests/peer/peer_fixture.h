// PeerTest: real peers chatting by name through a real in-process registry
// (store and mailbox on one SQLite file) on loopback, each peer with its
// own identity key.

#ifndef CHAT_TESTS_PEER_PEER_FIXTURE_H_
#define CHAT_TESTS_PEER_PEER_FIXTURE_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/random.h"
#include "peer/peer.h"
#include "registry/groups/sqlite_group_store.h"
#include "registry/mailbox/sqlite_mailbox.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/peer/recording_sink.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat::peer {

inline auto MessageFrom(const std::string& from, const std::string& text) {
  return [from, text](const PeerEvent& event) {
    return event.kind == EventKind::kMessage && event.message.from == from &&
           event.message.text == text;
  };
}

// The first state of message `id` after kSent: delivered, stored or failed.
inline auto ResultFor(const std::string& id) {
  return [id](const PeerEvent& event) {
    return event.kind == EventKind::kSendResult && event.message.id == id &&
           event.status != SendStatus::kSent;
  };
}

inline auto StateOf(const std::string& id, SendStatus status) {
  return [id, status](const PeerEvent& event) {
    return event.kind == EventKind::kSendResult && event.message.id == id &&
           event.status == status;
  };
}

inline constexpr char kAdminToken[] = "peer-test-admin-token";

class PeerTest : public ::testing::Test {
 protected:
  PeerTest()
      : db_path_(std::filesystem::temp_directory_path() /
                 ("chat-peer-test-" + RandomHex(8) + ".db")) {}

  ~PeerTest() override {
    peers_.clear();
    registry_.reset();
    for (const char* suffix : {"", "-wal", "-shm", ".lock"}) {
      std::filesystem::remove(db_path_ + suffix);
    }
    for (const char* suffix : {"", "-wal", "-shm", ".lock"}) {
      std::filesystem::remove(registry::MailboxPath(db_path_) + suffix);
      std::filesystem::remove(registry::GroupStorePath(db_path_) + suffix);
    }
  }

  void SetUp() override { StartRegistry(0); }

  void StartRegistry(int port, bool with_mailbox = true) {
    auto store = registry::OpenSqliteStore(db_path_, RealClock());
    ASSERT_THAT(store, chat::testing::IsOk());
    std::unique_ptr<registry::Mailbox> mailbox;
    if (with_mailbox) {
      auto opened = registry::OpenSqliteMailbox(db_path_, RealClock());
      ASSERT_THAT(opened, chat::testing::IsOk());
      mailbox = *std::move(opened);
    }
    auto groups = registry::OpenSqliteGroupStore(db_path_);
    ASSERT_THAT(groups, chat::testing::IsOk());
    registry::RegistryServerOptions options;
    options.listen_address = absl::StrCat("127.0.0.1:", port);
    options.admin_token = kAdminToken;
    auto server = registry::RegistryServer::Start(
        *std::move(store), std::move(mailbox), *std::move(groups), options);
    ASSERT_THAT(server, chat::testing::IsOk());
    registry_ = *std::move(server);
    registry_address_ = absl::StrCat("127.0.0.1:", registry_->port());
  }

  PeerOptions Options(const std::string& name) {
    PeerOptions options;
    options.name = name;
    options.registry = registry_address_;
    options.listen = "127.0.0.1:0";
    options.ttl = Millis(2000);
    options.rpc_timeout = Millis(3000);
    options.store_path = dir_.File(name + ".db");
    // One key per name, named in lowercase: "ALICE" is alice started twice
    // (the same key), and tests can load or replace a peer's key.
    options.identity_path = dir_.File(absl::AsciiStrToLower(name) + ".key");
    options.retry_max = Millis(500);
    return options;
  }

  // Starts a peer named `name` recording into sinks_[name].
  absl::Status StartPeer(const std::string& name) {
    return StartPeer(Options(name));
  }
  absl::Status StartPeer(const PeerOptions& options) {
    const std::string& name = options.name;
    auto& sink = sinks_[name];
    if (sink == nullptr) sink = std::make_unique<RecordingSink>();
    auto peer = Peer::Start(options, sink.get(), RealClock());
    if (!peer.ok()) return peer.status();
    peers_[name] = *std::move(peer);
    return absl::OkStatus();
  }

  // Shuts `name`'s peer down (it unregisters); its sink stays.
  void StopPeer(const std::string& name) { peers_.erase(name); }

  // A registry client, with the admin token when `admin`.
  std::unique_ptr<registry::RegistryClient> Client(bool admin = false) {
    auto client =
        registry::RegistryClient::Connect(registry_address_, Millis(3000));
    if (admin) client->SetAdminToken(kAdminToken);
    return client;
  }

  Peer& peer(const std::string& name) { return *peers_.at(name); }
  RecordingSink& sink(const std::string& name) { return *sinks_.at(name); }

  // Sends and waits for the outcome.
  PeerEvent SendAndWait(const std::string& from, const std::string& to,
                        const std::string& text) {
    auto id = peer(from).Send(to, text);
    EXPECT_THAT(id, chat::testing::IsOk());
    auto result = sink(from).WaitFor(ResultFor(id.value_or("")));
    EXPECT_TRUE(result.has_value()) << "no send result for " << text;
    return result.value_or(PeerEvent());
  }

  chat::testing::TempDir dir_;  // The peers' files.
  std::string db_path_;
  std::unique_ptr<registry::RegistryServer> registry_;
  std::string registry_address_;
  std::map<std::string, std::unique_ptr<RecordingSink>> sinks_;
  std::map<std::string, std::unique_ptr<Peer>> peers_;
};

}  // namespace chat::peer

#endif  // CHAT_TESTS_PEER_PEER_FIXTURE_H_
