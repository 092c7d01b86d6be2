// Waiting in tests: on a condition, with a deadline, never a bare sleep.

#ifndef CHAT_TESTS_TESTING_WAIT_H_
#define CHAT_TESTS_TESTING_WAIT_H_

#include <chrono>
#include <functional>
#include <thread>

namespace chat::testing {

// Polls `condition` until it holds or `timeout` passes; returns whether it
// held. For state owned by another process or thread that has no hook to
// wait on.
inline bool WaitFor(
    const std::function<bool()>& condition,
    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_WAIT_H_
