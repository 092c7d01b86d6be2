// Unpredictable identifiers (lease ids, message ids) from the kernel's CSPRNG.

#ifndef CHAT_COMMON_RANDOM_H_
#define CHAT_COMMON_RANDOM_H_

#include <string>

namespace chat {

// `num_bytes` random bytes as lowercase hex (2 * num_bytes characters).
// Crashes if the kernel cannot supply randomness: nothing safe can follow.
std::string RandomHex(int num_bytes);

}  // namespace chat

#endif  // CHAT_COMMON_RANDOM_H_
