// What a terminal may show of untrusted text, and which names look alike.

#include "common/unicode.h"

#include <gtest/gtest.h>

#include <string>

namespace chat {
namespace {

TEST(VisibleTextTest, PlainTextPassesUnchanged) {
  for (const std::string text :
       {"hello", "ciao, come stai?", "Grüße", "日本語", "مرحبا", "שלום",
        "\xF0\x9F\x98\x80",             // U+1F600, an emoji.
        "\xE2\x9D\xA4\xEF\xB8\x8F"}) {  // U+2764 U+FE0F, a red heart.
    EXPECT_EQ(VisibleText(text), text);
  }
}

TEST(VisibleTextTest, ControlCharactersBecomeReplacementCharacters) {
  EXPECT_EQ(VisibleText("a\033[2Jb\r\n"),
            "a\xEF\xBF\xBD[2Jb\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(VisibleText("a\xC2\x9B"
                        "b"),
            "a\xEF\xBF\xBD"
            "b");                                    // C1 CSI.
  EXPECT_EQ(VisibleText("a\xC3"), "a\xEF\xBF\xBD");  // Truncated sequence.
}

TEST(VisibleTextTest, BidiAndZeroWidthCharactersAreWrittenOut) {
  // RIGHT-TO-LEFT OVERRIDE ... POP DIRECTIONAL FORMATTING.
  EXPECT_EQ(VisibleText("abc\xE2\x80\xAEgpj.exe\xE2\x80\xAC"),
            "abc<U+202E>gpj.exe<U+202C>");
  // The isolates, U+2066..U+2069.
  EXPECT_EQ(VisibleText("\xE2\x81\xA6x\xE2\x81\xA7y\xE2\x81\xA8z\xE2\x81\xA9"),
            "<U+2066>x<U+2067>y<U+2068>z<U+2069>");
  // Zero-width space, non-joiner, joiner (between letters), word joiner,
  // BOM, soft hyphen.
  EXPECT_EQ(VisibleText("a\xE2\x80\x8B"
                        "b\xE2\x80\x8C"
                        "c\xE2\x80\x8D"
                        "d"
                        "\xE2\x81\xA0"
                        "e\xEF\xBB\xBF"
                        "f\xC2\xAD"
                        "g"),
            "a<U+200B>b<U+200C>c<U+200D>d<U+2060>e<U+FEFF>f<U+00AD>g");
  // A Hangul filler draws as nothing, though it is a letter.
  EXPECT_EQ(VisibleText("x\xE3\x85\xA4y"), "x<U+3164>y");
  // Line and paragraph separators.
  EXPECT_EQ(VisibleText("a\xE2\x80\xA8"
                        "b\xE2\x80\xA9"),
            "a<U+2028>b<U+2029>");
}

TEST(VisibleTextTest, UnassignedAndPrivateUseAreWrittenOut) {
  EXPECT_EQ(VisibleText("\xEE\x80\x80"), "<U+E000>");        // Private use.
  EXPECT_EQ(VisibleText("\xF3\xB0\x80\x80"), "<U+F0000>");   // Plane 15 PUA.
  EXPECT_EQ(VisibleText("\xF0\xAF\xBF\xBF"), "<U+2FFFF>");   // Noncharacter.
  EXPECT_EQ(VisibleText("\xF4\x8F\xBF\xBD"), "<U+10FFFD>");  // PUA-B.
}

TEST(VisibleTextTest, AZeroWidthJoinerBetweenPictographsIsAnEmoji) {
  // MAN ZWJ WOMAN ZWJ GIRL: one family.
  const std::string family =
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91"
      "\xA7";
  EXPECT_EQ(VisibleText(family), family);
  // In a name it is written out all the same.
  EXPECT_NE(VisibleName(family), family);
}

TEST(VisibleNameTest, WhiteSpaceAtEitherEndIsWrittenOut) {
  EXPECT_EQ(VisibleName("alice "), "alice<U+0020>");
  EXPECT_EQ(VisibleName(" alice"), "<U+0020>alice");
  EXPECT_EQ(VisibleName("Davide De Rosa"), "Davide De Rosa");
  EXPECT_EQ(VisibleName("alice\xE2\x80\x8B"), "alice<U+200B>");
  EXPECT_EQ(VisibleName("alice\xC2\xA0"), "alice<U+00A0>");  // No-break space.
}

TEST(LookalikeTest, NamesThatLookTheSameLookAlike) {
  const LookalikeKey alice = LookalikeKeyOf("alice");
  for (const std::string name : {
           "alice",
           "\xD0\xB0lice",       // Cyrillic a.
           "alice\xE2\x80\x8B",  // Zero-width space.
           "al\xC2\xADice",      // Soft hyphen.
           "alice ", " alice", "ALICE", "Alice",
           "aIice",  // Capital I.
           "a1ice",
           "\xEF\xBD\x81lice",  // Fullwidth a.
       }) {
    EXPECT_TRUE(LookAlike(LookalikeKeyOf(name), alice)) << name;
  }
  EXPECT_TRUE(LookAlike(LookalikeKeyOf("rnallory"), LookalikeKeyOf("mallory")));
}

TEST(LookalikeTest, DifferentNamesDoNot) {
  const LookalikeKey alice = LookalikeKeyOf("alice");
  for (const std::string name : {"alicia", "bob", "alice2", "malice", ""}) {
    EXPECT_FALSE(LookAlike(LookalikeKeyOf(name), alice)) << name;
  }
  EXPECT_FALSE(LookAlike(LookalikeKeyOf("a\xC3"), LookalikeKeyOf("a\xC3")));
}

}  // namespace
}  // namespace chat
