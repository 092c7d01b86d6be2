#include "common/unicode.h"

#include <unicode/uchar.h>
#include <unicode/uspoof.h>
#include <unicode/ustring.h>
#include <unicode/utypes.h>

#include <cstdint>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/utf8.h"

namespace chat {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
constexpr UChar32 kZeroWidthJoiner = 0x200D;

// The code point of the well-formed sequence of `len` bytes at text[pos].
UChar32 Decode(const std::string& text, size_t pos, size_t len) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  if (len == 1) return byte(pos);
  UChar32 c = byte(pos) & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (size_t k = 1; k < len; ++k) c = (c << 6) | (byte(pos + k) & 0x3F);
  return c;
}

struct CodePoint {
  UChar32 c = -1;  // -1: malformed.
  size_t len = 1;  // Bytes it takes (1 for a malformed byte).
};

std::vector<CodePoint> Split(const std::string& text) {
  std::vector<CodePoint> out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = Utf8SequenceLength(text, pos);
    out.push_back(len == 0 ? CodePoint{-1, 1}
                           : CodePoint{Decode(text, pos, len), len});
    pos += out.back().len;
  }
  return out;
}

bool IsControl(UChar32 c) { return c < 0x20 || (c >= 0x7F && c < 0xA0); }

// Drawn as nothing, or changes how its neighbours are drawn, or means
// nothing yet: never shown raw.
bool IsHidden(UChar32 c, bool keep_variation_selectors) {
  switch (u_charType(c)) {
    case U_FORMAT_CHAR:
    case U_UNASSIGNED:  // Cn
    case U_PRIVATE_USE_CHAR:
    case U_SURROGATE:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
      return true;
    default:
      break;
  }
  if (u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT)) {
    // U+FE0F asks for the emoji form of the character before it.
    return !(keep_variation_selectors &&
             u_hasBinaryProperty(c, UCHAR_VARIATION_SELECTOR));
  }
  return false;
}

// Modifiers that belong to the pictograph before them.
bool ExtendsPictograph(UChar32 c) {
  return u_hasBinaryProperty(c, UCHAR_VARIATION_SELECTOR) ||
         u_hasBinaryProperty(c, UCHAR_EMOJI_MODIFIER);
}

std::string Visible(const std::string& text, bool name) {
  const std::vector<CodePoint> points = Split(text);
  // White space at either end of a name is written out too.
  size_t first = 0;
  size_t last = points.size();
  if (name) {
    while (first < last && points[first].c >= 0 &&
           u_isUWhiteSpace(points[first].c)) {
      ++first;
    }
    while (last > first && points[last - 1].c >= 0 &&
           u_isUWhiteSpace(points[last - 1].c)) {
      --last;
    }
  }
  std::string out;
  out.reserve(text.size());
  bool after_pictograph = false;  // The last base character was one.
  size_t pos = 0;
  for (size_t i = 0; i < points.size(); pos += points[i].len, ++i) {
    const UChar32 c = points[i].c;
    if (c < 0 || IsControl(c)) {
      out += kReplacement;
      after_pictograph = false;
      continue;
    }
    bool hidden = i < first || i >= last || IsHidden(c, !name);
    if (c == kZeroWidthJoiner && !name && after_pictograph &&
        i + 1 < points.size() && points[i + 1].c >= 0 &&
        u_hasBinaryProperty(points[i + 1].c, UCHAR_EXTENDED_PICTOGRAPHIC)) {
      hidden = false;
    }
    if (hidden) {
      out += absl::StrFormat("<U+%04X>", static_cast<uint32_t>(c));
    } else {
      out.append(text, pos, points[i].len);
    }
    if (!ExtendsPictograph(c)) {
      after_pictograph =
          !hidden && u_hasBinaryProperty(c, UCHAR_EXTENDED_PICTOGRAPHIC);
    }
  }
  return out;
}

// One checker for the process: made once, then only read (ICU allows
// concurrent use of a configured checker through its const functions).
const USpoofChecker* Checker() {
  static const USpoofChecker* const checker = [] {
    UErrorCode error = U_ZERO_ERROR;
    USpoofChecker* made = uspoof_open(&error);
    if (U_FAILURE(error)) return static_cast<USpoofChecker*>(nullptr);
    uspoof_setChecks(made, USPOOF_CONFUSABLE, &error);
    if (U_FAILURE(error)) {
      uspoof_close(made);
      return static_cast<USpoofChecker*>(nullptr);
    }
    return made;
  }();
  return checker;
}

std::u16string ToUtf16(const std::string& text, bool* ok) {
  UErrorCode error = U_ZERO_ERROR;
  int32_t length = 0;
  u_strFromUTF8(nullptr, 0, &length, text.data(),
                static_cast<int32_t>(text.size()), &error);
  if (error != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(error)) {
    *ok = false;
    return {};
  }
  std::u16string out(static_cast<size_t>(length), u'\0');
  error = U_ZERO_ERROR;
  u_strFromUTF8(out.data(), length, nullptr, text.data(),
                static_cast<int32_t>(text.size()), &error);
  *ok = U_SUCCESS(error);
  return out;
}

std::u16string FoldCase(const std::u16string& text, bool* ok) {
  UErrorCode error = U_ZERO_ERROR;
  const int32_t length =
      u_strFoldCase(nullptr, 0, text.data(), static_cast<int32_t>(text.size()),
                    U_FOLD_CASE_DEFAULT, &error);
  if (error != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(error)) {
    *ok = false;
    return {};
  }
  std::u16string out(static_cast<size_t>(length), u'\0');
  error = U_ZERO_ERROR;
  u_strFoldCase(out.data(), length, text.data(),
                static_cast<int32_t>(text.size()), U_FOLD_CASE_DEFAULT, &error);
  *ok = U_SUCCESS(error);
  return out;
}

// The skeleton in UTF-16 code units, as bytes (only ever compared).
std::string Skeleton(const std::u16string& text) {
  const USpoofChecker* checker = Checker();
  if (checker == nullptr || text.empty()) return {};
  UErrorCode error = U_ZERO_ERROR;
  const int32_t length =
      uspoof_getSkeleton(checker, 0, text.data(),
                         static_cast<int32_t>(text.size()), nullptr, 0, &error);
  if (error != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(error)) return {};
  std::u16string out(static_cast<size_t>(length), u'\0');
  error = U_ZERO_ERROR;
  uspoof_getSkeleton(checker, 0, text.data(), static_cast<int32_t>(text.size()),
                     out.data(), length, &error);
  if (U_FAILURE(error)) return {};
  std::string bytes;
  bytes.reserve(out.size() * 2);
  for (char16_t unit : out) {
    bytes += static_cast<char>(unit >> 8);
    bytes += static_cast<char>(unit & 0xFF);
  }
  return bytes;
}

}  // namespace

std::string VisibleText(const std::string& text) {
  return Visible(text, /*name=*/false);
}

std::string VisibleName(const std::string& name) {
  return Visible(name, /*name=*/true);
}

LookalikeKey LookalikeKeyOf(const std::string& name) {
  if (!IsValidUtf8(name)) return {};
  std::string seen;  // What a reader sees: nothing invisible, no spaces.
  seen.reserve(name.size());
  size_t pos = 0;
  for (const CodePoint& point : Split(name)) {
    const UChar32 c = point.c;
    const bool unseen =
        IsControl(c) || u_isUWhiteSpace(c) || u_charType(c) == U_FORMAT_CHAR ||
        u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT);
    if (!unseen) seen.append(name, pos, point.len);
    pos += point.len;
  }
  bool ok = true;
  const std::u16string utf16 = ToUtf16(seen, &ok);
  if (!ok) return {};
  const std::u16string folded = FoldCase(utf16, &ok);
  if (!ok) return {};
  LookalikeKey key;
  key.skeleton = Skeleton(utf16);
  key.folded_skeleton = Skeleton(folded);
  return key;
}

bool LookAlike(const LookalikeKey& a, const LookalikeKey& b) {
  if (a.skeleton.empty() || b.skeleton.empty()) return false;
  return a.skeleton == b.skeleton ||
         (!a.folded_skeleton.empty() && a.folded_skeleton == b.folded_skeleton);
}

}  // namespace chat
