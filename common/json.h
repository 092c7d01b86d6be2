// The little JSON our command-line tools print: quoted strings, escaped.

#ifndef CHAT_COMMON_JSON_H_
#define CHAT_COMMON_JSON_H_

#include <string>

namespace chat {

// `text` as a JSON string literal, quotes included. Bytes that are not valid
// UTF-8 become U+FFFD, so the output is always valid JSON.
std::string JsonQuote(const std::string& text);

}  // namespace chat

#endif  // CHAT_COMMON_JSON_H_
