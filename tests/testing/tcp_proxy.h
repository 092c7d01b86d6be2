// A TCP proxy on loopback that a test can cut: clients connect to it instead
// of a server, and CutAll() breaks their connections at once, as a network
// failure would, while the server behind it keeps running.

#ifndef CHAT_TESTS_TESTING_TCP_PROXY_H_
#define CHAT_TESTS_TESTING_TCP_PROXY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace chat::testing {

// Forwards every connection accepted on 127.0.0.1:port() to
// 127.0.0.1:target_port, byte for byte, in both directions. A connection
// that either side closes is closed on both (no half-close). A connection the
// target refuses is closed at once.
//
// CutAll() resets every connection open (both ends get an RST, so the client
// and the server each see the connection fail, not end), and keeps
// accepting: a client that connects again is forwarded as before.
//
// One thread of its own moves the bytes; none of its calls waits on the
// network. Thread-safe.
class TcpProxy {
 public:
  // Listens on a port of its own. kInternal when the listening socket or
  // the wake-up pipe cannot be made.
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(int target_port);

  // Resets every connection and stops listening.
  ~TcpProxy();

  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:<port>", to dial.
  std::string address() const;

  // Resets every connection open now; returns once they are closed, with how
  // many there were.
  size_t CutAll() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  TcpProxy(int listen_fd, int port, int target_port, int wake_read,
           int wake_write);

  // The proxy's thread: accepts, forwards, cuts, until the destructor.
  void Run();
  // Interrupts the thread's poll().
  void Wake();

  const int listen_fd_;
  const int port_;
  const int target_port_;
  const int wake_read_;  // A pipe the thread polls, so calls can wake it.
  const int wake_write_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // CutAll() calls asked for and done (done catches up with asked).
  uint64_t cuts_asked_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t cuts_done_ ABSL_GUARDED_BY(mu_) = 0;
  size_t last_cut_ ABSL_GUARDED_BY(mu_) = 0;  // Connections the last cut reset.

  std::thread thread_;  // Last: it uses the above.
};

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_TCP_PROXY_H_
