// What a terminal may show of untrusted text (names, messages), and when two
// names could be taken for one another. ICU does the Unicode work; none of
// its types appear here, so users of this header need no ICU headers.

#ifndef CHAT_COMMON_UNICODE_H_
#define CHAT_COMMON_UNICODE_H_

#include <string>

namespace chat {

// `text` as a terminal should show it, so the screen shows what was sent and
// only that:
//  - control characters (C0, DEL, C1), which could move the cursor or
//    recolour the screen, and malformed UTF-8 become U+FFFD;
//  - characters that are invisible or change how others are drawn are
//    written out as "<U+202E>": format characters (category Cf: bidi
//    embeddings, overrides and isolates, zero-width space and joiners, the
//    BOM, soft hyphen, ...), other default-ignorable code points (Hangul
//    fillers), unassigned (Cn), private-use (Co) and surrogate (Cs) code
//    points, and the line and paragraph separators (Zl, Zp).
// The one exception: a zero-width joiner between two pictographs is kept,
// since that is how an emoji sequence (a family, a flag) is written.
// Everything else passes unchanged. Thread-safe.
std::string VisibleText(const std::string& text);

// A name (a sender's, which a lab peer chooses freely) as a terminal should
// show it: VisibleText(), no emoji exception, and white space at either end
// written out too ("alice<U+0020>"), so "alice " cannot pass for "alice".
std::string VisibleName(const std::string& name);

// What two names look like once what a reader cannot see or tell apart is
// set aside. Two names look alike (LookAlike) when, with default-ignorable,
// format, control and white-space characters removed, they have the same
// UTS #39 confusable skeleton either as written ("aIice" and "alice") or
// after case folding ("ALICE" and "аlice", Cyrillic a).
struct LookalikeKey {
  std::string skeleton;         // Of the name as written.
  std::string folded_skeleton;  // Of the name case-folded.
};
// Empty keys when `name` is not valid UTF-8 or ICU cannot say. Thread-safe.
LookalikeKey LookalikeKeyOf(const std::string& name);
// False when either key is empty.
bool LookAlike(const LookalikeKey& a, const LookalikeKey& b);

}  // namespace chat

#endif  // CHAT_COMMON_UNICODE_H_
