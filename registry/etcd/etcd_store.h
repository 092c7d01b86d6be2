// The Store kept in etcd (docs/cluster.md): several registries share one
// state, each serving reads from its own index fed by one etcd Watch, every
// write one etcd transaction whose compares enforce the rules that span keys
// (writes about different names made at the same moment share one etcd Txn,
// each with its own compares: one raft proposal for all).

#ifndef CHAT_REGISTRY_ETCD_ETCD_STORE_H_
#define CHAT_REGISTRY_ETCD_ETCD_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "registry/etcd/etcd_client.h"
#include "registry/quotas.h"
#include "registry/store/change_ring.h"
#include "registry/store/store.h"

namespace chat::registry::etcd {

struct EtcdStoreOptions {
  // How to reach the cluster (--etcd-endpoints, --etcd-ca/cert/key).
  EtcdConfig etcd;
  // The deployment's prefix (--etcd-prefix): two deployments, or two tests,
  // can share one etcd cluster. The store's keys are under
  // StoreRoot(prefix) (etcd_layout.h); the mailbox's, under
  // MailboxRoot(prefix), are never read by the store.
  std::string prefix = "/chat/v1/";
  LeasePolicy lease_policy;
  NameQuotas name_quotas;
  size_t max_watch_backlog_bytes = 256 * 1024;
  // Changes kept for watches that resume from a revision (Store::Subscribe;
  // chat-registry --watch-history).
  size_t watch_history = kDefaultWatchHistory;
  // Decision rounds a write tries when its compares keep failing (someone
  // else changed what it read) before it answers kUnavailable.
  int max_rounds = 8;
  // Threads that run RegisterAsync/UnregisterAsync (each waits for etcd);
  // the calls about one name run on one of them, in the order made.
  int workers = 16;
  // How long a write waits for the index to show it before answering
  // anyway (it is committed; only a broken watch makes this wait).
  absl::Duration index_wait = absl::Seconds(10);
};

// Opens the store: reads a snapshot of StoreRoot(prefix), builds the index,
// starts the watch that keeps it current, and has the reservation of every
// binding still marked online whose name is gone written in the background
// (a registry that saw the expiry may have died before writing it).
// kUnavailable when etcd cannot be reached; kDataLoss when a stored value does
// not decode. `clock` is not owned and must outlive the store.
//
// How it differs from the SQLite store, within the Store contract:
// - Expiry is etcd's: a name's key hangs on an etcd lease of its TTL rounded
//   up to whole seconds, and goes when etcd ends the lease; the index shows a
//   name until the watch brings that DELETE, whatever `clock` says.
//   ExpireDue() returns no entries; it only forgets bindings that are over
//   (BindingForgetAt), at most once a second. Watchers get
//   kExpired for a DELETE that carries no `ends/<name>` put at its revision.
// - Entry::expires_in is this registry's estimate (from the last renewal it
//   saw or made; the full TTL once that estimate has run out, since etcd
//   still holds the lease, renewed at another registry).
// - Lease ids are "<etcd lease, 16 hex>.<64 hex secret>". A Register that
//   renews with a TTL longer than its etcd lease's moves the name to a new
//   etcd lease and so answers a new lease id (etcd cannot lengthen a lease).
// - Writes are answered once this registry's index has applied them, so a
//   Register then Resolve here sees the name; another registry sees it once
//   its watch brings it (milliseconds).
// - A new etcd lease comes from a pool granted ahead (etcd_lease_pool.h):
//   it may outlive the TTL asked by up to a second. Leases a name moved off
//   are revoked in the background.
// - etcd's kResourceExhausted (NOSPACE) and kUnavailable are "maybe
//   applied": Register and Unregister then read the name back, answer OK
//   when the write is there, and decide again when it surely is not (the
//   connection to a member that died broke under it); other writes return
//   the error, and are safe to try again (their compares refuse a second
//   application).
absl::StatusOr<std::unique_ptr<Store>> OpenEtcdStore(
    const EtcdStoreOptions& options, const Clock& clock);

// Makes every registry of a deployment use one admin token: the first to
// start writes its token's hash (BLAKE2b) to admin/token_hash (under
// StoreRoot(options.prefix)); every later one compares. kFailedPrecondition,
// saying so, when `token` is not the one whose hash is there; kUnavailable when
// etcd cannot be reached.
absl::Status AgreeOnAdminToken(const EtcdStoreOptions& options,
                               const std::string& token);

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_ETCD_STORE_H_
