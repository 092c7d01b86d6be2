// A running chat peer without its front end: serves ChattingService,
// registers its name and keeps it, follows who is online, and sends
// messages to other peers by name, in order, reporting each one's fate.
// Peer only wires the parts: Conversation (one per recipient) over a
// Transport, the Contacts it follows, the OnlineSet kept by the
// RegistryFollower, the MailListener, the LeaseKeeper, the PeerStore (whose
// roles it hands to each part). What the parts tell back up goes through
// the small interfaces of peer/listeners.h: states of our messages through
// the ReadTracker and the HistoryRecorder to the front end; released
// messages, comings and goings, and questions about a recipient to Peer.

#ifndef CHAT_PEER_PEER_H_
#define CHAT_PEER_PEER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/identity.h"
#include "common/periodic_loop.h"
#include "peer/chat_service.h"
#include "peer/contacts.h"
#include "peer/conversation.h"
#include "peer/envelope.h"
#include "peer/events.h"
#include "peer/group_adapters.h"
#include "peer/group_directory.h"
#include "peer/group_gate.h"
#include "peer/group_inbox.h"
#include "peer/group_manager.h"
#include "peer/grpc_transport.h"
#include "peer/history.h"
#include "peer/key_book.h"
#include "peer/listeners.h"
#include "peer/lookalikes.h"
#include "peer/mail_listener.h"
#include "peer/online_set.h"
#include "peer/peer_store.h"
#include "peer/read_tracker.h"
#include "peer/registry_follower.h"
#include "peer/strangers.h"
#include "peer/transport.h"
#include "registry/client/lease_keeper.h"
#include "registry/client/registry_client.h"

namespace chat::peer {

struct PeerOptions {
  std::string name;
  // host:port of the registry, or of several sharing one store, separated
  // by commas (RegistryClient moves among them).
  std::string registry = "localhost:50050";
  std::string listen = "0.0.0.0:0";  // Port 0: the OS chooses.
  // host:port others should dial; empty: the local address used to reach
  // the registry, with the bound port.
  std::string advertise;
  Millis ttl{0};  // 0: the registry's default.
  // Deadline of each call to the registry or another peer.
  Millis rpc_timeout{5000};
  PeerTls tls;  // Plaintext by default.
  // The peer's SQLite file (see PeerStorePath()); ":memory:" keeps nothing
  // across runs (tests).
  std::string store_path = ":memory:";
  // The identity key file (Identity::LoadOrCreate). Empty: store_path with
  // ".key" for ".db" (NAME.key beside NAME.db: a key per name, even when
  // names share a data directory), or a new key kept nowhere for ":memory:".
  std::string identity_path;
  // How much the inbox remembers (tests make it small).
  PeerStoreLimits store_limits;
  // Commits survive power loss (synchronous=FULL), not only a killed
  // process; costs one fsync per commit.
  bool sync_full = true;
  // How long a message that overtook an earlier one waits for it before it
  // is shown anyway.
  Millis hold_back{10000};
  // First and longest pause between attempts to send a message that could
  // be neither delivered nor stored.
  Millis retry_min{250};
  Millis retry_max{5000};
  // At most this many names followed (Contacts): talked with or chosen.
  size_t max_followed = 1000;
  // Chosen at start (--peer): followed before the first snapshot.
  std::vector<std::string> follow;
  // At most this many gRPC channels to other peers are kept (one per peer
  // talked to); the least recently used is closed beyond it.
  size_t max_channels = kDefaultMaxChannels;
  // Read receipts both ways (--no-read-receipts turns them off): we send
  // them for what our user read and show others' (kRead). Off, we do
  // neither, like Signal and WhatsApp.
  bool read_receipts = true;
  // Pause before read receipts that could not go are tried again.
  Millis read_receipt_retry{5000};
  // How many plain messages strangers (names bound to no key that the user
  // never talked with) may send, per name and per host (StrangerGate).
  StrangerGate::Options strangers;
};

// What the peer says, once each way, when the registry stops answering and
// when it answers again (told by the lease keeper, which asks it every
// third of the TTL, every second while it is away).
inline constexpr char kRegistryAwayNotice[] =
    "the registry is unreachable; chatting goes on with peers you know, new "
    "names and the mailbox wait";
inline constexpr char kRegistryBackNotice[] = "the registry is back";

// One member of a group as /groups shows it.
struct GroupMemberView {
  std::string name;
  std::string fingerprint;  // Of the key the group's state lists.
  bool owner = false;
  bool you = false;
  // We pinned another key for this name than the group lists: the
  // key-change rule of direct chat applies (/verify, /trust).
  bool key_differs = false;
};

// One group as /groups shows it.
struct GroupView {
  std::string label;           // Unique among our groups (GroupLabels).
  registry::GroupState state;  // The latest we verified.
  bool member = false;         // We are in it, and it has not ended.
  std::vector<GroupMemberView> members;  // In the state's order.
};

// A group the user named: its id and its label.
struct GroupTarget {
  std::string group_id;
  std::string label;
};

// Thread-safe.
class Peer final : private MessageSink,
                   private ReleaseListener,
                   private PresenceListener,
                   private RecipientDirectory,
                   private GroupChangeListener {
 public:
  // Loads (or makes) its identity, serves, registers with it, starts
  // following the registry, and returns once the start-up summary (who is
  // online) is out, or after `rpc_timeout` without it. kAlreadyExists when a
  // live peer holds the name, kPermissionDenied when the name belongs to
  // another key (the registry's message says until when), kDataLoss when the
  // identity file is damaged, kUnavailable when the registry cannot be reached
  // or the address cannot be served, kInvalidArgument for a bad name or
  // address, kAlreadyExists too when another chat-peer of this name holds the
  // store ("alice is already running here (pid 1234)"), kFailedPrecondition
  // when the store cannot be opened otherwise. `events` and `clock` are not
  // owned and must outlive the peer.
  static absl::StatusOr<std::unique_ptr<Peer>> Start(const PeerOptions& options,
                                                     EventSink* events,
                                                     const Clock& clock);

  // Same as Shutdown().
  ~Peer() override;

  const std::string& name() const { return options_.name; }
  // The address registered for us.
  const std::string& address() const { return address_; }
  // Our identity's public key (its Fingerprint() is what others compare).
  const PublicKey& public_key() const { return identity_->public_key(); }

  // What we trust for `name` and what the registry lists now (/verify).
  KeyView Verify(const std::string& name);
  // Accepts the key the registry lists for `name` now (/trust); what waited
  // for it is sent then, and what it left in our mailbox meanwhile is read
  // again (MailListener::Reread). Errors as KeyBook::Trust.
  absl::StatusOr<KeyView> Trust(const std::string& name);

  // Writes `text` for `to` to the outbox and returns the message's id at
  // once. `to` may be a group ("#team", IsGroupTarget()): then the message
  // has a copy for every other member of the group's latest state we
  // verified, each sealed to its member and sent as a direct message is
  // (kSendResult events per copy, `group` set); kNotFound for a group we do
  // not know, kFailedPrecondition when we are not in it or nobody else is; its
  // states come as kSendResult events (kSent once it is in the outbox). It is
  // tried until it is delivered or stored, also across restarts; messages to
  // one peer go in order. kInvalidArgument for a bad name or text,
  // kFailedPrecondition once shutting down. Refused at once, nothing written or
  // queued (CheckRecipient): kFailedPrecondition "greeter is not a chat peer
  // (it offers: greet)" for a name that offers no chat, kNotFound "nobody named
  // carol is registered; ..." for a name the registry has never seen.
  absl::StatusOr<std::string> Send(const std::string& to,
                                   const std::string& text,
                                   bool to_partner = false);

  // One page of the chat peers registered now, from the registry (List
  // without a prefix, filtered by the service "chat", `page_size` entries
  // from `page_token`: "" for the first page, then the page's
  // next_page_token). Never the whole registry at once.
  absl::StatusOr<registry::ListPage> ListPeers(const std::string& page_token,
                                               int page_size);

  // ---- Groups (docs/peer.md, "Groups").

  // /group VERB GROUP NAMES: "create" (GROUP is the new group's display
  // name), "add", "remove", "owner" (NAMES: the new owner), "leave". The
  // change is signed, sequenced by the registry (GroupManager) and told to
  // everyone in the group before or after it, through the outbox (a change
  // notice). Returns the line to show. Errors as GroupManager's;
  // kInvalidArgument for another verb.
  absl::StatusOr<std::string> ChangeGroup(
      const std::string& verb, const std::string& group,
      const std::vector<std::string>& names);
  // Our groups, by label.
  std::vector<GroupView> Groups();
  // The group the user means by `target` ("#team", "team", "team~3f2a", or
  // its id). kNotFound, or kInvalidArgument when two groups answer to it
  // (the message lists their labels).
  absl::StatusOr<GroupTarget> FindGroup(const std::string& target);
  // What Tab completes after '#': the labels of the groups we are in.
  std::vector<std::string> GroupLabelsForCompletion();

  // Follows `name` (/follow, /chat): its comings and goings are shown.
  // Errors as Contacts::Follow.
  absl::Status Follow(const std::string& name);
  // Stops following `name`; returns whether it was followed.
  bool Unfollow(const std::string& name);
  // The names followed, sorted (for completion and /follow).
  std::vector<std::string> Followed();
  // The followed names online now (name, address, is_static, services),
  // sorted.
  std::vector<registry::Entry> FollowedOnline();
  // What Tab completes after '@': the names followed, less those online
  // that offer no chat (the greeter). Sorted.
  std::vector<std::string> CompletionNames();

  // The user is active in the conversation with `name` (typed a line to
  // it, or switched to it with /chat): every message shown from `name` so
  // far is read, and its read receipt goes to `name` soon (batched; unless
  // read receipts are off). `name` may be a group ("#team"): then every
  // message shown in that group is, each receipt going to its sender; a
  // name never reads its group messages, nor a group its members' direct
  // ones. An unknown group reads nothing. Never blocks.
  void MarkRead(const std::string& name);
  // Read receipts sent and dropped so far (tests).
  const ReadTracker& read_tracker() const { return *reads_; }
  // Whether `name` is online now, as the registry watch last said.
  bool IsOnline(const std::string& name);

  // The last `limit` messages with `name` (/history, /chat), oldest first;
  // `name` may be a group ("#team"). kInvalidArgument for a bad name,
  // kNotFound for an unknown group, kUnavailable when the file cannot be
  // read.
  absl::StatusOr<HistoryPage> History(const std::string& name, int limit);
  // Erases the history with `name` (/forget) and returns how many messages
  // went; what is still to be sent or shown stays. Errors as History().
  absl::StatusOr<int64_t> ForgetHistory(const std::string& name);

  // Follows `name`, then blocks until it is online, or
  // Interrupt()/Shutdown(); returns whether it is online.
  bool WaitUntilOnline(const std::string& name);

  // Wakes WaitUntilOnline() callers, which then return false.
  void Interrupt();

  // Gives each queued message one more try (a message that still cannot go
  // stays in the outbox for the next start), stops following the registry,
  // unregisters and stops serving. Idempotent.
  void Shutdown();

 private:
  Peer(PeerOptions options, EventSink* events, const Clock& clock);

  // Start()'s step for groups (peer/peer_groups.cc): builds group_keys_,
  // group_directory_, groups_, group_gate_ and the inbox's two doors over
  // store_, registry_, identity_ and keys_, which must be set, and events_
  // (the labeling sink).
  void WireGroups();

  // Start()'s step once we are registered: what a killed run recorded but
  // may not have shown is shown (Release, `repeated`), and what it left in
  // the outbox is sent again on its own. Errors as Outbox::Entries.
  absl::Status ResumeLastRun();
  // Start()'s step that follows who of those followed is online (the
  // keeper, not the follower, tells when the registry is away) and reads
  // our mailbox; needs keeper_ and mail_inbox_.
  void StartFollowing();

  // MessageSink (ChatService, gRPC threads): keeps a message in the inbox,
  // releases and shows what it may, then answers the sender.
  void Accept(const ChatMessage& message, AcceptCallback done) override;
  // ReleaseListener (the mail listener): Release(messages, false).
  void OnReleased(const std::vector<ChatMessage>& messages) override {
    Release(messages, /*repeated=*/false);
  }
  // PresenceListener (the registry follower): a channel to `name` is stale
  // (Transport::Forget); what waits for `name` goes now (Nudge).
  void OnMoved(const std::string& name) override;
  void OnArrived(const std::string& name) override { Nudge(name); }
  // GroupChangeListener (the receiving paths, through the gate): what the
  // fetched states changed is shown.
  void OnGroupAdvanced(const std::vector<GroupAdvance>& advanced) override;
  // Sends the change notice of `update` to everyone in the group before
  // and after it (GroupUpdate::notify).
  void TellMembers(const GroupUpdate& update, const std::string& label);
  // /group leave of a group we are in but do not own: only the owner signs
  // states, so we ask the owner's peer, which takes us out (a group_leave
  // message to the owner alone, through the outbox).
  absl::StatusOr<std::string> AskToLeave(const registry::GroupState& state,
                                         const std::string& label);
  // A member's request to leave arrived (shown): when we own the group, it
  // is queued for GrantLeaveRequests(), which calls the registry and so
  // never runs on a receiving thread.
  void OnLeaveRequest(const ChatMessage& message)
      ABSL_LOCKS_EXCLUDED(leave_mu_);
  // The hold-back loop's: removes those who asked to leave, and tells.
  void GrantLeaveRequests() ABSL_LOCKS_EXCLUDED(leave_mu_);
  // A message of ours with `text`, written now: its id, sender, sending
  // time and the lab's time field; no recipient.
  ChatMessage NewMessage(const std::string& text) const;
  // NewMessage(), in `state`'s group at `state`'s version (and its hash).
  ChatMessage NewGroupMessage(const registry::GroupState& state,
                              const std::string& text) const;
  // Send() to a group.
  absl::StatusOr<std::string> SendToGroup(const std::string& target,
                                          const std::string& text,
                                          bool to_partner);
  // Writes `message` (group fields set) for `recipients` to the outbox and
  // queues each copy to its member. `echo`: a kSent event for the message
  // (a change notice has none).
  void QueueGroupMessage(ChatMessage message,
                         std::vector<std::string> recipients, bool to_partner,
                         bool echo);
  // The conversation id of `name`: a peer's name as it is, a group's
  // "#<id>".
  absl::StatusOr<std::string> ConversationTarget(const std::string& name);
  // RecipientDirectory (each Conversation, from its thread): a static
  // entry (a lab peer, or a name the watch has not listed yet) gets one
  // message at a time; IsStatic asks the registry for a name the watch has
  // not listed; Exists is RecipientExists.
  size_t Window(const std::string& to) override;
  bool IsStatic(const std::string& to) override;
  absl::Status Exists(const std::string& to) override {
    return RecipientExists(to);
  }

  // The inbox released `messages` (in order): this is where they change
  // state, so here they are noted: each sender talked with becomes a
  // contact (a plain message's sender only if it was one already), the read
  // tracker notes each one shown, and the inbox's shown mark moves past
  // them (Inbox::MarkShown) once each was shown (Show).
  void Release(const std::vector<ChatMessage>& messages, bool repeated);
  // Shows one message, and only shows it: its sender's name is checked
  // against those the user knows (looks_like).
  void Show(const ChatMessage& message, bool repeated);
  // The hold-back loop's round: the history's age, the strangers refused,
  // and the messages that waited long enough for those before them
  // (Inbox::ReleaseOverdue). Returns the pause before the next round.
  std::optional<Millis> HoldBackRound();
  // Told by the lease keeper when the registry stops or starts answering
  // again: one notice each way, and what waited for it goes (NudgeAll).
  void RegistryReachable(bool reachable, const absl::Status& status);
  // Told by the registry client when it moves to another registry address.
  void RegistrySwitched(const std::string& from, const std::string& to,
                        const absl::Status& why);
  // Hands outbox entries (in order, all to one recipient) to their
  // conversation.
  void QueueLocked(std::vector<ChatMessage> messages, bool to_partner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cuts the pause of the conversation with `name` short, if there is one.
  void Nudge(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  // Cuts every conversation's pause short (the registry is back).
  void NudgeAll() ABSL_LOCKS_EXCLUDED(mu_);
  // OK when `to` may be written to: a chat peer online, a name we know
  // (followed, pinned, already written to this run: no registry call, so a
  // message to a known peer costs no extra RPC), else what the registry
  // says: Resolve (a live entry: must offer chat), then GetBinding (a name
  // bound to a key, offline or reserved: it gets its mail). Both NOT_FOUND:
  // kNotFound, nobody of that name. The registry unreachable (or any other
  // error): OK, queued as before (benefit of the doubt).
  absl::Status CheckRecipient(const std::string& to) ABSL_LOCKS_EXCLUDED(mu_);
  // CheckRecipient's questions to the registry (Resolve, then GetBinding),
  // with its answers.
  absl::Status AskRegistryAbout(const std::string& to);
  // For a conversation whose recipient is not registered now: kNotFound
  // when nobody of that name is (neither pinned, nor live, nor bound to a
  // key); OK otherwise, also when the registry cannot tell.
  absl::Status RecipientExists(const std::string& to);
  // Shows `event` (the front end's sink; it writes nothing).
  void Emit(const PeerEvent& event) { events_->OnEvent(event); }
  // Applies the history's age limit once an hour (on the hold-back loop).
  void TrimHistoryWhenDue();

  const PeerOptions options_;
  // The front end (not owned), through labeler_ once the store is open.
  EventSink* events_;
  const Clock& clock_;
  std::string address_;

  // Destroyed bottom-up: every part below uses the store and the client.
  std::unique_ptr<PeerStore> store_;
  // Gives events about a group its label, on the way to the front end.
  std::unique_ptr<GroupLabelingSink> labeler_;
  // Every state of our messages is told, where it changed, to reads_ (a
  // DeliveryListener: it notes kDelivered and orders kRead after it), which
  // tells recorder_ (it writes the state into the history), which shows it
  // on the front end. Before everything that tells them: destroyed after.
  std::unique_ptr<HistoryRecorder> recorder_;
  std::unique_ptr<Identity> identity_;
  std::unique_ptr<registry::RegistryClient> registry_;
  std::unique_ptr<KeyBook> keys_;
  std::unique_ptr<Envelope> envelope_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<ReadTracker> reads_;
  std::unique_ptr<Contacts> contacts_;
  // Groups: the keys they list and check (over keys_), the registry's
  // sequencer, the changes we make, the gate every arriving group message
  // passes, and the inbox's two doors that apply it.
  std::unique_ptr<TrustedGroupKeys> group_keys_;
  std::unique_ptr<GroupDirectory> group_directory_;
  std::unique_ptr<GroupManager> groups_;
  std::unique_ptr<GroupGate> group_gate_;
  std::unique_ptr<GroupCheckedInbox> direct_inbox_;  // ChatService's door.
  std::unique_ptr<GroupCheckedInbox> mail_inbox_;    // The MailListener's.
  // Strangers' plain messages, limited before they are kept (Accept).
  std::unique_ptr<StrangerGate> strangers_;
  // Which known name a plain sender's name imitates (Show).
  Lookalikes lookalikes_;
  OnlineSet online_;
  std::unique_ptr<ChatService> service_;
  std::unique_ptr<SupervisedServer>
      server_;  // Listens again after fd exhaustion.
  std::unique_ptr<registry::LeaseKeeper> keeper_;
  // The follower's events on their way to `events_`; notes the start-up
  // summary, so Start() returns once it is out (who is online comes
  // before the partner line and the late messages).
  class FollowerEvents;
  std::unique_ptr<FollowerEvents> follower_events_;
  std::unique_ptr<RegistryFollower> follower_;
  std::unique_ptr<MailListener> mail_;
  std::optional<PeriodicLoop> hold_back_;  // Releases overdue messages.
  // When TrimHistoryWhenDue() next trims; hold_back_'s thread only.
  absl::Time next_history_trim_;

  // Requests to leave our groups, (group id, name), waiting for the
  // hold-back loop; at most kMaxLeaveRequests (beyond, a request is
  // dropped with no word: the member asks again).
  static constexpr size_t kMaxLeaveRequests = 1000;
  absl::Mutex leave_mu_;
  std::vector<std::pair<std::string, std::string>> leave_requests_
      ABSL_GUARDED_BY(leave_mu_);

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // One ordered outgoing queue per recipient, by name key.
  absl::flat_hash_map<std::string, std::unique_ptr<Conversation>> conversations_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::peer

#endif  // CHAT_PEER_PEER_H_
