// A synchronous client of the Registry service for chatctl, peers and the
// greeter: domain structs in and out, a deadline on every call, errors that
// name the registry address when it cannot be reached, and failover among
// several registries that share one store.

#ifndef CHAT_REGISTRY_CLIENT_REGISTRY_CLIENT_H_
#define CHAT_REGISTRY_CLIENT_REGISTRY_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/identity.h"
#include "proto/registry.grpc.pb.h"
#include "registry/client/registry_picker.h"
#include "registry/groups/group_state.h"
#include "registry/types.h"

namespace chat::registry {

// A channel to `address` (host:port) that retries a lost connection after
// `initial_backoff`, doubling to `max_backoff`, instead of gRPC's default
// (growing to two minutes). With `credentials` (common/tls.h
// MakeChannelCredentials), TLS, the server's certificate checked against
// the host of `address` (never a role name: GuardTlsHostCheck); null:
// plaintext.
std::shared_ptr<grpc::Channel> NewReconnectingChannel(
    const std::string& address, Millis initial_backoff, Millis max_backoff,
    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

// A status from the registry with its address in front when it could not
// be reached, because gRPC's own text does not say which registry.
absl::Status RegistryStatus(const grpc::Status& status,
                            const std::string& target);

// One open server-streaming call (Watch, Listen). Next() blocks; Cancel()
// may be called from any thread. `on_finish`, when set, is told how the
// call ended, once, in Finish() (the client learns there that a registry
// went away).
//
// The call runs on gRPC's callback API, and Next() waits on a mutex of its
// own, not inside gRPC: a thread blocked in a synchronous Read() becomes
// one of gRPC's pollers, which take turns reading every connection of the
// process. A peer's two streams then woke for each message the peer
// served, and handed it on to the server's own thread, a hop and a wake-up
// more per call (chat-bench `send` at concurrency 1, docs/benchmarks.md).
// One item is read ahead at most: a slow consumer holds the stream back,
// as a synchronous reader did.
template <typename Proto, typename Item>
class ServerStream {
 public:
  // Starts the call: hands `context` and the reactor to the stub's
  // callback method (stub->async()->Watch(context, &request, reactor)).
  // The request need live only until this returns.
  using Start = std::function<void(grpc::ClientContext* context,
                                   grpc::ClientReadReactor<Proto>* reactor)>;

  ServerStream(std::unique_ptr<grpc::ClientContext> context, const Start& start,
               std::string target, Item (*convert)(const Proto&),
               std::function<void(const grpc::Status&)> on_finish = nullptr)
      : context_(std::move(context)),
        target_(std::move(target)),
        convert_(convert),
        on_finish_(std::move(on_finish)) {
    start(context_.get(), &reader_);
    reader_.Begin();
  }

  ~ServerStream() {
    if (finished_) return;
    Cancel();
    Finish().IgnoreError();
  }

  ServerStream(const ServerStream&) = delete;
  ServerStream& operator=(const ServerStream&) = delete;

  // The next item, or false once the stream ended (see Finish()).
  bool Next(Item* item) {
    Proto proto;
    if (!reader_.Take(&proto)) return false;
    *item = convert_(proto);
    return true;
  }

  // Why the stream ended. Call once, after Next() returned false (or to
  // give up on it after Cancel()); waits for the call to end.
  absl::Status Finish() {
    finished_ = true;
    const grpc::Status status = reader_.AwaitDone();
    if (on_finish_) on_finish_(status);
    return RegistryStatus(status, target_);
  }

  // The registry this stream was opened at.
  const std::string& target() const { return target_; }

  // Ends the stream: a blocked Next() returns false soon after.
  void Cancel() { context_->TryCancel(); }

 private:
  // Reads one item ahead; Take() and AwaitDone() wait for the callbacks.
  // The next read is started by the consumer, from outside gRPC's
  // reactions, so the reader holds the call open (AddHold) for as long as
  // the consumer may still start one: without the hold, a call could end
  // (OnDone) between the consumer taking an item and asking for the next,
  // and that read would then run on a call already gone.
  class Reader final : public grpc::ClientReadReactor<Proto> {
   public:
    void Begin() {
      this->AddHold();
      this->StartRead(&incoming_);
      this->StartCall();
    }

    // Waits for the next item; false once no more will come.
    bool Take(Proto* proto) ABSL_LOCKS_EXCLUDED(mu_) {
      bool taken = false;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &Reader::ReadSettled));
        if (has_item_ && held_) {
          *proto = std::move(incoming_);
          has_item_ = false;
          taken = true;
        }
      }
      if (!taken) {
        LetGo();
        return false;
      }
      this->StartRead(&incoming_);  // Safe: the hold keeps the call open.
      return true;
    }

    // Waits for the call to end (every callback run); its status. No item
    // is taken after this.
    grpc::Status AwaitDone() ABSL_LOCKS_EXCLUDED(mu_) {
      LetGo();
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&done_));
      return status_;
    }

    void OnReadDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
      absl::MutexLock lock(&mu_);
      has_item_ = ok;
      ended_ = !ok;
    }

    void OnDone(const grpc::Status& status) override ABSL_LOCKS_EXCLUDED(mu_) {
      absl::MutexLock lock(&mu_);
      status_ = status;
      ended_ = true;
      done_ = true;
    }

   private:
    bool ReadSettled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return has_item_ || ended_;
    }

    // The consumer starts no more reads: the call may end. Once; without
    // mu_ (RemoveHold may run OnDone on this thread).
    void LetGo() ABSL_LOCKS_EXCLUDED(mu_) {
      {
        absl::MutexLock lock(&mu_);
        if (!held_) return;
        held_ = false;
      }
      this->RemoveHold();
    }

    absl::Mutex mu_;
    Proto incoming_;  // Written by gRPC from StartRead() to OnReadDone().
    bool held_ ABSL_GUARDED_BY(mu_) = true;  // Begin()'s hold, until LetGo().
    bool has_item_ ABSL_GUARDED_BY(mu_) = false;
    bool ended_ ABSL_GUARDED_BY(mu_) = false;
    bool done_ ABSL_GUARDED_BY(mu_) = false;
    grpc::Status status_ ABSL_GUARDED_BY(mu_);
  };

  std::unique_ptr<grpc::ClientContext> context_;
  const std::string target_;
  Item (*const convert_)(const Proto&);
  const std::function<void(const grpc::Status&)> on_finish_;
  bool finished_ = false;
  // Last, so destroyed first; by then Finish() has waited out its callbacks.
  Reader reader_;
};

using WatchStream = ServerStream<v1::WatchEvent, WatchEvent>;
using MailStream = ServerStream<v1::MailItem, MailItem>;

// Where a watcher resumes after a lost watch (the `resume_after` of
// RegistryClient::Watch): the revision of the last kSynced it took, then
// one less than that of each later change (changes of one revision may be
// several, and a stream may be lost between them: resuming one early costs
// at most a change seen twice). Nothing before a stream's kSynced moves
// it: a stream lost before then resumes from where the one before left.
// 0 until a first kSynced: a snapshot. Not thread-safe.
class WatchResumePoint {
 public:
  // A new stream opens (from revision()).
  void Opened() { synced_ = false; }
  // The stream gave `event`.
  void Saw(const WatchEvent& event);
  int64_t revision() const { return revision_; }

 private:
  int64_t revision_ = 0;
  bool synced_ = false;
};

// A client of one registry, or of several that share one store (on etcd).
// With several, it talks to one of them, the current one (RegistryPicker),
// for as long as it answers. A unary call that finds it
// unreachable (kUnavailable: refused, reset, or the connection known to be
// failing) goes on to the next registry, each registry tried at most once
// per call, and only calls that are safe to repeat are repeated, which is
// all of them here:
//  - Resolve, List, GetBinding, KeepAlive, Stat, Challenge read or renew;
//    Deposit is idempotent per (recipient, id), PutStatic an upsert, Ack
//    of an item already gone removes nothing and its receipts are deposits.
//  - Register is signed afresh (a new proof time) for each registry: a
//    registry that took the first proof before its answer was lost makes
//    that one a replay everywhere. If it did grant a lease, the retry finds
//    the name held (kAlreadyExists) as a lost answer would with one
//    registry; it never grants the name twice.
//  - Unregister, RemoveStatic and Release answered kNotFound after another
//    registry failed read as done: the first may have done it.
// kDeadlineExceeded is not retried (the call may still be running there,
// and the caller's time is spent), but the next call goes elsewhere.
// Streams (Watch, Listen) open at the current registry; one that ends
// because its registry went away makes the next registry current, so the
// caller's reconnect lands there.
//
// Errors name the registry that failed ("registry at a:50050 is
// unreachable: ..."); when every registry was tried and none answered, one
// message names them all ("no registry reachable (a:50050, b:50050): ...").
//
// Thread-safe, except SetAdminToken(), SetClock() and SetSwitchListener().
class RegistryClient {
 public:
  // One registry of several, reached through `channel` (one channel per
  // address, so each keeps its own TLS host check and reconnect backoff).
  struct Endpoint {
    std::string address;  // host:port, for messages.
    std::shared_ptr<grpc::Channel> channel;
  };

  // One registry. `target` is for messages ("registry at localhost:50050
  // is unreachable").
  RegistryClient(std::shared_ptr<grpc::Channel> channel, std::string target,
                 Millis timeout);

  // Several registries that serve one store, first one first; `endpoints`
  // must not be empty.
  RegistryClient(std::vector<Endpoint> endpoints, Millis timeout);

  // A client over one channel per address of `addresses` (host:port, or
  // several separated by commas, checked by ParseRegistryAddresses before)
  // that tries to reconnect at least every `max_backoff`, so a registry
  // that comes back is noticed within a retry or two (gRPC's default
  // backoff grows to two minutes). TLS with `credentials`, plaintext when
  // null.
  static std::unique_ptr<RegistryClient> Connect(
      const std::string& addresses, Millis timeout,
      Millis max_backoff = Millis(1000),
      std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

  // Every registry, for messages: "a:50050", or "a:50050, b:50050".
  const std::string& target() const { return target_; }

  // The registry calls go to now.
  const std::string& current_address() const;

  // The channel to the current registry, to wait on while reconnecting.
  std::shared_ptr<grpc::Channel> current_channel() const;

  // Told when the client moves from registry `from`, which went away
  // (`why`: "registry at a:50050 is unreachable: ..."), to registry `to`;
  // not when every registry is away. Called from the thread of the call
  // that noticed, with no lock held. Call before the client is used from
  // more than one thread.
  using SwitchListener = std::function<void(
      const std::string& from, const std::string& to, const absl::Status& why)>;
  void SetSwitchListener(SwitchListener listener) {
    on_switch_ = std::move(listener);
  }

  // The registry's admin token, sent with PutStatic, RemoveStatic and
  // Release as `authorization: Bearer <token>`. Call before the client is
  // used from more than one thread.
  void SetAdminToken(std::string token) { admin_token_ = std::move(token); }

  // The clock whose wall time dates registration proofs, and whose
  // monotonic time says how long a registry that failed is passed over
  // (RealClock() until set; not owned, must outlive this). Call before the
  // client is used from more than one thread.
  void SetClock(const Clock& clock) { clock_ = &clock; }

  // A single-use challenge for a chat-register-v1 proof in the next
  // Register of `name` (Registry.Challenge). Register no longer needs one.
  absl::StatusOr<std::string> Challenge(const std::string& name);

  // Registers `request`. With `identity` (not owned, used during the call
  // only), sends in the same call the proof that binds the name to
  // identity->public_key(): a chat-register-v2 signature of the name,
  // address, key and the time (request.public_key, proof_unix_ms and
  // signature are filled in, whatever they held; see NextProofTime). A
  // registry from before v2 proofs refuses that naming the challenge; then
  // it asks for a challenge and sends a v1 proof instead (two calls).
  // Without `identity`, sends `request` as it is, which the registry
  // refuses (kInvalidArgument naming public_key). kPermissionDenied with
  // the registry's message ("name bob belongs to another key ...") when the
  // name is bound to another key; kUnauthenticated when this machine's
  // clock is off by more than the registry's --proof-skew (the message says
  // by how much).
  absl::StatusOr<Lease> Register(const RegisterRequest& request,
                                 const Identity* identity = nullptr);
  absl::StatusOr<Millis> KeepAlive(const std::string& name,
                                   const std::string& lease_id);
  absl::Status Unregister(const std::string& name, const std::string& lease_id);
  absl::StatusOr<Entry> Resolve(const std::string& name);
  // One page; with `service`, only entries that offer it (filtered by the
  // registry, ListPage::service == service; a registry older than services
  // ignores the filter, so the page is filtered here and
  // ListPage::service is empty: total_size then counts everyone).
  absl::StatusOr<ListPage> List(const std::string& prefix, int page_size,
                                const std::string& page_token,
                                const std::string& service = "");
  // Every entry under `prefix` (offering `service`, if set), following
  // pages.
  absl::StatusOr<std::vector<Entry>> ListAll(const std::string& prefix,
                                             const std::string& service = "");
  // A static entry offering `services` (empty: "chat").
  absl::StatusOr<Entry> PutStatic(
      const std::string& name, const std::string& address,
      const std::vector<std::string>& services = {});
  absl::Status RemoveStatic(const std::string& name);

  // The key `name` is bound to (Registry.GetBinding); kNotFound when none.
  absl::StatusOr<Binding> GetBinding(const std::string& name);

  // Admin: ends the binding of `name` and its live lease (Registry.Release).
  absl::Status Release(const std::string& name);

  // Opens a watch of every name under `prefix`, at the current registry. It
  // has no deadline; end it with Cancel(). Streams must not outlive the
  // client. With `resume_after` (WatchResumePoint::revision() of a watch of
  // the same scope that was lost), a registry that still holds the changes
  // after it sends those, then kSynced with `resumed` set, instead of a
  // snapshot; otherwise it sends a snapshot as for 0 (proto
  // WatchRequest.revision). On etcd any registry of the cluster can resume.
  std::unique_ptr<WatchStream> Watch(const std::string& prefix,
                                     int64_t resume_after = 0);

  // Opens a watch of `names` only (compared case-insensitively): the
  // snapshot lists those that are live, then kSynced, then their changes.
  // A bad name ends the stream with kInvalidArgument naming it, more than
  // the registry's --max-watch-names with kResourceExhausted (Finish()).
  // To follow another set, open a new watch (and cancel this one), without
  // `resume_after` (as for Watch()): a resumed watch sends no snapshot, so
  // names new to the set would never be listed.
  std::unique_ptr<WatchStream> WatchNames(const std::vector<std::string>& names,
                                          int64_t resume_after = 0);

  // How much mail waits for `name` (Mailbox.Stat).
  absl::StatusOr<MailboxStats> MailboxStat(const std::string& name);

  // Leaves `item` (a message) in its recipient's mailbox (Mailbox.Deposit).
  absl::Status Deposit(const MailItem& item);

  // Opens the mailbox of `name`, which `lease_id` must hold, at the current
  // registry. No deadline; end it with Cancel().
  std::unique_ptr<MailStream> Listen(const std::string& name,
                                     const std::string& lease_id);

  // Removes delivered items from the mailbox of `name` (each named by its
  // id and digest, as it came: see MailRef) and leaves `receipts` (kReceipt
  // items made by us, see proto AckRequest.receipts) for the senders, in one
  // transaction.
  absl::Status Ack(const std::string& name, const std::string& lease_id,
                   const std::vector<MailRef>& items,
                   const std::vector<MailItem>& receipts = {});

  // What PutGroupState decided: `state` is the group's latest (accepted),
  // or `current` is, and `state` did not follow it (re-base on it).
  struct GroupPut {
    bool accepted = false;
    GroupState current;
  };
  // Offers `state` (signed) as its group's next version (Groups service,
  // proto/registry.proto). A state the registry already holds as that
  // version, byte for byte (a repeat after a lost answer), counts as
  // accepted. Errors as the RPC's; kUnavailable for a malformed answer.
  absl::StatusOr<GroupPut> PutGroupState(const GroupState& state);
  // Versions of `group_id` after `after_version`, oldest first (a page:
  // at most `max_states`, 0 for the registry's page), and the latest
  // version. The states are well formed; their chain is the caller's to
  // check. kNotFound for a group the registry does not hold.
  struct GroupStates {
    std::vector<GroupState> states;
    int64_t latest_version = 0;
  };
  absl::StatusOr<GroupStates> GetGroupStates(const std::string& group_id,
                                             int64_t after_version,
                                             int max_states = 0);

 private:
  // One registry: its channel and the stubs over it.
  struct Connection {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Registry::Stub> stub;
    std::unique_ptr<v1::Mailbox::Stub> mailbox;
    std::unique_ptr<v1::Groups::Stub> groups;
  };
  // What a kNotFound means after another registry failed during the call.
  enum class NotFoundAfterFailover { kError, kDone };

  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // NewContext() with the admin token attached, when there is one.
  std::unique_ptr<grpc::ClientContext> NewAdminContext() const;
  // Runs `attempt` at the current registry, then at the others (in the
  // picker's order) for as long as they are unreachable; see the class
  // comment.
  absl::Status Call(
      const std::function<grpc::Status(const Connection&)>& attempt,
      NotFoundAfterFailover not_found = NotFoundAfterFailover::kError);
  // The index of the registry a stream opens at now.
  size_t StreamIndex() const;
  // How a stream at connections_[index] ended; moves away from it when it
  // went away.
  void StreamFinished(size_t index, const grpc::Status& status);
  // Registry `index` could not be reached (`status`): passed over, and the
  // switch told when the current one moved to a live one.
  void Unreachable(size_t index, const grpc::Status& status);
  // Register with a fresh proof at one registry (a v1 challenge from that
  // same registry when it asks for one).
  grpc::Status RegisterAt(const Connection& connection,
                          const RegisterRequest& request,
                          const Identity* identity,
                          v1::RegisterResponse* response);
  std::unique_ptr<WatchStream> OpenWatch(const v1::WatchRequest& request);
  // The time to date the next proof with: the clock's, or 1 ms after the
  // last one when that is not later (two registrations in one millisecond,
  // or a clock stepped back), so each proof is later than the one before,
  // as the registry requires of one name.
  int64_t NextProofTime();

  std::vector<Connection> connections_;  // Never empty.
  RegistryPicker picker_;
  const std::string target_;
  const Millis timeout_;
  std::string admin_token_;   // Empty: none.
  const Clock* clock_;        // Not owned.
  SwitchListener on_switch_;  // May be empty.
  std::atomic<int64_t> last_proof_unix_ms_{0};
};

// Whether `status` means the server could not be reached (as opposed to a
// refusal by a server that answered).
bool IsUnreachable(const absl::Status& status);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_CLIENT_REGISTRY_CLIENT_H_
