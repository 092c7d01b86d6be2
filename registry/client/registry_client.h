// A synchronous client of the Registry service for chatctl, peers and the
// greeter: domain structs in and out, a deadline on every call, and errors
// that name the registry address when it cannot be reached.

#ifndef CHAT_REGISTRY_CLIENT_REGISTRY_CLIENT_H_
#define CHAT_REGISTRY_CLIENT_REGISTRY_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/identity.h"
#include "proto/registry.grpc.pb.h"
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
// may be called from any thread.
template <typename Proto, typename Item>
class ServerStream {
 public:
  ServerStream(std::unique_ptr<grpc::ClientContext> context,
               std::unique_ptr<grpc::ClientReader<Proto>> reader,
               std::string target, Item (*convert)(const Proto&))
      : context_(std::move(context)),
        reader_(std::move(reader)),
        target_(std::move(target)),
        convert_(convert) {}

  ~ServerStream() {
    if (finished_) return;
    Cancel();
    Item ignored;
    while (Next(&ignored)) {
    }
    Finish().IgnoreError();
  }

  // The next item, or false once the stream ended (see Finish()).
  bool Next(Item* item) {
    Proto proto;
    if (!reader_->Read(&proto)) return false;
    *item = convert_(proto);
    return true;
  }

  // Why the stream ended. Call once, after Next() returned false.
  absl::Status Finish() {
    finished_ = true;
    return RegistryStatus(reader_->Finish(), target_);
  }

  // Ends the stream: a blocked Next() returns false soon after.
  void Cancel() { context_->TryCancel(); }

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReader<Proto>> reader_;
  const std::string target_;
  Item (*const convert_)(const Proto&);
  bool finished_ = false;
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

// Thread-safe, except SetAdminToken() and SetClock().
class RegistryClient {
 public:
  // `target` is for messages ("registry at localhost:50050 is unreachable").
  RegistryClient(std::shared_ptr<grpc::Channel> channel, std::string target,
                 Millis timeout);

  // A client over a channel to `address` (host:port) that tries to
  // reconnect at least every `max_backoff`, so a registry that comes back
  // is noticed within a retry or two (gRPC's default backoff grows to two
  // minutes). TLS with `credentials`, plaintext when null.
  static std::unique_ptr<RegistryClient> Connect(
      const std::string& address, Millis timeout,
      Millis max_backoff = Millis(1000),
      std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

  const std::string& target() const { return target_; }

  // The registry's admin token, sent with PutStatic, RemoveStatic and
  // Release as `authorization: Bearer <token>`. Call before the client is
  // used from more than one thread.
  void SetAdminToken(std::string token) { admin_token_ = std::move(token); }

  // The clock whose wall time dates registration proofs (RealClock() until
  // set; not owned, must outlive this). Call before the client is used
  // from more than one thread.
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
  // registry, ListPage::service == service; a registry before issue 13
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

  // Opens a watch of every name under `prefix`. It has no deadline; end it
  // with Cancel(). With `resume_after` (WatchResumePoint::revision() of a
  // watch of the same scope that was lost), a registry that still holds the
  // changes after it sends those, then kSynced with `resumed` set, instead
  // of a snapshot; otherwise it sends a snapshot as for 0 (proto
  // WatchRequest.revision).
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

  // Opens the mailbox of `name`, which `lease_id` must hold. No deadline;
  // end it with Cancel().
  std::unique_ptr<MailStream> Listen(const std::string& name,
                                     const std::string& lease_id);

  // Removes delivered items from the mailbox of `name` (each named by its
  // id and digest, as it came: see MailRef) and leaves `receipts` (kReceipt
  // items made by us, see proto AckRequest.receipts) for the senders, in one
  // transaction.
  absl::Status Ack(const std::string& name, const std::string& lease_id,
                   const std::vector<MailRef>& items,
                   const std::vector<MailItem>& receipts = {});

 private:
  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // NewContext() with the admin token attached, when there is one.
  std::unique_ptr<grpc::ClientContext> NewAdminContext() const;
  absl::Status Convert(const grpc::Status& status) const;
  std::unique_ptr<WatchStream> OpenWatch(const v1::WatchRequest& request);
  // The time to date the next proof with: the clock's, or 1 ms after the
  // last one when that is not later (two registrations in one millisecond,
  // or a clock stepped back), so each proof is later than the one before,
  // as the registry requires of one name.
  int64_t NextProofTime();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Registry::Stub> stub_;
  std::unique_ptr<v1::Mailbox::Stub> mailbox_stub_;
  const std::string target_;
  const Millis timeout_;
  std::string admin_token_;  // Empty: none.
  const Clock* clock_;       // Not owned.
  std::atomic<int64_t> last_proof_unix_ms_{0};
};

// Whether `status` means the server could not be reached (as opposed to a
// refusal by a server that answered).
bool IsUnreachable(const absl::Status& status);

}  // namespace chat::registry

#endif  // CHAT_REGISTRY_CLIENT_REGISTRY_CLIENT_H_
