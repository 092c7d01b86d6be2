// LruMap, the bound of the peer's channel cache: at most its capacity, the
// least recently used out first.

#include "peer/lru_map.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace chat::peer {
namespace {

TEST(LruMapTest, KeepsAtMostItsCapacityEvictingTheLeastRecentlyUsed) {
  LruMap<int> map(3);
  EXPECT_EQ(map.Put("a", 1), std::nullopt);
  EXPECT_EQ(map.Put("b", 2), std::nullopt);
  EXPECT_EQ(map.Put("c", 3), std::nullopt);
  ASSERT_NE(map.Find("a"), nullptr);  // "a" is now the most recent.
  EXPECT_EQ(map.Put("d", 4), std::optional<std::string>("b"));
  EXPECT_EQ(map.size(), 3u);
  EXPECT_EQ(map.Find("b"), nullptr);
  EXPECT_EQ(*map.Find("a"), 1);
  EXPECT_EQ(*map.Find("c"), 3);
  EXPECT_EQ(*map.Find("d"), 4);
}

TEST(LruMapTest, PuttingAKeyAgainReplacesItAndMakesItRecent) {
  LruMap<int> map(2);
  map.Put("a", 1);
  map.Put("b", 2);
  EXPECT_EQ(map.Put("a", 10), std::nullopt);  // Replaced, not added.
  EXPECT_EQ(map.size(), 2u);
  EXPECT_EQ(map.Put("c", 3), std::optional<std::string>("b"));
  EXPECT_EQ(*map.Find("a"), 10);
}

TEST(LruMapTest, EraseFreesARoom) {
  LruMap<int> map(2);
  map.Put("a", 1);
  map.Put("b", 2);
  EXPECT_TRUE(map.Erase("a"));
  EXPECT_FALSE(map.Erase("a"));
  EXPECT_EQ(map.Put("c", 3), std::nullopt);
  EXPECT_EQ(map.size(), 2u);
}

TEST(LruMapTest, ACapacityOfZeroKeepsOne) {
  LruMap<int> map(0);
  EXPECT_EQ(map.capacity(), 1u);
  map.Put("a", 1);
  EXPECT_EQ(map.Put("b", 2), std::optional<std::string>("a"));
  EXPECT_EQ(map.size(), 1u);
}

TEST(LruMapTest, ManyKeysStayWithinTheDefaultCapOfTheChannelCache) {
  LruMap<int> map(256);
  for (int i = 0; i < 10000; ++i) map.Put("peer" + std::to_string(i), i);
  EXPECT_EQ(map.size(), 256u);
  EXPECT_NE(map.Find("peer9999"), nullptr);
  EXPECT_EQ(map.Find("peer9743"), nullptr);
  EXPECT_NE(map.Find("peer9744"), nullptr);
}

}  // namespace
}  // namespace chat::peer
