// NameIndex on its own, no store: what it holds, counts, lists and pages
// for watches, as a store's `show` and overrides decide.

#include "registry/store/name_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "registry/names.h"

namespace chat::registry {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const MonoTime kNow = MonoTime() + Millis(100000);

Record Leased(const std::string& name, Millis left, std::string services = "",
              std::string client = "host1") {
  Record record;
  record.name = name;
  record.address = "h:1";
  record.lease_id = "lease-" + name;
  record.ttl = Millis(10000);
  record.expires_at = kNow + left;
  record.client = std::move(client);
  record.services = std::move(services);
  return record;
}

Record Static(const std::string& name) {
  Record record;
  record.name = name;
  record.address = "h:2";
  return record;
}

// As the SQLite store shows records: only while the lease lasts.
std::optional<Entry> ShowLive(const Record& record) {
  if (!record.LiveAt(kNow)) return std::nullopt;
  return ToEntry(record, kNow);
}

std::vector<std::string> Names(const std::vector<Entry>& entries) {
  std::vector<std::string> names;
  for (const Entry& entry : entries) names.push_back(entry.name);
  return names;
}

NameIndex<> Sample() {
  NameIndex<> index;
  for (const char* name : {"Alice", "albert", "bob", "carol"}) {
    index.Put(NameKey(name), Leased(name, Millis(5000)));
  }
  index.Put("gone", Leased("gone", Millis(-1)));  // Run out, not removed.
  return index;
}

TEST(NameIndexTest, PutReplacesAndEraseReturnsWhatWasThere) {
  NameIndex<> index;
  index.Put("alice", Leased("Alice", Millis(5000)));
  Record moved = Leased("Alice", Millis(5000));
  moved.address = "h:9";
  index.Put("alice", moved);
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.find("alice")->second.record.address, "h:9");
  std::optional<NameIndex<>::Slot> removed = index.Erase("alice");
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(removed->record.address, "h:9");
  EXPECT_FALSE(index.Erase("alice").has_value());
  EXPECT_EQ(index.size(), 0u);
}

TEST(NameIndexTest, CountsFollowPutAndErase) {
  NameIndex<> index;
  index.Put("a", Leased("a", Millis(1), "chat,greet", "host1"));
  index.Put("b", Leased("b", Millis(1), "", "host1"));  // Says nothing: chat.
  index.Put("s", Static("s"));
  EXPECT_EQ(index.counts().Offering("chat"), 3u);
  EXPECT_EQ(index.counts().Offering("greet"), 1u);
  const std::string owner = NameOwner(Leased("x", Millis(1)));
  EXPECT_EQ(index.counts().For(owner).owner_names, 2u);
  EXPECT_EQ(index.counts().For(owner).static_names, 1u);
  EXPECT_EQ(index.counts().For("").owner_names, 0u);
  // A change of what it offers moves the counts.
  index.Put("a", Leased("a", Millis(1), "greet", "host2"));
  EXPECT_EQ(index.counts().Offering("chat"), 2u);
  EXPECT_EQ(index.counts().For(owner).owner_names, 1u);
  index.Erase("s");
  index.Erase("b");
  EXPECT_EQ(index.counts().Offering("chat"), 0u);
  EXPECT_EQ(index.counts().For(owner).static_names, 0u);
  EXPECT_EQ(index.counts().For(owner).owner_names, 0u);
}

TEST(NameIndexTest, ResolveShowsWhatShowShows) {
  NameIndex<> index = Sample();
  ASSERT_TRUE(index.Resolve("alice", ShowLive).has_value());
  EXPECT_EQ(index.Resolve("alice", ShowLive)->name, "Alice");
  EXPECT_FALSE(index.Resolve("gone", ShowLive).has_value());
  EXPECT_FALSE(index.Resolve("nobody", ShowLive).has_value());
  // Another store shows every record it holds.
  auto show_all = [](const Record& record) -> std::optional<Entry> {
    return ToEntry(record, kNow);
  };
  EXPECT_TRUE(index.Resolve("gone", show_all).has_value());
}

TEST(NameIndexTest, ListPagesByPrefixAndService) {
  NameIndex<> index = Sample();
  index.Put("greeter", Leased("greeter", Millis(5000), "greet"));
  ListPage page = index.List("", 2, "", "", ShowLive);
  EXPECT_THAT(Names(page.entries), ElementsAre("albert", "Alice"));
  EXPECT_EQ(page.next_page_token, "alice");
  page = index.List("", 2, page.next_page_token, "", ShowLive);
  EXPECT_THAT(Names(page.entries), ElementsAre("bob", "carol"));
  page = index.List("", 2, page.next_page_token, "", ShowLive);
  EXPECT_THAT(Names(page.entries), ElementsAre("greeter"));  // Not "gone".
  EXPECT_TRUE(page.next_page_token.empty());

  EXPECT_THAT(Names(index.List("al", 10, "", "", ShowLive).entries),
              ElementsAre("albert", "Alice"));
  page = index.List("", 10, "", "greet", ShowLive);
  EXPECT_THAT(Names(page.entries), ElementsAre("greeter"));
  EXPECT_EQ(page.service, "greet");
  // A page size of 0 is 1.
  EXPECT_THAT(index.List("", 0, "", "", ShowLive).entries.size(), 1u);
}

TEST(NameIndexTest, SnapshotPagesOfAPrefix) {
  NameIndex<> index = Sample();
  WatchKeys scope(WatchScope(""));
  IndexPage page = index.ReadSnapshotPage(scope, "", 2, ShowLive);
  EXPECT_THAT(Names(page.entries), ElementsAre("albert", "Alice"));
  EXPECT_EQ(page.last_key, "alice");
  EXPECT_FALSE(page.done);
  page = index.ReadSnapshotPage(scope, page.last_key, 10, ShowLive);
  EXPECT_THAT(Names(page.entries), ElementsAre("bob", "carol"));
  EXPECT_EQ(page.last_key, "gone");  // Read, not shown.
  EXPECT_TRUE(page.done);
}

TEST(NameIndexTest, SnapshotPagesOfASetOfNames) {
  NameIndex<> index = Sample();
  WatchKeys scope(WatchScope::Names({"carol", "ALICE", "nobody"}));
  IndexPage page = index.ReadSnapshotPage(scope, "", 1, ShowLive);
  EXPECT_THAT(Names(page.entries), ElementsAre("Alice"));
  EXPECT_FALSE(page.done);
  page = index.ReadSnapshotPage(scope, page.last_key, 5, ShowLive);
  EXPECT_THAT(Names(page.entries), ElementsAre("carol"));
  EXPECT_EQ(page.last_key, "nobody");
  EXPECT_TRUE(page.done);
}

TEST(NameIndexTest, OverridesTakeThePlaceOfTheIndex) {
  NameIndex<> index = Sample();
  NameIndex<>::Overrides overrides;
  overrides["bob"] = std::nullopt;                   // Held, not shown.
  overrides["dave"] = Leased("dave", Millis(5000));  // Not held, shown.
  Record moved = Leased("carol", Millis(5000));
  moved.address = "h:old";
  overrides["carol"] = moved;
  IndexPage page = index.ReadSnapshotPage(WatchKeys(WatchScope("")), "", 10,
                                          ShowLive, &overrides);
  EXPECT_THAT(Names(page.entries),
              ElementsAre("albert", "Alice", "carol", "dave"));
  EXPECT_EQ(page.entries[2].address, "h:old");
  EXPECT_TRUE(page.done);

  // Paging through the merge keeps every key once, in order.
  std::vector<std::string> seen;
  std::string after;
  for (bool done = false; !done;) {
    IndexPage one = index.ReadSnapshotPage(WatchKeys(WatchScope("")), after, 1,
                                           ShowLive, &overrides);
    for (const Entry& entry : one.entries) seen.push_back(entry.name);
    after = one.last_key;
    done = one.done;
  }
  EXPECT_THAT(seen, ElementsAre("albert", "Alice", "carol", "dave"));

  page = index.ReadSnapshotPage(WatchKeys(WatchScope::Names({"bob", "dave"})),
                                "", 10, ShowLive, &overrides);
  EXPECT_THAT(Names(page.entries), ElementsAre("dave"));
}

TEST(NameIndexTest, ExtrasTravelWithTheirRecord) {
  struct Revision {
    int64_t mod_revision = 0;
  };
  NameIndex<Revision> index;
  index.Put("alice", Leased("alice", Millis(1)), Revision{7});
  EXPECT_EQ(index.find("alice")->second.mod_revision, 7);
  index.Put("alice", Leased("alice", Millis(1)), Revision{9});
  EXPECT_EQ(index.find("alice")->second.mod_revision, 9);
  EXPECT_THAT(index.List("zz", 5, "", "", ShowLive).entries, IsEmpty());
}

}  // namespace
}  // namespace chat::registry
