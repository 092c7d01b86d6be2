// The etcd Store on a three-member etcd cluster on loopback (and a fourth
// endpoint that does not resolve) with one member killed: registrations,
// resolves (from the watch-fed index) and renewals keep working through the
// members left, at two registries. Real etcd and real time (the member's death
// is real); waits are on conditions with generous deadlines, and no assertion
// is timed.

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "registry/etcd/etcd_client.h"
#include "registry/etcd/etcd_store.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace chat::registry::etcd {
namespace {

using ::chat::testing::EtcdCluster;
using ::chat::testing::EtcdClusterOptions;
using ::chat::testing::IsOk;
using ::chat::testing::WaitFor;

// A member that is not the leader (by etcd's Maintenance/Status), so that
// killing it causes no election; -1 when no member answers.
int AFollower(const EtcdCluster& cluster) {
  for (int i = 0; i < cluster.size(); ++i) {
    auto channel = grpc::CreateChannel(cluster.ClientEndpoint(i),
                                       grpc::InsecureChannelCredentials());
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    etcdserverpb::StatusResponse status;
    if (etcdserverpb::Maintenance::NewStub(channel)
            ->Status(&context, etcdserverpb::StatusRequest(), &status)
            .ok() &&
        status.leader() != 0 &&
        status.leader() != status.header().member_id()) {
      return i;
    }
  }
  return -1;
}

TEST(EtcdStoreFailoverTest, OneDeadMemberStallsNoRegistryCall) {
  EtcdClusterOptions cluster_options;
  cluster_options.members = 3;
  auto cluster = EtcdCluster::Start(cluster_options);
  ASSERT_THAT(cluster, IsOk());
  EtcdStoreOptions options;
  options.etcd.endpoints = (*cluster)->ClientEndpoints();
  // And a member whose container is gone: its name no longer resolves.
  options.etcd.endpoints.push_back("etcd-gone.invalid:2379");
  options.prefix = "/failover/";
  // Expiry is etcd's; this clock only dates proofs and estimates.
  FakeClock clock;
  auto a = OpenEtcdStore(options, clock);
  ASSERT_THAT(a, IsOk());
  auto b = OpenEtcdStore(options, clock);
  ASSERT_THAT(b, IsOk());
  auto kept = (*a)->Register({"kept", "h:10", Millis(10000), ""});
  ASSERT_THAT(kept, IsOk());
  // Enough calls for every member's channel to be in use.
  for (int i = 0; i < 6; ++i) {
    ASSERT_THAT((*a)->KeepAlive("kept", kept->lease_id), IsOk());
    ASSERT_THAT((*b)->KeepAlive("kept", kept->lease_id), IsOk());
  }

  // A follower served some of each store's calls, and maybe a watch or a
  // keep-alive stream. Killed, it leaves a majority with its leader: no
  // election, so every call from now on must succeed at once.
  const int victim = AFollower(**cluster);
  ASSERT_GE(victim, 0);
  ASSERT_THAT((*cluster)->Kill(victim), IsOk());

  for (int i = 0; i < 12; ++i) {
    const std::string name = absl::StrCat("n", i);
    auto lease = (*a)->Register({name, "h:1", Millis(10000), ""});
    ASSERT_THAT(lease, IsOk()) << name;
    // At once where it was registered: a's watch applied the write.
    ASSERT_THAT((*a)->Resolve(name), IsOk()) << name;
    // b hears it through its own watch.
    ASSERT_TRUE(WaitFor([&] { return (*b)->Resolve(name).ok(); })) << name;
    ASSERT_THAT((*b)->KeepAlive(name, lease->lease_id), IsOk()) << name;
    ASSERT_THAT((*a)->KeepAlive("kept", kept->lease_id), IsOk()) << name;
    ASSERT_THAT((*b)->Unregister(name, lease->lease_id), IsOk()) << name;
    ASSERT_TRUE(WaitFor([&] { return !(*a)->Resolve(name).ok(); })) << name;
  }
  EXPECT_THAT((*b)->Resolve("kept"), IsOk());
}

}  // namespace
}  // namespace chat::registry::etcd
