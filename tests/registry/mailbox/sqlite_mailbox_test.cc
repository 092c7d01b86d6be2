// The SQLite mailbox: the Mailbox contract (mailbox_test.cc) on a file
// and in memory, and what only the SQLite mailbox does.

#include "registry/mailbox/sqlite_mailbox.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/identity.h"
#include "common/random.h"
#include "registry/store/sqlite_store.h"
#include "tests/registry/mailbox/mailbox_contract.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

INSTANTIATE_TEST_SUITE_P(
    AllMailboxes, MailboxContractTest,
    ::testing::Values(MailboxFactory{"SqliteInMemory", false,
                                     [](const Clock& clock, const std::string&,
                                        const MailboxLimits& limits) {
                                       return OpenSqliteMailbox(
                                           ":memory:", clock, limits);
                                     }},
                      MailboxFactory{
                          "SqliteFile", true,
                          [](const Clock& clock, const std::string& path,
                             const MailboxLimits& limits) {
                            return OpenSqliteMailbox(path, clock, limits);
                          }}),
    [](const ::testing::TestParamInfo<MailboxFactory>& param_info) {
      return param_info.param.name;
    });

// What only the SQLite mailbox does. Storage failures are real SQLite
// errors: a trigger that a second connection adds to the file.
TEST(SqliteMailboxTest, AFailingWriteFailsAloneAndChangesNothing) {
  TempDir dir;
  FakeClock clock;
  MailboxLimits limits;
  limits.max_items = 1000;
  auto opened = OpenSqliteMailbox(dir.File("registry.db"), clock, limits);
  ASSERT_THAT(opened, IsOk());
  std::unique_ptr<Mailbox> mailbox = *std::move(opened);
  {
    SQLite::Database db(MailboxPath(dir.File("registry.db")),
                        SQLite::OPEN_READWRITE);
    db.exec(
        "CREATE TRIGGER fail_bad BEFORE INSERT ON mail WHEN "
        "NEW.recipient_key = 'bad' BEGIN SELECT RAISE(ABORT, 'injected "
        "failure'); END");
  }
  // Deposits that share commits with the failing ones, whichever batches
  // they fall into, all succeed.
  constexpr int kThreads = 6;
  constexpr int kPerThread = 20;
  std::vector<std::thread> threads;
  std::atomic<int> good_failures{0};
  std::atomic<int> bad_successes{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = absl::StrCat("m", t, "x", i);
        const std::string to = t % 2 == 0 ? "bad" : absl::StrCat("ok", t);
        absl::Status status = mailbox->Deposit(Message("alice", to, id));
        if (to == "bad" && status.ok()) ++bad_successes;
        if (to != "bad" && !status.ok()) ++good_failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(good_failures.load(), 0);
  EXPECT_EQ(bad_successes.load(), 0);
  EXPECT_THAT(
      mailbox->Deposit(Message("alice", "bad", "one more")),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("injected failure")));
  for (int t = 1; t < kThreads; t += 2) {
    auto stats = mailbox->Stat(absl::StrCat("ok", t));
    ASSERT_THAT(stats, IsOk());
    EXPECT_EQ(stats->count, size_t{kPerThread});
  }
  auto bad = mailbox->Stat("bad");
  ASSERT_THAT(bad, IsOk());
  EXPECT_EQ(bad->count, 0u);
  // The counts in memory match the file: a reopened mailbox agrees.
  mailbox.reset();
  opened = OpenSqliteMailbox(dir.File("registry.db"), clock, limits);
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ((*opened)->Stat("ok1")->count, size_t{kPerThread});
}

// On a small disk, mail must not take the room the names need (Register and
// PutStatic failing with "database or disk is full"). On a 16 MiB file system
// of its own, with chat-registry's default total, mail fills its quota and
// names are still written.
TEST(SqliteMailboxTest, AFullMailboxLeavesRoomForTheNames) {
  TempDir dir;
  const std::string small = dir.File("small");
  ASSERT_TRUE(std::filesystem::create_directory(small));
  if (mount("tmpfs", small.c_str(), "tmpfs", 0, "size=16m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (needs root): "
                 << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{small};
  FakeClock clock;
  const std::string db = small + "/registry.db";
  SqliteStoreOptions store_options;
  store_options.name_quotas.max_per_key = 1000;
  auto store = OpenSqliteStore(db, clock, store_options);
  ASSERT_THAT(store, IsOk());
  MailboxLimits limits;  // Only the total limits this flood.
  limits.max_items = limits.max_items_per_sender = 1 << 20;
  limits.max_bytes = limits.max_bytes_per_sender = size_t{1} << 30;
  limits.max_total_bytes = DefaultMailboxTotalBytes(db);
  EXPECT_LE(limits.max_total_bytes, size_t{4} << 20);  // A quarter.
  auto mailbox = OpenSqliteMailbox(db, clock, limits);
  ASSERT_THAT(mailbox, IsOk());
  absl::Status refused;
  int stored = 0;
  for (int i = 0; i < 5000 && refused.ok(); ++i) {
    refused = (*mailbox)->Deposit(
        From(absl::StrCat("10.0.0.", i % 50),
             Message("m", absl::StrCat("r", i % 20), absl::StrCat("id", i),
                     std::string(16 * 1024, 'x'))));
    if (refused.ok()) ++stored;
  }
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted,
                                HasSubstr("--mailbox-max-total-mb")));
  EXPECT_GT(stored, 100);
  // The names: registrations and static entries are all written.
  PublicKey key;
  key.bytes.fill(7);
  for (int i = 0; i < 300; ++i) {
    ASSERT_THAT(
        (*store)->Register({absl::StrCat("n", i), "h:1", Millis(0), "", key}),
        IsOk());
  }
  for (int i = 0; i < 50; ++i) {
    ASSERT_THAT((*store)->PutStatic(absl::StrCat("s", i), "h:1"), IsOk());
  }
  EXPECT_EQ((*store)->Size(), 350u);
  // Mail still flows once some is delivered.
  ASSERT_THAT((*mailbox)->AckIds("r0", {"id0", "id20"}, {}), IsOk());
  EXPECT_THAT((*mailbox)->Deposit(Message("m", "r0", "again")), IsOk());
  mailbox->reset();
  store->reset();
}

// Mail kept inside the registry's own file (older registries) moves to the
// mailbox's file on open, and stays there.
TEST(SqliteMailboxTest, MailInTheRegistryFileMovesToItsOwnFile) {
  TempDir dir;
  FakeClock clock;
  const std::string db = dir.File("registry.db");
  auto store = OpenSqliteStore(db, clock);  // Makes the old mail table.
  ASSERT_THAT(store, IsOk());
  {
    SQLite::Database old(db, SQLite::OPEN_READWRITE);
    old.exec(
        "INSERT INTO mail (recipient_key, id, kind, sender, recipient, "
        "payload, deposited_at_ms) VALUES ('bob', 'm1', 1, 'alice', 'Bob', "
        "x'00', 0), ('bob', 'm2', 1, 'alice', 'Bob', x'01', 0)");
  }
  EXPECT_EQ(MailboxPath(db), dir.File("registry.mail.db"));
  for (int round = 0; round < 2; ++round) {
    auto mailbox = OpenSqliteMailbox(db, clock);
    ASSERT_THAT(mailbox, IsOk());
    auto items = (*mailbox)->Peek("bob", 0, 10);
    ASSERT_THAT(items, IsOk());
    ASSERT_THAT(*items, SizeIs(2));
    EXPECT_EQ((*items)[0].id, "m1");
    EXPECT_EQ((*items)[1].recipient, "Bob");
  }
  SQLite::Database old(db, SQLite::OPEN_READONLY);
  EXPECT_EQ(old.execAndGet("SELECT count(*) FROM mail").getInt(), 0);
}

// A mailbox file made by the first schema, (recipient, id) unique, is
// carried over: its items stay, get their digests, and the ids after them
// continue where they were; from then on another payload under a known id
// is kept beside the first.
TEST(SqliteMailboxTest, AFileOfTheFirstSchemaIsCarriedOver) {
  TempDir dir;
  FakeClock clock;
  const std::string db = dir.File("registry.db");
  {
    SQLite::Database old(MailboxPath(db),
                         SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    // The first schema, as the registry wrote it.
    old.exec(R"sql(
      CREATE TABLE mail (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient_key   TEXT NOT NULL,
        id              TEXT NOT NULL,
        kind            INTEGER NOT NULL,
        sender          TEXT NOT NULL,
        recipient       TEXT NOT NULL,
        payload         BLOB NOT NULL,
        deposited_at_ms INTEGER NOT NULL,
        origin          TEXT NOT NULL DEFAULT '',
        UNIQUE (recipient_key, id)
      );
      CREATE INDEX mail_by_recipient ON mail (recipient_key, seq);
      CREATE INDEX mail_by_age ON mail (deposited_at_ms);
      INSERT INTO mail (recipient_key, id, kind, sender, recipient, payload,
                        deposited_at_ms, origin)
        VALUES ('bob', 'm1', 1, 'alice', 'Bob', x'00', 0, 'h'),
               ('bob', 'm2', 1, 'alice', 'Bob', x'01', 0, 'h'),
               ('bob', 'm3', 1, 'alice', 'Bob', x'02', 0, 'h');
      DELETE FROM mail WHERE id = 'm3';
      PRAGMA user_version = 1;
    )sql");
  }
  auto mailbox = OpenSqliteMailbox(db, clock);
  ASSERT_THAT(mailbox, IsOk());
  auto items = (*mailbox)->Peek("bob", 0, 10);
  ASSERT_THAT(items, IsOk());
  ASSERT_THAT(*items, SizeIs(2));
  EXPECT_EQ((*items)[0].id, "m1");
  EXPECT_EQ((*items)[0].seq, 1);
  EXPECT_EQ((*items)[0].digest, ContentDigest(std::string(1, '\0')));
  EXPECT_EQ((*items)[1].digest, ContentDigest("\x01"));
  // Another payload under m1 is kept beside it; the same one is not.
  ASSERT_THAT((*mailbox)->Deposit(Message("alice", "bob", "m1", "other")),
              IsOk());
  ASSERT_THAT(
      (*mailbox)->Deposit(Message("alice", "bob", "m1", std::string(1, '\0'))),
      IsOk());
  items = (*mailbox)->Peek("bob", 0, 10);
  ASSERT_THAT(items, IsOk());
  ASSERT_THAT(*items, SizeIs(3));
  // After every seq given before, the removed m3's too (a Listen stream
  // resumes after the last seq it saw).
  EXPECT_EQ((*items)[2].seq, 4);
  EXPECT_EQ((*items)[2].payload, "other");
  // The limits count what was carried over.
  auto stats = (*mailbox)->Stat("bob");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->count, 3u);
  mailbox->reset();
  // And again: nothing moves twice.
  auto again = OpenSqliteMailbox(db, clock);
  ASSERT_THAT(again, IsOk());
  items = (*again)->Peek("bob", 0, 10);
  ASSERT_THAT(items, IsOk());
  EXPECT_THAT(*items, SizeIs(3));
}

}  // namespace
}  // namespace chat::registry
