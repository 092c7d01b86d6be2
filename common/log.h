// One line per significant event, to stderr, with a UTC timestamp and the
// component's name: what operators read in `docker logs`.

#ifndef CHAT_COMMON_LOG_H_
#define CHAT_COMMON_LOG_H_

#include <string>

namespace chat {

// Writes "2026-11-23T19:04:05.123Z registry: <message>\n" in one write(2),
// so lines from several threads never interleave. Thread-safe.
void LogLine(const std::string& component, const std::string& message);

}  // namespace chat

#endif  // CHAT_COMMON_LOG_H_
