// The servers chat-bench measures, started in this process on 127.0.0.1
// with port 0: the greeter (the baseline), a registry on an SQLite file in a
// scratch directory, filled before it serves, two real peers, and a name
// bound to a key of the bench's own that sends to the receiving peer
// directly (the send scenario), the floor under it (floor.h), and, for
// group-send, more peers in one group with the sending peer.

#ifndef CHAT_TESTS_BENCH_LAB_H_
#define CHAT_TESTS_BENCH_LAB_H_

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/identity.h"
#include "greeter/greeter_service.h"
#include "peer/events.h"
#include "peer/peer.h"
#include "registry/server/server.h"
#include "tests/bench/child.h"
#include "tests/bench/driver.h"
#include "tests/bench/floor.h"
#include "tests/bench/register_floor.h"

namespace chat::bench {

// The longest lease the lab's registry grants, and what its own leases and
// the register scenarios ask for: longer than any run, so that no name
// expires during one and no round pays for an earlier round's expiries.
inline constexpr Millis kLabLeaseTtl{3600 * 1000};

struct LabOptions {
  bool registry = false;  // Start a registry.
  int static_names = 0;   // Static entries put in it before it serves.
  // Leases (one-hour TTL, bound to a key) registered before it serves.
  int leases = 0;
  // Start two peers registered in it, and register the direct sender's
  // name with its key; the receiver knows that key before Start returns.
  bool peers = false;
  // Start the durable floor (tests/bench/floor.h), which takes messages
  // from direct_name().
  bool floor = false;
  // Start the floor under register (tests/bench/register_floor.h).
  bool register_floor = false;
  // With peers, from 2 to 64 (a group's most): the registry serves groups,
  // group_members - 2 more peers start, and the sender makes the group
  // group_target() of itself, the receiver and them; Start returns once a
  // first message to it was delivered to every other member. 0: no group.
  int group_members = 0;
  // With a group: its members beyond the sender and the receiver run as
  // chat-peer processes (bin_dir/chat-peer, --json, as a user starts one),
  // on member_cpus when not empty, so that their CPU is their own
  // (Lab::Cpu's `others`) and not the sending process's.
  bool group_apart = false;
  std::string bin_dir;
  std::vector<int> member_cpus;
  // The peers' stores (and the floor's) commit with synchronous=FULL
  // (chat-peer's default).
  bool peer_sync_full = true;
  // Not empty: every server serves TLS with DIR/localhost.crt and .key and
  // every client verifies with DIR/ca.crt (`scripts/make-certs DIR --peer
  // localhost,localhost,127.0.0.1`: a peer certificate that also names the
  // loopback hosts); peers check the peer name "localhost".
  std::string tls_dir;
  // Not empty: the registry keeps its names in the etcd at these endpoints
  // (chat-registry --store etcd, a key prefix of its own); mail stays in
  // its SQLite file.
  std::vector<std::string> etcd_endpoints;
};

// What filling the registry cost.
struct FillReport {
  int static_names = 0;
  int leases = 0;
  double seconds = 0;
  double rss_before_mb = 0;
  double rss_after_mb = 0;  // This whole process, after the fill.
};

// What starting a group's extra members cost this process, read before the
// first of them started and after the group was made.
struct GroupReport {
  int members = 0;     // The sender included.
  bool apart = false;  // LabOptions::group_apart.
  double seconds = 0;
  int threads_before = 0;
  int threads_after = 0;
  double rss_before_mb = 0;
  double rss_after_mb = 0;
};

struct HeldLease {
  std::string name;
  std::string lease_id;
};

// Signals the fate of messages sent with Peer::Send, by id; a group's
// message has one final kSendResult per member (copy), all under its id.
// Thread-safe.
class SendResults final : public peer::EventSink {
 public:
  // Calls `done` once the final kSendResult of each of `copies` recipients
  // of `id` has come (at once if they came already): "" when every copy was
  // delivered, else the first other outcome, "stored" or "failed".
  void Expect(const std::string& id, DoneCallback done, int copies = 1);

  void OnEvent(const peer::PeerEvent& event) override;

 private:
  // The final results of one message so far.
  struct Tally {
    absl::flat_hash_set<std::string> recipients;  // Counted already.
    std::string outcome;                          // The first not delivered.
    int expected = 0;                             // 0: not Expect()ed yet.
    DoneCallback done;
  };

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Tally> tallies_ ABSL_GUARDED_BY(mu_);
};

// Not thread-safe to start or stop; the accessors may be used from any
// thread while it runs.
class Lab {
 public:
  // kUnavailable when a server cannot start; other errors from the store.
  static absl::StatusOr<std::unique_ptr<Lab>> Start(const LabOptions& options);

  ~Lab();

  std::string greeter_target() const;
  std::string registry_target() const;  // Empty without a registry.
  const FillReport& fill() const { return fill_; }
  const std::vector<std::string>& static_names() const { return names_; }
  const std::vector<HeldLease>& leases() const { return leases_; }

  // With peers: the sending peer, the sink of its send results, and the
  // receiving peer's name and address.
  peer::Peer* sender() const { return sender_.get(); }
  SendResults* send_results() { return &send_results_; }
  const std::string& receiver_name() const;
  const std::string& receiver_address() const;
  const PublicKey& receiver_key() const;

  // With a group: what the sender sends to ("#team"), how many copies each
  // message to it makes (group_members - 1), and what starting its members
  // cost this process.
  const std::string& group_target() const { return group_target_; }
  int group_copies() const {
    return static_cast<int>(members_.size() + member_processes_.size()) + 1;
  }
  const GroupReport& group_report() const { return group_report_; }
  // CPU used so far by this process and by the members it runs apart.
  // Thread-safe.
  CpuTime Cpu() const;

  // With peers: who sends straight to the receiver with SendMessage, not
  // through a Peer: a name registered with this identity's key.
  const Identity& direct_identity() const { return direct_identity_; }
  const std::string& direct_name() const { return direct_name_; }
  // With the floor: the server that only opens and keeps each message.
  const DurableFloor* floor() const { return floor_.get(); }
  // With register_floor: the server that only checks and keeps each name.
  const RegisterFloor* register_floor() const { return register_floor_.get(); }
  // What clients of the lab's servers dial with; null: plaintext.
  const std::shared_ptr<grpc::ChannelCredentials>& credentials() const {
    return credentials_;
  }

 private:
  Lab();
  // Registers direct_name() with direct_identity() and waits until the
  // receiver takes a sealed message from it.
  absl::Status StartDirectSender();
  // Starts the members beyond the sender and the receiver, makes the group
  // and waits until a first message reached every member.
  absl::Status StartGroup(const peer::PeerOptions& member_options, int members);
  // Starts a member as a chat-peer process, as `member_options` would.
  absl::Status StartMemberApart(const peer::PeerOptions& member_options);

  class DiscardEvents final : public peer::EventSink {
   public:
    void OnEvent(const peer::PeerEvent&) override {}
  };

  std::filesystem::path dir_;
  greeter::GreeterService greeter_service_;
  std::unique_ptr<grpc::Server> greeter_server_;
  int greeter_port_ = 0;
  std::unique_ptr<registry::RegistryServer> registry_;
  FillReport fill_;
  std::vector<std::string> names_;
  std::vector<HeldLease> leases_;
  SendResults send_results_;
  DiscardEvents discard_;
  std::unique_ptr<peer::Peer> receiver_;
  std::unique_ptr<peer::Peer> sender_;
  std::vector<std::unique_ptr<peer::Peer>> members_;  // Beyond the receiver.
  // With group_apart: the members beyond the receiver, as processes.
  std::vector<std::unique_ptr<ChildProcess>> member_processes_;
  LabOptions options_;
  std::string group_target_;
  GroupReport group_report_;
  std::unique_ptr<DurableFloor> floor_;
  std::unique_ptr<RegisterFloor> register_floor_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;  // Null: plaintext.
  const std::string direct_name_ = "bench-direct";
  Identity direct_identity_ = Identity::Generate();
};

// `count` channels to `target`, each its own TCP connection, connected;
// TLS with `credentials`, plaintext when null. kUnavailable when one does not
// connect within 10 s.
absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> NewChannels(
    const std::string& target, int count,
    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

// This process's resident set size (VmRSS), in MiB; 0 if unknown.
double ResidentMegabytes();

// This process's threads now; 0 if unknown.
int ProcessThreads();

}  // namespace chat::bench

#endif  // CHAT_TESTS_BENCH_LAB_H_
