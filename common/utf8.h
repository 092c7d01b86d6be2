// UTF-8 checks for text that crosses a trust boundary (names, messages).

#ifndef CHAT_COMMON_UTF8_H_
#define CHAT_COMMON_UTF8_H_

#include <cstddef>
#include <string>

namespace chat {

// Length (1-4) of the well-formed UTF-8 sequence that starts at text[pos], or
// 0 when it is malformed, overlong, a surrogate or beyond U+10FFFF.
// Requires pos < text.size().
size_t Utf8SequenceLength(const std::string& text, size_t pos);

bool IsValidUtf8(const std::string& text);

}  // namespace chat

#endif  // CHAT_COMMON_UTF8_H_
