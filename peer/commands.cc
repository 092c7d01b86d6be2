#include "peer/commands.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "peer/history.h"

namespace chat::peer {
namespace {

// Splits "word rest of line" at the first run of spaces.
std::pair<std::string, std::string> FirstWord(const std::string& text) {
  size_t space = text.find_first_of(" \t");
  if (space == std::string::npos) return {text, ""};
  size_t rest = text.find_first_not_of(" \t", space);
  return {text.substr(0, space),
          rest == std::string::npos ? "" : text.substr(rest)};
}

Command Make(Command::Kind kind, std::string name = "", std::string text = "") {
  Command command;
  command.kind = kind;
  command.name = std::move(name);
  command.text = std::move(text);
  return command;
}

Command Error(const std::string& text) {
  return Make(Command::Kind::kError, "", text);
}

Command SendTo(const std::string& name, const std::string& text,
               const char* usage) {
  if (name.empty() || text.empty())
    return Error(absl::StrCat("usage: ", usage));
  return Make(Command::Kind::kSend, name, text);
}

bool AllDigits(const std::string& word) {
  return !word.empty() &&
         std::all_of(word.begin(), word.end(),
                     [](unsigned char c) { return absl::ascii_isdigit(c); });
}

// "/history [NAME] [N]": a number alone is N (with the partner).
Command ParseHistory(const std::string& rest, const std::string& partner) {
  constexpr char kUsage[] = "usage: /history [NAME] [N]";
  auto [first, after] = FirstWord(rest);
  auto [second, extra] = FirstWord(after);
  if (!extra.empty()) return Error(kUsage);
  std::string name = partner;
  std::string number;
  if (AllDigits(first) && second.empty()) {
    number = first;
  } else {
    if (!first.empty()) name = first;
    number = second;
  }
  if (name.empty()) {
    return Error("no partner yet: /history NAME [N], or /chat NAME first");
  }
  int count = kHistoryDefault;
  if (!number.empty()) {
    if (!AllDigits(number) || !absl::SimpleAtoi(number, &count) || count < 1 ||
        count > kHistoryMost) {
      return Error(absl::StrCat("/history shows 1 to ", kHistoryMost,
                                " messages, not ", number));
    }
  }
  Command command = Make(Command::Kind::kHistory, name);
  command.count = count;
  return command;
}

// The words of `text`, split at runs of spaces.
std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> words;
  std::string rest = text;
  while (!rest.empty()) {
    auto [word, after] = FirstWord(rest);
    if (!word.empty()) words.push_back(word);
    rest = after;
  }
  return words;
}

// "/group VERB GROUP [NAMES]", or "/group GROUP" (chat with it).
Command ParseGroup(const std::string& rest) {
  constexpr char kUsage[] =
      "usage: /group create|add|remove GROUP NAME..., /group owner GROUP "
      "NAME, /group leave GROUP, or /group GROUP";
  std::vector<std::string> words = Words(rest);
  if (words.empty()) return Error(kUsage);
  const std::string verb = absl::AsciiStrToLower(words[0]);
  auto group = [&](size_t i) {
    std::string label = words[i];
    // "#team" and "team" are the same group.
    if (IsGroupTarget(label)) label.erase(0, 1);
    return label;
  };
  Command command = Make(Command::Kind::kGroup);
  command.verb = verb;
  if (verb == "create" || verb == "add" || verb == "remove") {
    if (words.size() < 2 || (verb != "create" && words.size() < 3)) {
      return Error(absl::StrCat(
          "usage: /group ", verb,
          verb == "create" ? " GROUP [NAME...]" : " GROUP NAME..."));
    }
    command.name = group(1);
    command.names.assign(words.begin() + 2, words.end());
    return command;
  }
  if (verb == "owner") {
    if (words.size() != 3) return Error("usage: /group owner GROUP NAME");
    command.name = group(1);
    command.names = {words[2]};
    return command;
  }
  if (verb == "leave") {
    if (words.size() != 2) return Error("usage: /group leave GROUP");
    command.name = group(1);
    return command;
  }
  if (words.size() != 1) return Error(kUsage);
  command.verb = "chat";
  command.name = group(0);
  return command;
}

}  // namespace

Command ParseLine(const std::string& raw_line, const std::string& partner) {
  std::string line = raw_line;
  // Lines from a Windows terminal or file end in "\r".
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (absl::StripAsciiWhitespace(line).empty()) return Command();

  if (line.front() == '@') {
    auto [name, text] = FirstWord(line.substr(1));
    return SendTo(name, text, "@NAME MESSAGE");
  }
  if (line.front() == '#') {
    auto [group, text] = FirstWord(line);
    if (group.size() < 2) return Error("usage: #GROUP MESSAGE");
    return SendTo(group, text, "#GROUP MESSAGE");
  }
  if (line.front() == '/' && !absl::StartsWith(line, "//")) {
    auto [word, rest] = FirstWord(line);
    std::string command = absl::AsciiStrToLower(word);
    if (command == "/msg") {
      auto [name, text] = FirstWord(rest);
      return SendTo(name, text, "/msg NAME MESSAGE");
    }
    if (command == "/chat") {
      auto [name, extra] = FirstWord(rest);
      if (name.empty() || !extra.empty()) return Error("usage: /chat NAME");
      return Make(Command::Kind::kChat, name);
    }
    if (command == "/whoami") return Make(Command::Kind::kWhoami);
    if (command == "/verify" || command == "/trust") {
      auto [name, extra] = FirstWord(rest);
      if (name.empty() || !extra.empty()) {
        return Error(absl::StrCat("usage: ", command, " NAME"));
      }
      return Make(
          command == "/verify" ? Command::Kind::kVerify : Command::Kind::kTrust,
          name);
    }
    if (command == "/peers" || command == "/who") {
      const std::string more =
          absl::AsciiStrToLower(absl::StripAsciiWhitespace(rest));
      if (!more.empty() && more != "more") {
        return Error(absl::StrCat("usage: ", command, " [more]"));
      }
      return Make(Command::Kind::kPeers, "", more);
    }
    if (command == "/follow" || command == "/unfollow") {
      auto [name, extra] = FirstWord(rest);
      if (!extra.empty() || (command == "/unfollow" && name.empty())) {
        return Error(absl::StrCat("usage: ", command,
                                  command == "/follow" ? " [NAME]" : " NAME"));
      }
      return Make(command == "/follow" ? Command::Kind::kFollow
                                       : Command::Kind::kUnfollow,
                  name);
    }
    if (command == "/history") return ParseHistory(rest, partner);
    if (command == "/forget") {
      auto [name, extra] = FirstWord(rest);
      if (name.empty() || !extra.empty()) return Error("usage: /forget NAME");
      return Make(Command::Kind::kForget, name);
    }
    if (command == "/group") return ParseGroup(rest);
    if (command == "/groups") {
      if (!absl::StripAsciiWhitespace(rest).empty()) {
        return Error("usage: /groups");
      }
      return Make(Command::Kind::kGroups);
    }
    if (command == "/help" || command == "/?") {
      return Make(Command::Kind::kHelp);
    }
    if (command == "/quit" || command == "/exit") {
      return Make(Command::Kind::kQuit);
    }
    return Error(absl::StrCat("unknown command ", word, " (try /help)"));
  }
  if (absl::StartsWith(line, "//")) line = line.substr(1);
  if (partner.empty()) {
    return Error(
        "no partner yet: write @NAME MESSAGE, or /chat NAME first (/help)");
  }
  Command command = Make(Command::Kind::kSend, partner, line);
  command.to_partner = true;
  return command;
}

const std::vector<std::string>& CommandWords() {
  static const auto* const words = new std::vector<std::string>{
      "/msg",    "/chat",   "/peers", "/follow",  "/unfollow",
      "/whoami", "/verify", "/trust", "/history", "/forget",
      "/group",  "/groups", "/help",  "/quit"};
  return *words;
}

std::string HelpText() {
  return "@NAME MESSAGE      send MESSAGE to NAME\n"
         "/msg NAME MESSAGE  the same\n"
         "/chat NAME         send plain lines to NAME from now on\n"
         "/peers             who is online now, one page; /peers more: the "
         "next\n"
         "/follow NAME       hear when NAME comes and goes (/follow: whom you "
         "follow)\n"
         "/unfollow NAME     no longer (even after you talk with NAME)\n"
         "/whoami            your name and your key's fingerprint\n"
         "/verify NAME       fingerprints to compare with NAME out of band\n"
         "/trust NAME        accept the key the registry lists for NAME now\n"
         "/history [NAME] [N]  the last N messages with NAME (default: your "
         "partner, 20)\n"
         "/forget NAME       erase your history with NAME\n"
         "#GROUP MESSAGE     send MESSAGE to everyone in GROUP (a group goes "
         "where a NAME does, as #GROUP)\n"
         "/group create GROUP NAME...  a group of you (its owner) and NAMEs\n"
         "/group add GROUP NAME...     add members (/group remove: take "
         "them out)\n"
         "/group owner GROUP NAME      hand GROUP over to NAME\n"
         "/group leave GROUP           leave it (the last member ends it)\n"
         "/group GROUP       send plain lines to GROUP from now on\n"
         "/groups            your groups, their members and fingerprints\n"
         "/help              this help\n"
         "/quit              leave (also Ctrl-D)\n"
         "//text             send a line that starts with '/'\n";
}

std::string WhoamiText(const std::string& own_name, const PublicKey& own_key) {
  return absl::StrCat("you are ", own_name,
                      "; your key's fingerprint: ", Fingerprint(own_key));
}

std::string VerifyText(const std::string& own_name, const PublicKey& own_key,
                       const std::string& name, const KeyView& view) {
  std::string text =
      absl::StrCat("yours (", own_name, "):  ", Fingerprint(own_key), "\n");
  if (view.pinned.has_value()) {
    absl::StrAppend(&text, name, ", pinned:  ", Fingerprint(*view.pinned),
                    "\n");
  } else {
    absl::StrAppend(&text, name, ", pinned:  none yet\n");
  }
  if (!view.listed.has_value()) {
    absl::StrAppend(&text, name,
                    ", in the registry now:  unknown (registry unreachable)\n");
  } else if (!view.listed->has_value()) {
    absl::StrAppend(&text, name,
                    ", in the registry now:  no key (messages are plain, "
                    "shown unverified)\n");
  } else {
    absl::StrAppend(&text, name,
                    ", in the registry now:  ", Fingerprint(**view.listed),
                    "\n");
  }
  if (view.changed) {
    absl::StrAppend(&text, name,
                    "'s key changed: nothing goes to or comes from ", name,
                    " until you check with ", name, ", then /trust ", name);
  } else if (view.pinned.has_value() ||
             (view.listed.has_value() && view.listed->has_value())) {
    absl::StrAppend(&text, "compare both with ", name,
                    " out of band (in person, by phone)");
  }
  return text;
}

std::string TrustText(const std::string& name, const KeyView& view) {
  if (!view.pinned.has_value()) {
    return absl::StrCat(name,
                        " has no key now; its messages are shown unverified");
  }
  return absl::StrCat("trusting ", name, "'s key ", Fingerprint(*view.pinned),
                      "; what waited for ", name, " goes now");
}

}  // namespace chat::peer
