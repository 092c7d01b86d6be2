#include "peer/console.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// libedit's readline-compatible interface (BSD licence).
#include <editline/readline.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "peer/history.h"
#include "peer/peer.h"
#include "peer/plain_words.h"
#include "peer/transport.h"
#include "registry/names.h"

namespace chat::peer {
namespace {

constexpr size_t kMaxLineBytes = 64 * 1024;

// readline's callbacks carry no user data, so the one console that runs the
// line editor is reachable through this pointer while it does.
Console* g_editing_console = nullptr;
std::vector<std::string> g_completion_words;

char* CompletionGenerator(const char* text, int state) {
  static size_t next;
  if (state == 0) next = 0;
  const size_t length = std::strlen(text);
  while (next < g_completion_words.size()) {
    const std::string& word = g_completion_words[next++];
    if (word.compare(0, length, text) == 0) return strdup(word.c_str());
  }
  return nullptr;
}

char** Complete(const char* text, int /*start*/, int /*end*/) {
  rl_attempted_completion_over = 1;  // No file-name completion.
  return rl_completion_matches(text, CompletionGenerator);
}

}  // namespace

Console::Console(ConsoleOptions options, int input_fd, int output_fd)
    : options_(std::move(options)),
      style_{options_.color, options_.own_name, UserTimeZone()},
      input_fd_(input_fd),
      output_fd_(output_fd) {
  if (pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    std::perror("pipe2");
    std::abort();  // Out of file descriptors at start-up: nothing to save.
  }
}

Console::~Console() {
  close(wake_pipe_[0]);
  close(wake_pipe_[1]);
}

void Console::OnEvent(const PeerEvent& event) {
  {
    absl::MutexLock lock(&mu_);
    if (holding_ && event.kind != EventKind::kReady &&
        event.kind != EventKind::kSummary) {
      held_.push_back(event);
      return;
    }
  }
  Show(event);
}

void Console::ReleaseHeld() {
  while (true) {
    std::vector<PeerEvent> events;
    {
      absl::MutexLock lock(&mu_);
      // Still holding while the earlier ones are shown, so an event that
      // comes meanwhile queues behind them instead of overtaking them.
      if (held_.empty()) {
        holding_ = false;
        return;
      }
      events.swap(held_);
    }
    for (const PeerEvent& event : events) Show(event);
  }
}

void Console::Show(const PeerEvent& event) {
  std::string text =
      options_.json ? FormatJson(event) : FormatText(event, style_);
  if (text.empty()) return;  // Nothing to say (a direct delivery, in text).
  {
    absl::MutexLock lock(&mu_);
    if (editing_) {
      queued_.push_back(std::move(text));
      char byte = 'e';
      (void)!write(wake_pipe_[1], &byte, 1);
      return;
    }
  }
  Write(text);
}

void Console::Write(const std::string& text) {
  // One lock and whole lines, so lines from several threads never mix.
  absl::MutexLock lock(&write_mu_);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(output_fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // Output closed; nothing sensible left to do.
    done += static_cast<size_t>(n);
  }
}

void Console::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  char byte = 's';
  (void)!write(wake_pipe_[1], &byte, 1);
  absl::MutexLock lock(&mu_);
  if (peer_ != nullptr) peer_->Interrupt();
}

void Console::Run(Peer* peer) {
  bool stopping = false;
  {
    absl::MutexLock lock(&mu_);
    peer_ = peer;
    stopping = stopping_;
  }
  active_peer_ = peer;
  // Whatever way Run() ends, what was held is shown: the peer has noted
  // those messages shown.
  if (stopping || (!options_.initial_partner.empty() && !WaitForPartner())) {
    ReleaseHeld();
    return;
  }
  ReleaseHeld();
  if (options_.line_editing) {
    RunLineEditing();
  } else {
    RunPlain();
  }
}

bool Console::WaitForPartner() {
  const std::string& name = options_.initial_partner;
  if (!active_peer_->IsOnline(name)) {
    Show(InfoEvent(absl::StrCat("Waiting for ", name, " to come online...")));
    // What came meanwhile (late messages) need not wait for the partner.
    ReleaseHeld();
    if (!active_peer_->WaitUntilOnline(name)) return false;
  }
  partner_ = name;
  Show(MakeEvent(EventKind::kPartner, name));
  return true;
}

bool Console::HandleLine(const std::string& line) {
  Command command = ParseLine(line, partner_);
  switch (command.kind) {
    case Command::Kind::kNothing:
      return true;
    case Command::Kind::kQuit:
      return false;
    case Command::Kind::kHelp:
      Show(InfoEvent(HelpText()));
      return true;
    case Command::Kind::kError:
      Show(ErrorEvent(command.text));
      return true;
    case Command::Kind::kChat:
      if (IsGroupTarget(command.name)) {
        ChatWithGroup(command.name);
        return true;
      }
      {
        absl::Status valid = registry::ValidateName(command.name);
        if (!valid.ok()) {
          Show(ErrorEvent(std::string(valid.message())));
          return true;
        }
        // Whom we chat with we follow; a full set only costs the notices.
        absl::Status followed = active_peer_->Follow(command.name);
        if (!followed.ok() &&
            followed.code() == absl::StatusCode::kResourceExhausted) {
          Show(InfoEvent(absl::StrCat("not following ", command.name, ": ",
                                      followed.message())));
        }
        partner_ = command.name;
        // Where the conversation stood, then who the partner is.
        ShowHistory(command.name, kHistoryPreview, /*preview=*/true);
        Show(MakeEvent(EventKind::kPartner, command.name));
        // Switched to it: what it wrote so far is read (read receipts).
        active_peer_->MarkRead(command.name);
        return true;
      }
    case Command::Kind::kHistory:
    case Command::Kind::kForget: {
      absl::Status valid = IsGroupTarget(command.name)
                               ? absl::OkStatus()
                               : registry::ValidateName(command.name);
      if (!valid.ok()) {
        Show(ErrorEvent(std::string(valid.message())));
        return true;
      }
      if (command.kind == Command::Kind::kHistory) {
        ShowHistory(command.name, command.count, /*preview=*/false);
      } else {
        Forget(command.name);
      }
      return true;
    }
    case Command::Kind::kWhoami:
      Show(InfoEvent(
          WhoamiText(active_peer_->name(), active_peer_->public_key())));
      return true;
    case Command::Kind::kVerify:
    case Command::Kind::kTrust: {
      absl::Status valid = registry::ValidateName(command.name);
      if (!valid.ok()) {
        Show(ErrorEvent(std::string(valid.message())));
        return true;
      }
      if (command.kind == Command::Kind::kVerify) {
        Show(InfoEvent(VerifyText(active_peer_->name(),
                                  active_peer_->public_key(), command.name,
                                  active_peer_->Verify(command.name))));
        return true;
      }
      absl::StatusOr<KeyView> trusted = active_peer_->Trust(command.name);
      if (!trusted.ok()) {
        PeerEvent error = ErrorEvent(std::string(trusted.status().message()));
        error.detail = StatusDetail(trusted.status());
        Show(error);
      } else {
        Show(InfoEvent(TrustText(command.name, *trusted)));
      }
      return true;
    }
    case Command::Kind::kPeers:
      ListPeers(command.text == "more");
      return true;
    case Command::Kind::kFollow:
    case Command::Kind::kUnfollow:
      Follow(command);
      return true;
    case Command::Kind::kGroup:
      if (command.verb == "chat") {
        ChatWithGroup(command.name);
      } else {
        ChangeGroup(command);
      }
      return true;
    case Command::Kind::kGroups:
      Show(InfoEvent(GroupsText(active_peer_->Groups())));
      return true;
    case Command::Kind::kSend: {
      auto id =
          active_peer_->Send(command.name, command.text, command.to_partner);
      if (!id.ok()) {
        Show(ErrorEvent(std::string(id.status().message())));
      } else {
        // Typed in the conversation (a group's too): what was written in
        // it so far is read.
        active_peer_->MarkRead(command.name);
      }
      return true;
    }
  }
  return true;
}

void Console::ListPeers(bool more) {
  if (!more || peers_page_ == 0) {
    if (more) {
      Show(InfoEvent("no more pages; /peers starts again"));
      return;
    }
    peers_token_.clear();
    peers_page_ = 0;
  }
  absl::StatusOr<registry::ListPage> page =
      active_peer_->ListPeers(peers_token_, options_.page_size);
  if (!page.ok()) {
    Show(RegistryErrorEvent(page.status(), "list who is online"));
    return;
  }
  PeerEvent event = MakeEvent(EventKind::kPeers);
  event.peers = std::move(page->entries);
  event.page = ++peers_page_;
  event.more = !page->next_page_token.empty();
  // The count includes us.
  event.count = page->total_size > 0 ? page->total_size - 1 : -1;
  peers_token_ = std::move(page->next_page_token);
  if (!event.more) peers_page_ = 0;
  Show(event);
}

void Console::Follow(const Command& command) {
  if (command.kind == Command::Kind::kUnfollow) {
    const bool was = active_peer_->Unfollow(command.name);
    Show(InfoEvent(was ? absl::StrCat("no longer following ", command.name)
                       : absl::StrCat("you were not following ", command.name,
                                      "; talking with ", command.name,
                                      " will not follow them now either")));
    return;
  }
  if (command.name.empty()) {
    std::vector<std::string> names = active_peer_->Followed();
    std::vector<registry::Entry> online = active_peer_->FollowedOnline();
    if (names.empty()) {
      Show(InfoEvent("you follow nobody yet: /follow NAME, or talk with them"));
      return;
    }
    // Bounded like a page of /peers: the first names, then a count.
    constexpr size_t kShown = 50;
    absl::flat_hash_set<std::string> here;
    for (const registry::Entry& entry : online) {
      here.insert(registry::NameKey(entry.name));
    }
    std::vector<std::string> shown;
    for (size_t i = 0; i < names.size() && i < kShown; ++i) {
      shown.push_back(here.contains(registry::NameKey(names[i]))
                          ? absl::StrCat(names[i], " (online)")
                          : names[i]);
    }
    std::string text = absl::StrCat("you follow ", names.size(), ": ",
                                    absl::StrJoin(shown, ", "));
    if (names.size() > kShown) {
      absl::StrAppend(&text, " and ", names.size() - kShown, " more");
    }
    Show(InfoEvent(text));
    return;
  }
  absl::Status followed = active_peer_->Follow(command.name);
  if (!followed.ok()) {
    Show(ErrorEvent(std::string(followed.message())));
    return;
  }
  Show(
      InfoEvent(absl::StrCat("following ", command.name, ": you will see when ",
                             command.name, " comes and goes")));
}

void Console::ChatWithGroup(const std::string& target) {
  absl::StatusOr<GroupTarget> group = active_peer_->FindGroup(target);
  if (!group.ok()) {
    Show(ErrorEvent(std::string(group.status().message())));
    return;
  }
  partner_ = absl::StrCat("#", group->label);
  ShowHistory(partner_, kHistoryPreview, /*preview=*/true);
  Show(MakeEvent(EventKind::kPartner, partner_));
  // Switched to it: what was written in it so far is read.
  active_peer_->MarkRead(partner_);
}

void Console::ChangeGroup(const Command& command) {
  absl::StatusOr<std::string> changed =
      active_peer_->ChangeGroup(command.verb, command.name, command.names);
  if (!changed.ok()) {
    PeerEvent error = ErrorEvent(std::string(changed.status().message()));
    error.detail = StatusDetail(changed.status());
    Show(error);
    return;
  }
  Show(InfoEvent(*changed));
}

std::string GroupsText(const std::vector<GroupView>& groups) {
  if (groups.empty()) {
    return "you are in no group yet: /group create GROUP NAME...";
  }
  std::string text;
  for (const GroupView& group : groups) {
    if (!text.empty()) text += "\n";
    absl::StrAppend(&text, "#", PrintableName(group.label));
    if (group.state.display_name != group.label) {
      absl::StrAppend(&text, " (", PrintableName(group.state.display_name),
                      ")");
    }
    if (group.state.ended) {
      absl::StrAppend(&text, ": ended");
    } else if (!group.member) {
      absl::StrAppend(&text, ": you are not in it");
    }
    absl::StrAppend(&text, ", version ", group.state.version);
    for (const GroupMemberView& member : group.members) {
      absl::StrAppend(&text, "\n  ", PrintableName(member.name),
                      member.you ? " (you)" : "",
                      member.owner ? " (owner)" : "", "  ", member.fingerprint);
      if (member.key_differs) {
        absl::StrAppend(&text, "  ! not the key you trust for ",
                        PrintableName(member.name), ": /verify ",
                        PrintableName(member.name));
      }
    }
  }
  return text;
}

void Console::ShowHistory(const std::string& name, int count, bool preview) {
  absl::StatusOr<HistoryPage> page = active_peer_->History(name, count);
  if (!page.ok()) {
    PeerEvent error =
        ErrorEvent(absl::StrCat("cannot read the history with ", name, " now"));
    error.detail = std::string(page.status().message());
    Show(error);
    return;
  }
  if (preview && page->entries.empty()) return;  // Nothing to recall.
  PeerEvent event = MakeEvent(EventKind::kHistory, name);
  event.history = std::move(page->entries);
  event.count = page->total;
  event.preview = preview;
  Show(event);
}

void Console::Forget(const std::string& name) {
  absl::StatusOr<int64_t> erased = active_peer_->ForgetHistory(name);
  if (!erased.ok()) {
    PeerEvent error = ErrorEvent(absl::StrCat(
        "could not erase the history with ", name, "; it stays as it was"));
    error.detail = std::string(erased.status().message());
    Show(error);
    return;
  }
  Show(InfoEvent(*erased == 0
                     ? absl::StrCat("no history with ", name, " to erase")
                     : absl::StrCat("erased ", *erased,
                                    *erased == 1 ? " message" : " messages",
                                    " of your history with ", name,
                                    "; what is still on its way stays")));
}

void Console::RunPlain() {
  std::string buffer;
  char chunk[4096];
  bool discarding = false;  // Inside an over-long line.
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    pollfd fds[2] = {{input_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) {
      char drain[64];
      while (read(wake_pipe_[0], drain, sizeof(drain)) > 0) {
      }
      continue;
    }
    ssize_t n = read(input_fd_, chunk, sizeof(chunk));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      // End of input: a last line without a newline still counts.
      if (!buffer.empty() && !discarding) HandleLine(buffer);
      return;
    }
    buffer.append(chunk, static_cast<size_t>(n));
    size_t newline;
    while ((newline = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      if (discarding) {
        discarding = false;
        continue;
      }
      if (!HandleLine(line)) return;
    }
    if (buffer.size() > kMaxLineBytes) {
      Show(ErrorEvent(
          absl::StrCat("line longer than ", kMaxLineBytes, " bytes ignored")));
      buffer.clear();
      discarding = true;
    }
  }
}

void Console::FlushQueued() {
  std::deque<std::string> lines;
  {
    absl::MutexLock lock(&mu_);
    lines.swap(queued_);
  }
  if (lines.empty()) return;
  // Clear the prompt line, print, then redraw prompt and typed text.
  Write("\r\033[K");
  for (const std::string& text : lines) Write(text);
  rl_forced_update_display();
}

void Console::HandleEditedLine(char* raw) {
  if (raw == nullptr) {  // Ctrl-D on an empty line.
    quit_requested_ = true;
    return;
  }
  std::string line(raw);
  std::free(raw);
  if (!line.empty()) add_history(line.c_str());
  submitted_ = line;
  if (!HandleLine(line)) quit_requested_ = true;
}

void Console::EraseSubmittedLine(const std::string& line) {
  // The typed line stays on screen after Enter; the delivered message is
  // echoed in the chat's own format instead, as the lab's peer did. Count
  // the rows it took: one column per code point (continuation bytes take
  // none). Undercounting leaves a line; overcounting would erase chat.
  int rows = 0;
  int columns = 0;
  rl_get_screen_size(&rows, &columns);
  size_t width = prompt_.size();
  for (unsigned char c : line) width += (c & 0xC0) != 0x80 ? 1 : 0;
  size_t used_rows = columns > 0 ? width / static_cast<size_t>(columns) + 1 : 1;
  std::string erase = "\r\033[K";
  for (size_t i = 0; i < used_rows; ++i) erase += "\033[1A\033[2K";
  Write(erase);
}

void Console::InstallLineHandler() {
  rl_callback_handler_install(prompt_.c_str(), [](char* raw) {
    g_editing_console->HandleEditedLine(raw);
  });
}

void Console::RunLineEditing() {
  prompt_ = absl::StrCat(options_.own_name, "> ");
  g_editing_console = this;
  rl_attempted_completion_function = Complete;
  // '@' belongs to the word, so "@b<Tab>" completes to "@bob".
  static char word_breaks[] = " \t\n";
  rl_basic_word_break_characters = word_breaks;
  rl_completer_word_break_characters = word_breaks;
  using_history();
  quit_requested_ = false;
  InstallLineHandler();
  {
    absl::MutexLock lock(&mu_);
    editing_ = true;
  }
  while (!quit_requested_) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    // Words for Tab: commands, then @name and name for everyone followed
    // (a bounded set, unlike the registry).
    g_completion_words = CommandWords();
    for (const std::string& name : active_peer_->CompletionNames()) {
      g_completion_words.push_back("@" + name);
      g_completion_words.push_back(name);
    }
    for (const std::string& label : active_peer_->GroupLabelsForCompletion()) {
      g_completion_words.push_back("#" + label);
    }
    pollfd fds[2] = {{input_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) {
      char drain[64];
      while (read(wake_pipe_[0], drain, sizeof(drain)) > 0) {
      }
      FlushQueued();
    }
    if (fds[0].revents != 0) {
      rl_callback_read_char();
      // Only now is libedit done with the line it handed over.
      if (submitted_.has_value()) {
        // Reinstalling the handler is libedit's way to forget the finished
        // line (rl_replace_line("") is a no-op there) and draw a prompt.
        rl_callback_handler_remove();
        EraseSubmittedLine(*submitted_);
        submitted_.reset();
        InstallLineHandler();
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    editing_ = false;
  }
  FlushQueued();
  rl_callback_handler_remove();
  Write("\n");
  g_editing_console = nullptr;
}

}  // namespace chat::peer
