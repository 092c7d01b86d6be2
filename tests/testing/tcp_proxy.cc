#include "tests/testing/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace chat::testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  return address;
}

// POSIX's sockaddr casts; nothing else names these structs.
sockaddr* Generic(sockaddr_in* address) {
  return reinterpret_cast<sockaddr*>(address);
}

// Both ends exchange small frames (gRPC sets it on its own sockets too):
// without it the proxy would add Nagle's delays.
void NoDelay(int fd) {
  int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

// Closes `fd` with an RST rather than a FIN: the other end sees the
// connection fail, as when a network breaks, not end.
void Reset(int fd) {
  linger abort{};
  abort.l_onoff = 1;
  abort.l_linger = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  ::close(fd);
}

// A non-blocking socket connected to 127.0.0.1:`port`, or -1. On loopback
// the connect is answered at once (accepted or refused).
int ConnectTo(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address = Loopback(port);
  if (::connect(fd, Generic(&address), sizeof(address)) != 0 ||
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    ::close(fd);
    return -1;
  }
  NoDelay(fd);
  return fd;
}

// One forwarded connection: fd[0] the client's, fd[1] the target's.
// pending[s] holds what was read from fd[s] and is still to be written to
// the other.
struct Link {
  int fd[2];
  std::string pending[2];
  bool eof[2] = {false, false};
  bool failed = false;

  // Done once either side ended and what it sent before is passed on, or
  // at once when a side failed.
  bool Done() const {
    return failed ||
           ((eof[0] || eof[1]) && pending[0].empty() && pending[1].empty());
  }
};

// Moves what poll() reported for side `side` of `link`.
void Pump(Link& link, int side, short revents) {
  const int other = 1 - side;
  if (!link.eof[side] && (revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
    char buffer[64 * 1024];
    const ssize_t n = ::recv(link.fd[side], buffer, sizeof(buffer), 0);
    if (n > 0) {
      link.pending[side].append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      link.eof[side] = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      link.failed = true;
    }
  }
  std::string& out = link.pending[other];
  if ((revents & POLLOUT) != 0 && !out.empty()) {
    // MSG_NOSIGNAL: an end that is gone is an error here, not SIGPIPE.
    const ssize_t n =
        ::send(link.fd[side], out.data(), out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
               errno != EINTR) {
      link.failed = true;
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(int target_port) {
  int listen_fd =
      ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd < 0) return absl::InternalError("TcpProxy: socket() failed");
  sockaddr_in address = Loopback(0);
  socklen_t length = sizeof(address);
  if (::bind(listen_fd, Generic(&address), sizeof(address)) != 0 ||
      ::listen(listen_fd, SOMAXCONN) != 0 ||
      ::getsockname(listen_fd, Generic(&address), &length) != 0) {
    ::close(listen_fd);
    return absl::InternalError("TcpProxy: cannot listen on 127.0.0.1");
  }
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(listen_fd);
    return absl::InternalError("TcpProxy: pipe2() failed");
  }
  return std::unique_ptr<TcpProxy>(new TcpProxy(
      listen_fd, ntohs(address.sin_port), target_port, wake[0], wake[1]));
}

TcpProxy::TcpProxy(int listen_fd, int port, int target_port, int wake_read,
                   int wake_write)
    : listen_fd_(listen_fd),
      port_(port),
      target_port_(target_port),
      wake_read_(wake_read),
      wake_write_(wake_write),
      thread_([this] { Run(); }) {}

TcpProxy::~TcpProxy() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_read_);
  ::close(wake_write_);
}

std::string TcpProxy::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

size_t TcpProxy::CutAll() {
  absl::MutexLock lock(&mu_);
  const uint64_t ticket = ++cuts_asked_;
  Wake();
  auto done = [this, ticket]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return cuts_done_ >= ticket;
  };
  mu_.Await(absl::Condition(&done));
  return last_cut_;
}

void TcpProxy::Wake() {
  const char byte = 0;
  // A full pipe already holds a wake-up: nothing is lost.
  [[maybe_unused]] ssize_t n = ::write(wake_write_, &byte, 1);
}

void TcpProxy::Run() {
  std::vector<Link> links;
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_read_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const Link& link : links) {
      for (int side = 0; side < 2; ++side) {
        short events = 0;
        // Reads only once what was read before is passed on, so the slower
        // end sets the pace and the buffer stays small.
        if (!link.eof[side] && link.pending[side].empty()) events |= POLLIN;
        if (!link.pending[1 - side].empty()) events |= POLLOUT;
        // A negative fd is skipped: an ended side with nothing to write to
        // it would report POLLHUP at every turn.
        fds.push_back({events != 0 ? link.fd[side] : -1, events, 0});
      }
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      std::abort();  // Otherwise only bad arguments or no memory fail it.
    }

    if (fds[0].revents != 0) {
      char drain[64];
      while (::read(wake_read_, drain, sizeof(drain)) > 0) {
      }
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      if (cuts_done_ < cuts_asked_) {
        // Connections the kernel completed but nobody accepted yet are
        // open for their clients too: reset them with the rest.
        size_t cut = 0;
        for (int fd; (fd = ::accept4(listen_fd_, nullptr, nullptr,
                                     SOCK_CLOEXEC)) >= 0;) {
          Reset(fd);
          ++cut;
        }
        for (Link& link : links) {
          Reset(link.fd[0]);
          Reset(link.fd[1]);
          ++cut;
        }
        links.clear();
        last_cut_ = cut;
        cuts_done_ = cuts_asked_;
        continue;  // `fds` named the links just closed.
      }
    }

    const size_t polled = links.size();
    for (size_t i = 0; i < polled; ++i) {
      for (int side = 0; side < 2; ++side) {
        Pump(links[i], side, fds[2 + 2 * i + side].revents);
      }
    }
    for (auto it = links.begin(); it != links.end();) {
      if (it->Done()) {
        ::close(it->fd[0]);
        ::close(it->fd[1]);
        it = links.erase(it);
      } else {
        ++it;
      }
    }

    if ((fds[1].revents & POLLIN) != 0) {
      const int client =
          ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (client >= 0) {
        const int target = ConnectTo(target_port_);
        if (target < 0) {
          ::close(client);
        } else {
          NoDelay(client);
          Link link;
          link.fd[0] = client;
          link.fd[1] = target;
          links.push_back(std::move(link));
        }
      }
    }
  }
  for (Link& link : links) {
    Reset(link.fd[0]);
    Reset(link.fd[1]);
  }
}

}  // namespace chat::testing
