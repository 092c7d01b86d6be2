// `chatctl watch`: prints the names under a prefix, then every change, until
// interrupted. A watch that breaks after it was established (the registry
// restarted, say) is opened again with backoff, from the revision it had
// reached: a registry that still holds the changes since (on etcd, any
// registry of the cluster) sends only those, printed as they happened.
// Otherwise it sends a snapshot, which is compared with what was printed
// before, so the user sees only what changed while the watch was down.

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "registry/chatctl/commands.h"
#include "registry/client/registry_client.h"
#include "registry/names.h"

namespace chat::chatctl {
namespace {

using registry::Entry;
using registry::EventReason;
using registry::EventType;
using registry::WatchEvent;

// The reason word of a DELETE for an entry that left while the watch was
// down: the registry can no longer say why.
constexpr char kGoneHuman[] = "gone while disconnected";
constexpr char kGoneJson[] = "gone_while_disconnected";

std::string ReasonText(EventReason reason, bool json) {
  switch (reason) {
    case EventReason::kInitial:
      return "initial";
    case EventReason::kRegistered:
      return "registered";
    case EventReason::kAddressChanged:
      return json ? "address_changed" : "address changed";
    case EventReason::kUnregistered:
      return "unregistered";
    case EventReason::kExpired:
      return "expired";
    case EventReason::kNone:
      break;
  }
  return "unknown";
}

// Ends of a stream after which watching again makes sense: the registry went
// away or restarted (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED by its
// shutdown), or it dropped us for falling behind (RESOURCE_EXHAUSTED).
bool WorthReconnecting(const absl::Status& status) {
  return status.ok() || registry::IsUnreachable(status) ||
         status.code() == absl::StatusCode::kCancelled ||
         status.code() == absl::StatusCode::kResourceExhausted ||
         status.code() == absl::StatusCode::kAborted;
}

// Waits `backoff` (true: cut short by `interrupt`) while nudging `channel` to
// reconnect. Waiting on the channel rather than sleeping matters: gRPC's
// synchronous client notices that a connection attempt finished only while
// some thread waits on the channel, and otherwise only every 5 s.
bool WaitToReconnect(grpc::Channel& channel, Millis backoff,
                     Interrupt* interrupt) {
  constexpr Millis kSlice(100);  // How soon an interrupt is noticed.
  const auto deadline = std::chrono::system_clock::now() + backoff;
  while (std::chrono::system_clock::now() < deadline) {
    if (interrupt != nullptr && interrupt->triggered()) return true;
    const grpc_connectivity_state state =
        channel.GetState(/*try_to_connect=*/true);
    channel.WaitForStateChange(
        state, std::min(deadline, std::chrono::system_clock::now() + kSlice));
  }
  return interrupt != nullptr && interrupt->triggered();
}

// Prints events and remembers what it printed, to resynchronise after a
// reconnect. Used by one thread.
class EventPrinter {
 public:
  EventPrinter(std::ostream& out, std::ostream& err, bool json)
      : out_(out), err_(err), json_(json) {}

  // Starts a new stream. After a reconnect (`resync`), what it replays is
  // compared with what was printed before instead of printed again: the
  // initial entries of a snapshot, or the changes of a resumed watch (which
  // may repeat one already printed).
  void BeginStream(bool resync) {
    resyncing_ = resync;
    seen_.clear();
  }

  // False when the output cannot be written any more.
  bool Print(const WatchEvent& event) {
    const std::string key = registry::NameKey(event.entry.name);
    switch (event.type) {
      case EventType::kSynced:
        return Synced(event.resumed);
      case EventType::kPut: {
        auto it = known_.find(key);
        if (resyncing_) {
          seen_.insert(key);
          if (it != known_.end() && it->second.address == event.entry.address &&
              it->second.is_static == event.entry.is_static) {
            it->second = event.entry;
            return true;  // Unchanged while we were away.
          }
        }
        known_[key] = event.entry;
        return Line("PUT", ReasonText(event.reason, json_), event.entry);
      }
      case EventType::kDelete:
        if (resyncing_ && known_.count(key) == 0) {
          return true;  // A resumed watch repeating what was printed.
        }
        known_.erase(key);
        return Line("DELETE", ReasonText(event.reason, json_), event.entry);
    }
    return true;
  }

 private:
  // `resumed`: the stream sent the changes since the last one seen, not a
  // snapshot, so whatever it did not mention is still there.
  bool Synced(bool resumed) {
    if (resyncing_ && !resumed) {
      for (auto it = known_.begin(); it != known_.end();) {
        if (seen_.count(it->first) == 0) {
          if (!Line("DELETE", json_ ? kGoneJson : kGoneHuman, it->second)) {
            return false;
          }
          it = known_.erase(it);
        } else {
          ++it;
        }
      }
    }
    resyncing_ = false;
    seen_.clear();
    // Never on stdout: a script reading it sees only events.
    err_ << (resumed ? "-- resumed, watching for changes"
                     : "-- synced, watching for changes")
         << std::endl;
    return true;
  }

  bool Line(const std::string& type, const std::string& reason,
            const Entry& entry) {
    if (json_) {
      return WriteLine(
          out_, absl::StrCat("{\"type\":\"", type, "\",\"reason\":\"", reason,
                             "\",", EntryJsonFields(entry), "}"));
    }
    return WriteLine(out_, absl::StrCat(type, " ", entry.name, " ",
                                        entry.address, " (", reason, ")"));
  }

  std::ostream& out_;
  std::ostream& err_;
  const bool json_;
  std::map<std::string, Entry> known_;  // By NameKey: what the user was told.
  bool resyncing_ = false;
  std::set<std::string> seen_;  // Keys replayed by the current resync.
};

}  // namespace

int RunWatch(const CommandContext& context) {
  const ChatctlInvocation& invocation = context.invocation;
  const std::string prefix = invocation.args.empty() ? "" : invocation.args[0];
  if (absl::Status status = registry::ValidatePrefix(prefix); !status.ok()) {
    return PrintUsageError(context.err, std::string(status.message()));
  }
  Interrupt* const interrupt = invocation.interrupt;  // May be null.
  std::unique_ptr<registry::RegistryClient> client = ConnectRegistry(context);
  EventPrinter printer(context.out, context.err, invocation.json);
  bool established = false;  // Some stream has delivered an event.
  // Before the first event, each registry is tried once before giving up.
  const size_t registries =
      registry::SplitRegistryAddresses(invocation.registry).size();
  size_t unreachable_before_start = 0;
  Millis backoff = invocation.reconnect_initial;

  // Where a broken watch resumes; 0 (a snapshot) until the first SYNCED.
  registry::WatchResumePoint resume;

  while (true) {
    resume.Opened();
    std::unique_ptr<registry::WatchStream> stream =
        client->Watch(prefix, resume.revision());
    if (interrupt != nullptr) {
      registry::WatchStream* raw = stream.get();
      interrupt->SetHook([raw] { raw->Cancel(); });
    }
    printer.BeginStream(/*resync=*/established);
    bool delivered = false;
    bool output_ok = true;
    WatchEvent event;
    while (stream->Next(&event)) {
      resume.Saw(event);
      if (!delivered) {
        delivered = true;
        established = true;
        backoff = invocation.reconnect_initial;
      }
      if (output_ok && !printer.Print(event)) {
        output_ok = false;
        stream->Cancel();  // Then drain what is in flight.
      }
    }
    if (interrupt != nullptr) interrupt->ClearHook();
    const absl::Status status = stream->Finish();
    const std::string stream_target = stream->target();
    stream.reset();

    if (!output_ok) {
      context.err << "chatctl: cannot write the output any more; stopping"
                  << std::endl;
      return kExitError;
    }
    if (interrupt != nullptr && interrupt->triggered()) return kExitOk;
    // A registry that never answered is an error like for any command.
    if (!established && status.ok()) {
      return PrintError(context.err,
                        absl::UnknownError("the registry ended the watch "
                                           "before sending anything"));
    }
    if (!established && registry::IsUnreachable(status) &&
        ++unreachable_before_start < registries) {
      continue;  // Finish() moved the client on: the next registry, at once.
    }
    if (!established && registry::IsUnreachable(status) && registries > 1) {
      return PrintError(context.err,
                        absl::UnavailableError(absl::StrCat(
                            "no registry reachable (", client->target(), ")")));
    }
    if (!established || !WorthReconnecting(status)) {
      return PrintError(context.err, status);
    }
    if (delivered) {
      context.err << "chatctl: the watch on the registry at " << stream_target
                  << " broke ("
                  << (status.ok() ? std::string("the registry ended it")
                                  : OneLine(status.message()))
                  << "); reconnecting" << std::endl;
    }
    // Finish() moved the client on when this registry went away.
    if (WaitToReconnect(*client->current_channel(), backoff, interrupt)) {
      return kExitOk;
    }
    backoff = std::min(backoff * 2, invocation.reconnect_max);
  }
}

}  // namespace chat::chatctl
