// A real etcd (one member or a small cluster) on loopback for tests: its own
// temporary data directories, free ports, started healthy, stopped and
// removed at the end.

#ifndef CHAT_TESTS_TESTING_ETCD_CLUSTER_H_
#define CHAT_TESTS_TESTING_ETCD_CLUSTER_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tls.h"
#include "tests/testing/temp_dir.h"

namespace chat::testing {

struct EtcdClusterOptions {
  // 1, or 3 (or 5) for tests that take a member away.
  int members = 1;
  std::string binary = "/usr/bin/etcd";
  // Raft timing in milliseconds. Shorter than etcd's defaults (100/1000) so
  // a member elects itself quickly, long enough not to flap on a loaded
  // two-core machine.
  int heartbeat_ms = 50;
  int election_ms = 500;
  // --quota-backend-bytes; 0 = etcd's default (2 GiB).
  int64_t quota_backend_bytes = 0;
  // Clients talk TLS when a certificate is given (its names must cover
  // 127.0.0.1); with client_ca_file they must present a certificate signed
  // by it (--client-cert-auth). Members talk to each other in plaintext.
  TlsServerFiles client_tls;
  // What the fixture's own health check presents to a TLS member.
  TlsClientFiles probe_tls;
  // Any further flags, passed to every member as they are.
  std::vector<std::string> extra_flags;
  // How long Start() waits for every member to answer a linearizable Range.
  int start_timeout_ms = 30000;
};

// EtcdCluster owns its etcd processes and their data directories.
//
// Each member listens on 127.0.0.1 with a client port and a peer port picked
// free just before it starts (another process may take one in between:
// Start() then tries again with new ports, a few times). Members run with
// PR_SET_PDEATHSIG, so they die with the thread that started them even when
// the test process crashes: start a cluster from the test's own thread (the
// gtest main thread), not from a helper thread that ends before the test.
// Member logs go to <data dir>/etcd.log; a failed start quotes its tail.
//
// Debian's etcd 3.4.23 runs on amd64 and ppc64le as is; on other
// architectures it only warns (ETCD_UNSUPPORTED_ARCH is not needed).
//
// Thread-compatible: one test thread drives it.
class EtcdCluster {
 public:
  // Starts the members and waits until each answers a linearizable Range
  // (so the cluster has a leader and a quorum). kFailedPrecondition when the
  // binary is missing, kDeadlineExceeded when the cluster does not become
  // healthy in time, kInternal when a member keeps exiting at start.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(
      const EtcdClusterOptions& options = {});

  // Stops every member that still runs (SIGTERM, then SIGKILL after a few
  // seconds) and removes the data directories.
  ~EtcdCluster();

  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  int size() const { return static_cast<int>(members_.size()); }

  // "127.0.0.1:PORT" of member `i`'s client port (http:// or https://
  // per EtcdClusterOptions::client_tls, not part of the endpoint).
  std::string ClientEndpoint(int i) const;
  // Every member's client endpoint, in member order.
  std::vector<std::string> ClientEndpoints() const;

  // SIGTERM to member `i`, SIGKILL if it has not exited after `grace_ms`;
  // waits for it. Its data directory stays (Restart() uses it). OK when it
  // had already stopped.
  absl::Status Stop(int i, int grace_ms = 5000);
  // SIGKILL to member `i`, as a crash would; waits for it.
  absl::Status Kill(int i);
  // SIGSTOP to member `i`: it keeps its sockets, and the kernel still
  // accepts connections and takes what clients send, but nothing answers:
  // a member that hangs, or one cut off without a reset, as its clients
  // see it. Resume() (SIGCONT) lets it go on; Stop() and the destructor
  // resume it first. kFailedPrecondition when it is not running.
  absl::Status Pause(int i);
  absl::Status Resume(int i);
  // Starts a stopped member again on its data directory and ports, and
  // waits until it answers. kFailedPrecondition when it is still running.
  absl::Status Restart(int i);
  bool Running(int i) const { return members_[i].pid > 0; }
  // Member `i`'s process id; -1 when it is not running.
  pid_t Pid(int i) const { return members_[i].pid; }

  // The tail of member `i`'s log, for failure messages.
  std::string LogTail(int i, int max_bytes = 4000) const;

 private:
  struct Member {
    std::string name;
    std::string data_dir;
    std::string log_file;
    int client_port = 0;
    int peer_port = 0;
    pid_t pid = -1;
  };

  explicit EtcdCluster(EtcdClusterOptions options);

  // Picks ports, starts every member, waits for health; stops whatever
  // started when it fails.
  absl::Status StartAll();
  absl::Status Spawn(Member& member, bool new_cluster);
  absl::Status WaitHealthy(int i, int timeout_ms);
  std::string InitialCluster() const;

  EtcdClusterOptions options_;
  TempDir dir_;
  std::string token_;
  std::vector<Member> members_;
};

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_ETCD_CLUSTER_H_
