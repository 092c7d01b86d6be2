#include "peer/format.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/json.h"
#include "peer/plain_words.h"

namespace chat::peer {
namespace {

// The lab's colours: bold cyan for others, bold green for us, bold blue for
// the peer's own notices, and red for trouble.
constexpr char kOthers[] = "\033[1;36m";
constexpr char kOwn[] = "\033[1;32m";
constexpr char kNotice[] = "\033[1;94m";
constexpr char kTrouble[] = "\033[1;31m";
constexpr char kReset[] = "\033[0m";

std::string Paint(const TextStyle& style, const char* colour,
                  const std::string& text) {
  if (!style.color) return text;
  return absl::StrCat(colour, text, kReset);
}

// When the sender sent it if known, else when it arrived.
absl::Time MessageTime(const ChatMessage& message) {
  if (message.sent_at != absl::InfinitePast()) return message.sent_at;
  return message.received_at;
}

std::string Clock(const TextStyle& style, absl::Time t) {
  return absl::FormatTime("[%H:%M]", t, style.time_zone);
}

const char* StatusName(SendStatus status) {
  switch (status) {
    case SendStatus::kSent:
      return "sent";
    case SendStatus::kStored:
      return "stored";
    case SendStatus::kDelivered:
      return "delivered";
    case SendStatus::kRead:
      return "read";
    case SendStatus::kExpired:
      return "expired";
    case SendStatus::kFailed:
      return "failed";
  }
  return "failed";
}

// How many names a line shows at most; the rest are counted.
constexpr size_t kNamesShown = 10;

// The names of `peers` but ours, "bob, carol (static)", the first `most`
// of them, then "and 3 more".
std::string NameList(const std::vector<registry::Entry>& peers,
                     const std::string& own_name, size_t most) {
  std::vector<std::string> names;
  size_t others = 0;
  for (const registry::Entry& entry : peers) {
    if (entry.name == own_name) continue;
    if (names.size() == most) {
      ++others;
      continue;
    }
    const std::string name = PrintableName(entry.name);
    names.push_back(entry.is_static ? absl::StrCat(name, " (static)") : name);
  }
  std::string list = absl::StrJoin(names, ", ");
  if (others > 0) absl::StrAppend(&list, " and ", WithCommas(others), " more");
  return list;
}

std::string EntriesJson(const std::vector<registry::Entry>& peers) {
  std::string list;
  for (const registry::Entry& entry : peers) {
    absl::StrAppend(&list, list.empty() ? "" : ",",
                    "{\"name\":", JsonQuote(entry.name),
                    ",\"address\":", JsonQuote(entry.address),
                    ",\"static\":", entry.is_static ? "true" : "false", "}");
  }
  return absl::StrCat("[", list, "]");
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

// One message of a /history listing: the date too, since history spans days.
std::string HistoryLine(const HistoryEntry& entry, const TextStyle& style) {
  const ChatMessage& message = entry.message;
  const absl::Time when = entry.ours ? message.sent_at : MessageTime(message);
  std::string head =
      absl::StrCat(absl::FormatTime("[%Y-%m-%d %H:%M]", when, style.time_zone),
                   " ", PrintableName(message.from), ">");
  std::string line =
      absl::StrCat(Paint(style, entry.ours ? kOwn : kOthers, head), " ",
                   PrintableText(message.text));
  if (entry.ours) {
    const bool trouble = entry.status == SendStatus::kFailed ||
                         entry.status == SendStatus::kExpired;
    // A group message reached some members and not yet others: say how
    // many ("delivered to 2 of 3") rather than its least state alone.
    // Who read it is said by name: a member's read is its own, not the
    // group's ("read by bob, carol").
    std::string state = StatusName(entry.status);
    if (entry.copies > 0 && entry.delivered_copies > 0) {
      state = entry.delivered_copies < entry.copies
                  ? absl::StrCat("delivered to ", entry.delivered_copies,
                                 " of ", entry.copies)
                  : "delivered to all";
      if (!entry.read_by.empty()) {
        std::vector<std::string> readers;
        for (const std::string& reader : entry.read_by) {
          readers.push_back(PrintableName(reader));
        }
        absl::StrAppend(&state, ", read by ", absl::StrJoin(readers, ", "));
      }
    }
    absl::StrAppend(&line, "  ",
                    Paint(style, trouble ? kTrouble : kNotice,
                          absl::StrCat("(", state, ")")));
  } else {
    if (message.unverified) {
      absl::StrAppend(&line, "  ", Paint(style, kTrouble, "(unverified)"));
    }
    if (message.late) {
      absl::StrAppend(&line, "  ", Paint(style, kNotice, "(delivered late)"));
    }
  }
  return line + "\n";
}

std::string HistoryJson(const std::vector<HistoryEntry>& entries) {
  std::string list;
  for (const HistoryEntry& entry : entries) {
    const ChatMessage& message = entry.message;
    const absl::Time when = entry.ours ? message.sent_at : MessageTime(message);
    absl::StrAppend(&list, list.empty() ? "" : ",",
                    "{\"id\":", JsonQuote(message.id),
                    ",\"direction\":", entry.ours ? "\"out\"" : "\"in\"",
                    ",\"from\":", JsonQuote(message.from),
                    ",\"to\":", JsonQuote(message.to),
                    ",\"text\":", JsonQuote(message.text));
    if (when != absl::InfinitePast()) {
      absl::StrAppend(&list, ",\"time\":", JsonQuote(Rfc3339(when)));
    }
    if (entry.ours) {
      absl::StrAppend(&list,
                      ",\"status\":", JsonQuote(StatusName(entry.status)));
      if (entry.copies > 0) {
        absl::StrAppend(&list, ",\"copies\":", entry.copies,
                        ",\"delivered_copies\":", entry.delivered_copies);
        std::vector<std::string> readers;
        for (const std::string& reader : entry.read_by) {
          readers.push_back(JsonQuote(reader));
        }
        absl::StrAppend(&list, ",\"read_by\":[", absl::StrJoin(readers, ","),
                        "]");
      }
    } else {
      absl::StrAppend(&list, ",\"status\":\"shown\"");
      if (message.late) absl::StrAppend(&list, ",\"late\":true");
      if (message.unverified) absl::StrAppend(&list, ",\"unverified\":true");
    }
    absl::StrAppend(&list, "}");
  }
  return absl::StrCat("[", list, "]");
}

}  // namespace

absl::TimeZone UserTimeZone(const char* tz, const std::string& localtime) {
  absl::TimeZone zone;
  if (tz != nullptr && *tz != '\0') {
    std::string name = tz;
    if (name.front() == ':') name.erase(0, 1);  // POSIX's ":Europe/Rome".
    if (!name.empty() && absl::LoadTimeZone(name, &zone)) return zone;
  }
  if (absl::LoadTimeZone(localtime, &zone)) return zone;
  return absl::UTCTimeZone();
}

absl::TimeZone UserTimeZone() {
  return UserTimeZone(std::getenv("TZ"), "/etc/localtime");
}

namespace {

// "@team" after the sender of a group's message ("alice@team>"); "" for
// a direct one.
std::string GroupSuffix(const PeerEvent& event) {
  if (event.group.empty()) return "";
  return absl::StrCat("@", PrintableName(event.group));
}

// The group of a message event, as JSON fields.
template <typename Text>
void GroupJson(const PeerEvent& event, Text& text) {
  if (event.message.group_id.empty()) return;
  text("group", event.group);
  text("group_id", event.message.group_id);
}

}  // namespace

std::string FormatText(const PeerEvent& event, const TextStyle& style) {
  switch (event.kind) {
    case EventKind::kReady:
      return Paint(style, kNotice,
                   absl::StrCat("* You are ", PrintableName(event.name),
                                ", reachable at ", event.address,
                                ". Your key: ", event.fingerprint,
                                ". Type /help for commands.")) +
             "\n";
    case EventKind::kMessage: {
      const ChatMessage& message = event.message;
      std::string head =
          absl::StrCat(Clock(style, MessageTime(message)), " ",
                       PrintableName(message.from), GroupSuffix(event), ">");
      std::string late;
      if (message.unverified) {
        late = Paint(style, kTrouble, "  (unverified)");
      }
      if (event.repeated) {
        late += Paint(style, kNotice, "  (again, after a restart)");
      } else if (message.late) {
        late += Paint(style, kNotice, "  (delivered late)");
      }
      std::string line = absl::StrCat(Paint(style, kOthers, head), " ",
                                      PrintableText(message.text), late, "\n");
      if (!event.looks_like.empty()) {
        const std::string known = PrintableName(event.looks_like);
        absl::StrAppend(
            &line,
            Paint(style, kTrouble,
                  absl::StrCat("! looks like ", known, " but is not ", known)),
            "\n");
      }
      return line;
    }
    case EventKind::kSendResult: {
      const ChatMessage& message = event.message;
      // A copy of a group message names its member and the group.
      const std::string to =
          event.group.empty() ? PrintableName(message.to)
                              : absl::StrCat(PrintableName(message.to), " in #",
                                             PrintableName(event.group));
      if (IsGroupControl(message) && event.status != SendStatus::kFailed &&
          event.status != SendStatus::kExpired) {
        return "";  // A change notice: the change was told when it was made.
      }
      if (event.status == SendStatus::kSent && !event.text.empty()) {
        return Paint(style, kNotice,
                     absl::StrCat("* not yet sent to ", to, ": ",
                                  PrintableText(event.text),
                                  "; it waits in your outbox")) +
               "\n";
      }
      if (event.status == SendStatus::kDelivered && event.text.empty() &&
          !event.unverified) {
        return "";  // Straight through: the echo at kSent said it all.
      }
      if (event.status == SendStatus::kStored) {
        return Paint(style, kNotice,
                     absl::StrCat("* stored for ", to, ": ",
                                  PrintableText(event.text),
                                  "; it goes out when ",
                                  PrintableName(message.to), " is back")) +
               "\n";
      }
      if (event.status == SendStatus::kDelivered && event.unverified) {
        // No key vouches for it: said on every such message.
        const std::string why =
            event.text.empty()
                ? ""
                : absl::StrCat(" (", PrintableText(event.text), ")");
        return Paint(style, kNotice,
                     absl::StrCat("* delivered (unverified) to ", message.to,
                                  why, ": ", PrintableText(message.text))) +
               "\n";
      }
      if (event.status == SendStatus::kDelivered) {
        return Paint(style, kNotice,
                     absl::StrCat("* delivered to ", to, " (",
                                  PrintableText(event.text),
                                  "): ", PrintableText(message.text))) +
               "\n";
      }
      if (event.status == SendStatus::kRead) {
        return "";  // Not a line of its own; /history shows it.
      }
      if (event.status == SendStatus::kFailed ||
          event.status == SendStatus::kExpired) {
        return Paint(style, kTrouble,
                     absl::StrCat("! not delivered to ", to, ": ",
                                  PrintableText(event.text))) +
               "\n";
      }
      std::string head =
          absl::StrCat(Clock(style, message.sent_at), " ",
                       PrintableName(message.from), GroupSuffix(event), ">");
      std::string recipient = event.to_partner || !event.group.empty()
                                  ? ""
                                  : absl::StrCat("@", to, " ");
      return absl::StrCat(Paint(style, kOwn, head), " ", recipient,
                          PrintableText(message.text), "\n");
    }
    case EventKind::kOnline:
      return Paint(
                 style, kNotice,
                 absl::StrCat("* ", PrintableName(event.name), " is online")) +
             "\n";
    case EventKind::kOffline:
      return Paint(style, kNotice,
                   absl::StrCat("* ", PrintableName(event.name),
                                " went offline (", PrintableText(event.text),
                                ")")) +
             "\n";
    case EventKind::kSummary: {
      std::string text =
          event.count < 0 ? "/peers lists who is online"
          : event.count == 0
              ? "nobody else is online"
              : absl::StrCat(WithCommas(event.count), " ",
                             event.text.empty() ? "online" : event.text,
                             ", /peers to list");
      const std::string followed =
          NameList(event.peers, style.own_name, kNamesShown);
      if (!followed.empty()) {
        absl::StrAppend(&text, "; of those you follow: ", followed);
      }
      return Paint(style, kNotice, absl::StrCat("* ", text)) + "\n";
    }
    case EventKind::kPeers: {
      // A page is bounded by its size; show every name of it.
      const std::string names =
          NameList(event.peers, style.own_name, event.peers.size());
      if (event.page <= 1 && !event.more) {
        return Paint(style, kNotice,
                     names.empty() ? "* nobody else is online"
                                   : absl::StrCat("* online: ", names)) +
               "\n";
      }
      std::string head = absl::StrCat("* online, page ", event.page);
      if (!event.more) absl::StrAppend(&head, ", the last");
      if (event.count >= 0) {
        absl::StrAppend(&head, " (", WithCommas(event.count), " in all)");
      }
      std::string text =
          absl::StrCat(head, ": ", names.empty() ? "nobody else" : names);
      if (event.more) absl::StrAppend(&text, "; /peers more for the next page");
      return Paint(style, kNotice, text) + "\n";
    }
    case EventKind::kPartner:
      return Paint(style, kNotice,
                   absl::StrCat("You are chatting with ",
                                PrintableName(event.name), ".")) +
             "\n";
    case EventKind::kInfo: {
      // Several lines (the help) stay several lines, each made printable.
      std::vector<std::string> lines;
      for (absl::string_view line :
           absl::StrSplit(event.text, '\n', absl::SkipEmpty())) {
        lines.push_back(PrintableText(std::string(line)));
      }
      return Paint(style, kNotice,
                   absl::StrCat("* ", absl::StrJoin(lines, "\n  "))) +
             "\n";
    }
    case EventKind::kError:
      return Paint(style, kTrouble,
                   absl::StrCat("! ", PrintableText(event.text))) +
             "\n";
    case EventKind::kHistory: {
      std::string text;
      if (!event.preview) {
        const std::string name = PrintableName(event.name);
        const int64_t shown = static_cast<int64_t>(event.history.size());
        std::string head =
            shown == 0 ? absl::StrCat("* no history with ", name)
            : shown < event.count
                ? absl::StrCat("* the last ", shown, " of ",
                               WithCommas(event.count), " messages with ", name,
                               ":")
                : absl::StrCat("* ", shown,
                               shown == 1 ? " message" : " messages", " with ",
                               name, ":");
        text = Paint(style, kNotice, head) + "\n";
      }
      for (const HistoryEntry& entry : event.history) {
        text += HistoryLine(entry, style);
      }
      return text;
    }
  }
  return "\n";
}

std::string FormatJson(const PeerEvent& event) {
  std::string out;
  auto field = [&out](const std::string& key, const std::string& json_value) {
    absl::StrAppend(&out, out.empty() ? "{" : ",", JsonQuote(key), ":",
                    json_value);
  };
  auto text = [&field](const std::string& key, const std::string& value) {
    field(key, JsonQuote(value));
  };
  switch (event.kind) {
    case EventKind::kReady:
      text("event", "ready");
      text("name", event.name);
      text("address", event.address);
      text("fingerprint", event.fingerprint);
      break;
    case EventKind::kMessage:
      text("event", "message");
      text("id", event.message.id);
      GroupJson(event, text);
      text("from", event.message.from);
      text("to", event.message.to);
      text("text", event.message.text);
      text("time", Rfc3339(MessageTime(event.message)));
      if (event.message.sequence > 0) {
        field("sequence", absl::StrCat(event.message.sequence));
      }
      if (event.message.late) field("late", "true");
      if (event.message.unverified) field("unverified", "true");
      if (event.repeated) field("repeated", "true");
      if (!event.looks_like.empty()) text("looks_like", event.looks_like);
      break;
    case EventKind::kSendResult:
      text("event", "send");
      text("id", event.message.id);
      GroupJson(event, text);
      text("to", event.message.to);
      text("status", StatusName(event.status));
      if (event.message.sequence > 0) {
        field("sequence", absl::StrCat(event.message.sequence));
      }
      if (event.status == SendStatus::kFailed ||
          event.status == SendStatus::kExpired) {
        text("error", event.text);
      } else if (!event.text.empty()) {
        text("reason", event.text);
      }
      if (event.unverified) field("unverified", "true");
      text("text", event.message.text);
      break;
    case EventKind::kOnline:
      text("event", "online");
      text("name", event.name);
      text("address", event.address);
      break;
    case EventKind::kOffline:
      text("event", "offline");
      text("name", event.name);
      text("address", event.address);
      text("reason", event.text);
      break;
    case EventKind::kSummary:
      text("event", "summary");
      if (event.count >= 0) field("online", absl::StrCat(event.count));
      field("following", EntriesJson(event.peers));
      break;
    case EventKind::kPeers:
      text("event", "peers");
      field("peers", EntriesJson(event.peers));
      field("page", absl::StrCat(std::max(event.page, 1)));
      field("more", event.more ? "true" : "false");
      if (event.count >= 0) field("online", absl::StrCat(event.count));
      break;
    case EventKind::kPartner:
      text("event", "partner");
      text("name", event.name);
      break;
    case EventKind::kInfo:
      text("event", "info");
      text("text", event.text);
      if (!event.group.empty()) text("group", event.group);
      break;
    case EventKind::kError:
      text("event", "error");
      text("error", event.text);
      break;
    case EventKind::kHistory:
      text("event", "history");
      text("name", event.name);
      field("messages", HistoryJson(event.history));
      if (event.count >= 0) field("total", absl::StrCat(event.count));
      if (event.preview) field("preview", "true");
      break;
  }
  if (!event.detail.empty()) text("detail", event.detail);
  return out + "}\n";
}

}  // namespace chat::peer
