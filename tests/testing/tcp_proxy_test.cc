#include "tests/testing/tcp_proxy.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "tests/testing/status_matchers.h"

namespace chat::testing {
namespace {

// A blocking socket that owns its fd. Every read gives up after 10 s, so a
// proxy that forwards nothing fails the test instead of hanging it.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {
    timeval timeout{};
    timeout.tv_sec = 10;
    if (fd_ >= 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    }
  }
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  int fd() const { return fd_; }

  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

  // Reads `size` bytes; empty when the connection ended or failed first.
  std::string Receive(size_t size) {
    std::string bytes(size, '\0');
    size_t got = 0;
    while (got < size) {
      const ssize_t n = ::recv(fd_, &bytes[got], size - got, 0);
      if (n <= 0) return "";
      got += static_cast<size_t>(n);
    }
    return bytes;
  }

  // What the next read says once the connection is gone: 0 (ended) or an
  // errno (ECONNRESET: failed). -1 when data came instead.
  int EndOfConnection() {
    char byte;
    const ssize_t n = ::recv(fd_, &byte, 1, 0);
    if (n == 0) return 0;
    if (n < 0) return errno;
    return -1;
  }

 private:
  const int fd_;
};

sockaddr_in Loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  return address;
}

// A listening socket on 127.0.0.1 (its own port): the proxy's target.
class Target {
 public:
  Target() : socket_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address = Loopback(0);
    socklen_t length = sizeof(address);
    auto* generic = reinterpret_cast<sockaddr*>(&address);
    if (::bind(socket_.fd(), generic, sizeof(address)) == 0 &&
        ::listen(socket_.fd(), 8) == 0 &&
        ::getsockname(socket_.fd(), generic, &length) == 0) {
      port_ = ntohs(address.sin_port);
    }
  }
  int port() const { return port_; }
  // The next connection the proxy made (blocks until there is one).
  std::unique_ptr<Socket> Accept() {
    return std::make_unique<Socket>(
        ::accept4(socket_.fd(), nullptr, nullptr, SOCK_CLOEXEC));
  }

 private:
  Socket socket_;
  int port_ = 0;
};

std::unique_ptr<Socket> Dial(int port) {
  auto socket = std::make_unique<Socket>(
      ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address = Loopback(port);
  if (::connect(socket->fd(), reinterpret_cast<sockaddr*>(&address),
                sizeof(address)) != 0) {
    return nullptr;
  }
  return socket;
}

TEST(TcpProxyTest, ForwardsBothWaysCutsEveryConnectionAndAcceptsAgain) {
  Target target;
  ASSERT_NE(target.port(), 0);
  auto proxy = TcpProxy::Start(target.port());
  ASSERT_THAT(proxy, IsOk());
  EXPECT_EQ((*proxy)->address(),
            "127.0.0.1:" + std::to_string((*proxy)->port()));

  auto client = Dial((*proxy)->port());
  ASSERT_NE(client, nullptr);
  auto server = target.Accept();
  ASSERT_GE(server->fd(), 0);
  // More than one read's worth, so the proxy passes it on in pieces.
  const std::string big(100 * 1024, 'x');
  ASSERT_TRUE(client->Send("hello"));
  EXPECT_EQ(server->Receive(5), "hello");
  ASSERT_TRUE(server->Send(big));
  EXPECT_EQ(client->Receive(big.size()), big);

  EXPECT_EQ((*proxy)->CutAll(), 1u);
  // Both ends see the connection fail, not end.
  EXPECT_EQ(client->EndOfConnection(), ECONNRESET);
  EXPECT_EQ(server->EndOfConnection(), ECONNRESET);

  // It keeps accepting, and forwards as before.
  auto again = Dial((*proxy)->port());
  ASSERT_NE(again, nullptr);
  auto server_again = target.Accept();
  ASSERT_TRUE(again->Send("again"));
  EXPECT_EQ(server_again->Receive(5), "again");
  EXPECT_EQ((*proxy)->CutAll(), 1u);
  EXPECT_EQ((*proxy)->CutAll(), 0u);  // Nothing open.
}

TEST(TcpProxyTest, AConnectionOneEndClosesIsClosedAtTheOther) {
  Target target;
  auto proxy = TcpProxy::Start(target.port());
  ASSERT_THAT(proxy, IsOk());
  auto client = Dial((*proxy)->port());
  ASSERT_NE(client, nullptr);
  auto server = target.Accept();
  // What was sent before the end still arrives.
  ASSERT_TRUE(server->Send("bye"));
  server.reset();
  EXPECT_EQ(client->Receive(3), "bye");
  EXPECT_EQ(client->EndOfConnection(), 0);
  EXPECT_EQ((*proxy)->CutAll(), 0u);
}

}  // namespace
}  // namespace chat::testing
