// A peer's screen is its user's: what real peers next to a registry full of
// strangers show. Online and offline notices only for names
// followed, one summary line at start, /peers a page at a time through the
// console's JSON mode, counted in lines, never timed.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "peer/console.h"
#include "peer/format.h"
#include "proto/chat.grpc.pb.h"
#include "tests/peer/peer_fixture.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::testing::ElementsAre;

constexpr int kJunk = 150;

auto Notice(EventKind kind, const std::string& name) {
  return [kind, name](const PeerEvent& event) {
    return event.kind == kind && event.name == name;
  };
}

class PeerScreenTest : public PeerTest {
 protected:
  // Registers `count` static entries junk-0... (what one client could do to
  // every peer's screen), or removes them.
  void Junk(bool add) {
    auto admin = Client(/*admin=*/true);
    for (int i = 0; i < kJunk; ++i) {
      const std::string name = absl::StrCat("junk-", i);
      if (add) {
        ASSERT_THAT(admin->PutStatic(name, "127.0.0.1:1"), IsOk());
      } else {
        ASSERT_THAT(admin->RemoveStatic(name), IsOk());
      }
    }
  }

  // Every event `name` was told of, as the terminal would print it.
  std::vector<std::string> Lines(const std::string& name) {
    TextStyle style{false, name, absl::UTCTimeZone()};
    std::vector<std::string> lines;
    for (const PeerEvent& event : sink(name).Events()) {
      for (absl::string_view line :
           absl::StrSplit(FormatText(event, style), '\n', absl::SkipEmpty())) {
        lines.push_back(std::string(line));
      }
    }
    return lines;
  }

  // Runs `name`'s console in JSON mode over `input` (one command per line)
  // to its end; returns what it printed.
  std::string RunConsole(const std::string& name, const std::string& input,
                         int page_size) {
    const std::string in_path = dir_.File(name + ".in");
    const std::string out_path = dir_.File(name + ".out");
    std::ofstream(in_path) << input;
    int in = open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
    int out =
        open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(in, 0);
    EXPECT_GE(out, 0);
    {
      ConsoleOptions options;
      options.json = true;
      options.own_name = name;
      options.page_size = page_size;
      Console console(options, in, out);
      console.Run(&peer(name));  // Returns at the end of the input.
    }
    close(in);
    close(out);
    std::ifstream printed(out_path);
    std::stringstream text;
    text << printed.rdbuf();
    return text.str();
  }
};

TEST_F(PeerScreenTest, JunkRegistrationsNeverReachTheScreen) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  ASSERT_THAT(peer("alice").Follow("bob"), IsOk());
  Junk(/*add=*/true);
  // bob comes after the junk: once alice hears of him, she has been told of
  // everything before him.
  ASSERT_THAT(StartPeer("bob"), IsOk());
  ASSERT_TRUE(sink("alice").WaitFor(Notice(EventKind::kOnline, "bob")));
  Junk(/*add=*/false);
  StopPeer("bob");
  ASSERT_TRUE(sink("alice").WaitFor(Notice(EventKind::kOffline, "bob")));
  // 300 junk changes; alice's screen: her start, the summary, bob twice.
  std::vector<std::string> notices;
  for (const PeerEvent& event : sink("alice").Events()) {
    if (event.kind == EventKind::kOnline || event.kind == EventKind::kOffline) {
      notices.push_back(event.name);
    }
  }
  EXPECT_THAT(notices, ElementsAre("bob", "bob"));
  EXPECT_LE(Lines("alice").size(), 4u);
  for (const std::string& line : Lines("alice")) {
    EXPECT_FALSE(absl::StrContains(line, "junk")) << line;
  }
}

TEST_F(PeerScreenTest, ANewPeerSaysHowManyAreOnlineInOneLine) {
  Junk(/*add=*/true);
  ASSERT_THAT(StartPeer("bob"), IsOk());
  ASSERT_THAT(StartPeer("carol"), IsOk());
  PeerOptions options = Options("alice");
  options.follow = {"bob"};  // As --peer bob does.
  ASSERT_THAT(StartPeer(options), IsOk());
  auto summary = sink("alice").WaitFor(
      [](const PeerEvent& event) { return event.kind == EventKind::kSummary; });
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->count, kJunk + 2);  // Everyone but alice.
  ASSERT_EQ(summary->peers.size(), 1u);
  EXPECT_EQ(summary->peers[0].name, "bob");
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  EXPECT_EQ(FormatText(*summary, style),
            "* 152 online, /peers to list; of those you follow: bob\n");
  EXPECT_THAT(FormatJson(*summary),
              ::testing::StartsWith(
                  "{\"event\":\"summary\",\"online\":152,\"following\":[{"
                  "\"name\":\"bob\""));
  // Nothing else about who is here: no list, no notice per name.
  for (const PeerEvent& event : sink("alice").Events()) {
    EXPECT_NE(event.kind, EventKind::kPeers);
    EXPECT_NE(event.kind, EventKind::kOnline) << event.name;
  }
  EXPECT_LE(Lines("alice").size(), 2u);
}

TEST_F(PeerScreenTest, PeersListsThroughTheConsoleOnePageAtATime) {
  Junk(/*add=*/true);
  ASSERT_THAT(StartPeer("alice"), IsOk());
  // 151 names (alice and the junk) in pages of 40: 4 pages, then no more.
  const std::string printed = RunConsole(
      "alice", "/peers\n/peers more\n/peers more\n/peers more\n/peers more\n",
      /*page_size=*/40);
  std::vector<std::string> lines =
      absl::StrSplit(printed, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << printed;
  std::set<std::string> listed;
  for (int page = 1; page <= 4; ++page) {
    const std::string& line = lines[page - 1];
    EXPECT_TRUE(absl::StartsWith(line, "{\"event\":\"peers\",\"peers\":["))
        << line;
    EXPECT_TRUE(absl::StrContains(
        line, absl::StrCat("\"page\":", page, ",\"more\":",
                           page < 4 ? "true" : "false", ",\"online\":150}")))
        << line;
    size_t names = 0;
    for (size_t at = line.find("{\"name\":\""); at != std::string::npos;
         at = line.find("{\"name\":\"", at + 1)) {
      const size_t start = at + 9;
      listed.insert(line.substr(start, line.find('"', start) - start));
      ++names;
    }
    EXPECT_EQ(names, page < 4 ? 40u : 31u) << line;
  }
  EXPECT_EQ(listed.size(), kJunk + 1u);  // Everyone once, alice too.
  EXPECT_EQ(lines[4],
            "{\"event\":\"info\",\"text\":\"no more pages; /peers starts "
            "again\"}");
  // And again from the start.
  const std::string again = RunConsole("alice", "/peers\n", 40);
  EXPECT_TRUE(absl::StrContains(again, "\"page\":1,\"more\":true")) << again;
}

// /peers during a registry outage printed gRPC's own text ("failed to
// connect to all addresses; last error: UNKNOWN: ipv4:..."). Now one plain
// sentence; the gRPC text is the event's detail (JSON, --verbose).
TEST_F(PeerScreenTest, PeersDuringAnOutageSaysSoInOneSentence) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  registry_.reset();
  const std::string printed = RunConsole("alice", "/peers\n", 50);
  EXPECT_TRUE(absl::StrContains(
      printed,
      "{\"event\":\"error\",\"error\":\"the registry is unreachable, so you "
      "cannot list who is online now; try again in a moment\",\"detail\":"))
      << printed;
  // gRPC's words only after "detail".
  const size_t detail = printed.find("\"detail\":");
  ASSERT_NE(detail, std::string::npos);
  EXPECT_EQ(printed.substr(0, detail).find("failed to connect"),
            std::string::npos)
      << printed;
}

TEST_F(PeerScreenTest, NoticesComeOnlyForThoseTalkedWithOrChosen) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  ASSERT_THAT(peer("alice").Follow("bob"), IsOk());  // Chosen.
  ASSERT_THAT(StartPeer("carol"), IsOk());           // A stranger, for now.
  ASSERT_THAT(StartPeer("bob"), IsOk());
  ASSERT_TRUE(sink("alice").WaitFor(Notice(EventKind::kOnline, "bob")));
  // carol writes to alice: talked with, so followed from now on.
  EXPECT_EQ(SendAndWait("carol", "alice", "hi alice").status,
            SendStatus::kDelivered);
  ASSERT_TRUE(sink("alice").WaitFor(MessageFrom("carol", "hi alice")));
  EXPECT_THAT(peer("alice").Followed(), ElementsAre("bob", "carol"));
  StopPeer("carol");
  ASSERT_TRUE(sink("alice").WaitFor(Notice(EventKind::kOffline, "carol")));
  // bob unfollowed: his leaving is not news; dave, chosen, comes after it.
  EXPECT_TRUE(peer("alice").Unfollow("bob"));
  ASSERT_THAT(peer("alice").Follow("dave"), IsOk());
  StopPeer("bob");
  ASSERT_THAT(StartPeer("dave"), IsOk());
  ASSERT_TRUE(sink("alice").WaitFor(Notice(EventKind::kOnline, "dave")));
  std::vector<std::string> notices;
  for (const PeerEvent& event : sink("alice").Events()) {
    if (event.kind == EventKind::kOnline) notices.push_back("+" + event.name);
    if (event.kind == EventKind::kOffline) notices.push_back("-" + event.name);
  }
  EXPECT_THAT(notices, ElementsAre("+bob", "-carol", "+dave"));
  // What alice follows survives her restart (her own file).
  StopPeer("alice");
  sinks_.erase("alice");
  ASSERT_THAT(StartPeer("alice"), IsOk());
  EXPECT_THAT(peer("alice").Followed(), ElementsAre("carol", "dave"));
  std::vector<std::string> online;
  for (const registry::Entry& entry : peer("alice").FollowedOnline()) {
    online.push_back(entry.name);
  }
  EXPECT_THAT(online, ElementsAre("dave"));
}

// Whether `parts` occur in `text` in this order.
bool InOrder(const std::string& text, const std::vector<std::string>& parts) {
  size_t at = 0;
  for (const std::string& part : parts) {
    at = text.find(part, at);
    if (at == std::string::npos) return false;
    at += part.size();
  }
  return true;
}

TEST_F(PeerScreenTest, HistoryShowsBothWaysWithTheirStatesAfterARestart) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  ASSERT_THAT(StartPeer("bob"), IsOk());
  EXPECT_EQ(SendAndWait("alice", "bob", "hi bob").status,
            SendStatus::kDelivered);
  ASSERT_TRUE(sink("bob").WaitFor(MessageFrom("alice", "hi bob")));
  EXPECT_EQ(SendAndWait("bob", "alice", "hi alice").status,
            SendStatus::kDelivered);
  ASSERT_TRUE(sink("alice").WaitFor(MessageFrom("bob", "hi alice")));
  StopPeer("bob");
  PeerEvent stored = SendAndWait("alice", "bob", "are you there?");
  EXPECT_EQ(stored.status, SendStatus::kStored);
  // Both restart: alice's file has what was said; bob reads his mailbox.
  StopPeer("alice");
  ASSERT_THAT(StartPeer("alice"), IsOk());
  std::string before = RunConsole("alice", "/history bob\n", 50);
  EXPECT_TRUE(InOrder(
      before,
      {"{\"event\":\"history\",\"name\":\"bob\"", "\"direction\":\"out\"",
       "\"text\":\"hi bob\"", "\"status\":\"delivered\"",
       "\"direction\":\"in\"", "\"from\":\"bob\"", "\"text\":\"hi alice\"",
       "\"status\":\"shown\"", "\"text\":\"are you there?\"",
       "\"status\":\"stored\"", "\"total\":3}"}))
      << before;
  ASSERT_THAT(StartPeer("bob"), IsOk());
  ASSERT_TRUE(sink("bob").WaitFor(MessageFrom("alice", "are you there?")));
  ASSERT_TRUE(sink("alice").WaitFor(
      StateOf(stored.message.id, SendStatus::kDelivered)));
  StopPeer("bob");  // Closing finishes its lazy writes.
  ASSERT_THAT(StartPeer("bob"), IsOk());
  std::string bobs = RunConsole("bob", "/history alice 2\n", 50);
  EXPECT_TRUE(
      InOrder(bobs, {"\"text\":\"hi alice\"", "\"status\":\"delivered\"",
                     "\"text\":\"are you there?\"",
                     "\"status\":\"shown\",\"late\":true", "\"total\":3}"}))
      << bobs;
  // alice's console: the delivery reached her history; /chat shows the last
  // lines first; /forget erases them and nothing else.
  StopPeer("alice");
  ASSERT_THAT(StartPeer("alice"), IsOk());
  std::string after = RunConsole(
      "alice", "/history bob 1\n/chat bob\n/forget bob\n/history bob\n", 50);
  EXPECT_TRUE(InOrder(
      after,
      {"\"text\":\"are you there?\"", "\"status\":\"delivered\"",
       "\"total\":3}\n", "\"text\":\"hi bob\"", "\"preview\":true}\n",
       "{\"event\":\"partner\",\"name\":\"bob\"}\n",
       "erased 3 messages of your history with bob",
       "{\"event\":\"history\",\"name\":\"bob\",\"messages\":[],\"total\":0}"}))
      << after;
  // Delivery state stayed: bob still gets alice's next message, once.
  EXPECT_EQ(SendAndWait("alice", "bob", "still here").status,
            SendStatus::kDelivered);
}

// A plain message (a lab peer's: no key) straight to `address`, as `sender`.
grpc::Status SendPlain(const std::string& address, const std::string& sender,
                       const std::string& text) {
  auto stub = ::ChattingService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  ::Message message;
  message.set_time("12:34");
  message.set_sender(sender);
  message.set_msg(text);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  ::NullMsg reply;
  return stub->SendMessage(&context, message, &reply);
}

// A plain sender whose name looks like one alice knows (Cyrillic o, a
// trailing space, a zero-width space) rendered as "bob>" with only
// "(unverified)" to tell, and bidi controls reached the terminal raw. Now
// the name shows what it is, and a line says whom it imitates.
TEST_F(PeerScreenTest, ALookalikeOfAKnownNameIsFlaggedAndShownAsItIs) {
  ASSERT_THAT(StartPeer("alice"), IsOk());
  ASSERT_THAT(StartPeer("bob"), IsOk());
  ASSERT_EQ(SendAndWait("alice", "bob", "hi bob").status,
            SendStatus::kDelivered);  // bob: followed, his key pinned.
  const std::string address = peer("alice").address();
  for (const std::string sender : {"b\xD0\xBE"
                                   "b",
                                   "bob ", "bob\xE2\x80\x8B",
                                   "\xE2\x80\xAE"
                                   "bob"}) {
    ASSERT_TRUE(SendPlain(address, sender, "it is me").ok()) << sender;
    auto shown = sink("alice").WaitFor(MessageFrom(sender, "it is me"));
    ASSERT_TRUE(shown.has_value()) << sender;
    EXPECT_TRUE(shown->message.unverified);
    EXPECT_EQ(shown->looks_like, "bob") << sender;
  }
  // A plain sender that looks like nobody alice knows is not flagged.
  ASSERT_TRUE(SendPlain(address, "Davide De Rosa", "ciao").ok());
  auto davide = sink("alice").WaitFor(MessageFrom("Davide De Rosa", "ciao"));
  ASSERT_TRUE(davide.has_value());
  EXPECT_EQ(davide->looks_like, "");
  const std::vector<std::string> lines = Lines("alice");
  for (const std::string& line : lines) {
    EXPECT_FALSE(absl::StrContains(line, "\xE2\x80\x8B")) << line;
    EXPECT_FALSE(absl::StrContains(line, "\xE2\x80\xAE")) << line;
  }
  for (const std::string shown :
       {"] b\xD0\xBE"
        "b> it is me",
        "] bob<U+0020>> it is me", "] bob<U+200B>> it is me",
        "] <U+202E>bob> it is me"}) {
    auto at = std::find_if(
        lines.begin(), lines.end(),
        [&](const std::string& l) { return absl::StrContains(l, shown); });
    ASSERT_NE(at, lines.end()) << shown;
    ASSERT_NE(at + 1, lines.end());
    EXPECT_EQ(*(at + 1), "! looks like bob but is not bob") << shown;
  }
  // None of them became a contact.
  EXPECT_THAT(peer("alice").Followed(), ElementsAre("bob"));
}

// 3,000 plain messages from 3,000 names: 935 were shown in 1.3 s and every
// name became a followed contact, pushing out real ones. Now strangers are
// never followed, a few get through, the rest are refused before they are
// kept (the sender hears RESOURCE_EXHAUSTED) and counted on one line.
TEST_F(PeerScreenTest, AFloodOfStrangersIsRefusedCountedAndNeverFollowed) {
  PeerOptions options = Options("alice");
  options.max_followed = 100;
  ASSERT_THAT(StartPeer(options), IsOk());
  ASSERT_THAT(StartPeer("bob"), IsOk());
  ASSERT_THAT(peer("alice").Follow("carol"), IsOk());  // Chosen.
  ASSERT_EQ(SendAndWait("alice", "bob", "hi bob").status,
            SendStatus::kDelivered);  // Talked with.
  auto stub = ::ChattingService::NewStub(grpc::CreateChannel(
      peer("alice").address(), grpc::InsecureChannelCredentials()));
  constexpr int kStrangers = 3000;
  int accepted = 0;
  int refused = 0;
  for (int i = 0; i < kStrangers; ++i) {
    ::Message message;
    message.set_sender(absl::StrCat("stranger-", i));
    message.set_msg("buy now");
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    ::NullMsg reply;
    const grpc::Status status = stub->SendMessage(&context, message, &reply);
    if (status.ok()) {
      ++accepted;
    } else {
      ASSERT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << status.error_message();
      ++refused;
    }
  }
  EXPECT_EQ(accepted + refused, kStrangers);
  EXPECT_GT(refused, kStrangers * 9 / 10);
  // bob is still heard, at once: he is no stranger.
  ASSERT_EQ(SendAndWait("bob", "alice", "still there?").status,
            SendStatus::kDelivered);
  ASSERT_TRUE(sink("alice").WaitFor(MessageFrom("bob", "still there?")));
  // Every message acknowledged was shown; none refused was.
  int shown = 0;
  for (const PeerEvent& event : sink("alice").Events()) {
    if (event.kind == EventKind::kMessage &&
        absl::StartsWith(event.message.from, "stranger-")) {
      ++shown;
    }
  }
  EXPECT_EQ(shown, accepted);
  // The refusals: counted on a line, not one line each.
  ASSERT_TRUE(sink("alice").WaitFor([](const PeerEvent& event) {
    return event.kind == EventKind::kInfo &&
           absl::StrContains(event.text, "from strangers refused");
  }));
  int count_lines = 0;
  for (const std::string& line : Lines("alice")) {
    if (absl::StrContains(line, "from strangers refused")) ++count_lines;
  }
  EXPECT_GE(count_lines, 1);
  EXPECT_LE(count_lines, 10);
  EXPECT_LT(Lines("alice").size(), 200u);
  // Nobody followed but the real contacts.
  EXPECT_THAT(peer("alice").Followed(), ElementsAre("bob", "carol"));
}

}  // namespace
}  // namespace chat::peer
