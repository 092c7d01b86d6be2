// The Mailbox kept in etcd, shared by every registry of a deployment: any
// registry takes a deposit, any serves Listen and Ack, and the limits count
// every registry's mail exactly (docs/cluster.md, "Mailbox limits, counted
// exactly").

#ifndef CHAT_REGISTRY_ETCD_ETCD_MAILBOX_H_
#define CHAT_REGISTRY_ETCD_ETCD_MAILBOX_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "registry/etcd/etcd_client.h"
#include "registry/mailbox/mailbox.h"
#include "registry/quotas.h"

namespace chat::registry::etcd {

// chat-registry's default for MailboxLimits::max_total_bytes on etcd
// (--mailbox-max-total-mb 0): a quarter of etcd's default backend quota
// (2 GiB). An item is three keys and its counters' new revisions, and
// every revision stays in the backend until compaction, so the mail must
// stay well inside the quota for the names to keep their room.
inline constexpr size_t kDefaultEtcdMailboxTotalBytes = size_t{512} << 20;

// Opens the mailbox kept under `root` (MailboxRoot() of the deployment's
// prefix, etcd_layout.h: "/chat/v1/mailbox/", never a root the store's
// keys are under; a trailing '/' is added when missing) in the
// etcd cluster `client` talks to. Nothing is created until the first
// deposit; several registries may open the same root at once, and each
// sees the others' mail.
//
// The Mailbox contract holds across registries: a deposit is in etcd (a
// raft commit, fsynced on a quorum) before Deposit() returns; every limit
// of `limits` is checked and written in the same etcd transaction as the
// item, compared against the counters it read, so racing registries never
// pass a limit; OnArrival() fires for deposits made at any registry (one
// etcd Watch per mailbox). `clock` stamps deposits and decides what
// ExpireOld() removes; registries' clocks should agree within seconds.
//
// Errors beyond the contract's: kResourceExhausted also when etcd itself
// is full (the NOSPACE alarm; see docs/cluster.md for the operator's part);
// kUnavailable when etcd cannot be reached, or a write lost its race too
// many times in a row. For a write, both mean "maybe applied": every write
// is safe to repeat (a deposit is idempotent, an Ack of what is gone does
// nothing).
//
// `client` and `clock` are not owned and must outlive the mailbox.
// kInvalidArgument for an empty root; kUnavailable when etcd does not
// answer (the arrival watch cannot start).
absl::StatusOr<std::unique_ptr<Mailbox>> OpenEtcdMailbox(
    EtcdClient* client, const std::string& root, const Clock& clock,
    const MailboxLimits& limits = {});

}  // namespace chat::registry::etcd

#endif  // CHAT_REGISTRY_ETCD_ETCD_MAILBOX_H_
