// The peer's front end: reads lines (with line editing, history and Tab
// completion on a terminal; plain lines otherwise), turns them into sends
// and commands, and prints every event without garbling a half-typed line.

#ifndef CHAT_PEER_CONSOLE_H_
#define CHAT_PEER_CONSOLE_H_

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "peer/commands.h"
#include "peer/events.h"
#include "peer/format.h"

namespace chat::peer {

class Peer;
struct GroupView;

// What /groups prints: each group with its members and the fingerprint of
// the key the group lists for each.
std::string GroupsText(const std::vector<GroupView>& groups);

struct ConsoleOptions {
  bool json = false;          // One JSON object per event instead of text.
  bool color = false;         // ANSI colours in text mode.
  bool line_editing = false;  // libedit on a terminal.
  std::string own_name;
  std::string initial_partner;  // --peer: wait for this peer, then chat.
  int page_size = 50;           // Names per page of /peers.
};

// Thread-safe: OnEvent() and Stop() may be called from any thread; Run()
// from one.
class Console final : public EventSink {
 public:
  // Reads from `input_fd`, writes to `output_fd` (not owned).
  Console(ConsoleOptions options, int input_fd, int output_fd);
  ~Console() override;

  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  // Shows `event`. Until Run() has shown the partner line (or found there
  // is none), the peer's events other than kReady and kSummary are held
  // and then shown in the order they came, so start-up reads: who you are,
  // who is online, the partner line, then late messages.
  void OnEvent(const PeerEvent& event) override;

  // Serves the user until /quit, the end of input, or Stop(). `peer` is not
  // owned and must outlive the call.
  void Run(Peer* peer);

  // Makes Run() return soon. Safe from a signal-handling thread.
  void Stop();

  // For the line editor's callback only: one finished line (owned, from
  // malloc), or null at the end of input.
  void HandleEditedLine(char* raw);

 private:
  // Handles one line; returns false when the user asked to quit.
  bool HandleLine(const std::string& line);
  void Show(const PeerEvent& event);
  void Write(const std::string& text);
  void RunPlain();
  void RunLineEditing();
  // Prints events queued for the line editor's thread.
  void FlushQueued();
  void InstallLineHandler();
  // Removes a line the user just submitted from the screen.
  void EraseSubmittedLine(const std::string& line);
  bool WaitForPartner();
  // Shows what OnEvent() held during start-up and stops holding.
  void ReleaseHeld() ABSL_LOCKS_EXCLUDED(mu_);
  // /peers (the first page) and /peers more (the next one).
  void ListPeers(bool more);
  // /follow NAME, /follow (who), /unfollow NAME.
  void Follow(const Command& command);
  // /history NAME N, and /chat NAME's first lines (`preview`).
  void ShowHistory(const std::string& name, int count, bool preview);
  // /forget NAME.
  void Forget(const std::string& name);
  // /chat #team and /group team: the group becomes the partner.
  void ChatWithGroup(const std::string& target);
  // /group create|add|remove|owner|leave.
  void ChangeGroup(const Command& command);

  const ConsoleOptions options_;
  const TextStyle style_;
  const int input_fd_;
  const int output_fd_;
  int wake_pipe_[2] = {-1, -1};  // Stop() and events wake the input loop.
  Peer* active_peer_ = nullptr;  // Used only by Run()'s thread.
  std::string partner_;          // Used only by Run()'s thread.
  bool quit_requested_ = false;  // Used only by Run()'s thread.
  std::string prompt_;           // Used only by Run()'s thread.
  // Where /peers more goes on (Run()'s thread only): the registry's token
  // for the next page and the number of the last page shown (0: none, or
  // the last page was shown).
  std::string peers_token_;
  int peers_page_ = 0;
  // The line just submitted, until it is erased. Run()'s thread only.
  std::optional<std::string> submitted_;

  absl::Mutex write_mu_;  // Keeps lines from several threads whole.

  absl::Mutex mu_;
  Peer* peer_ ABSL_GUARDED_BY(mu_) = nullptr;  // Set while Run() runs.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool editing_ ABSL_GUARDED_BY(mu_) = false;  // Events wait in queued_.
  std::deque<std::string> queued_ ABSL_GUARDED_BY(mu_);
  bool holding_ ABSL_GUARDED_BY(mu_) = true;  // Start-up: see OnEvent().
  std::vector<PeerEvent> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::peer

#endif  // CHAT_PEER_CONSOLE_H_
