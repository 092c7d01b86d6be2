// The front end at start: start-up lines in order (who you are, who is
// online, the partner line, then late messages, each once), through the
// console's JSON mode and its text; and the zone times are shown in.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "peer/console.h"
#include "peer/format.h"
#include "tests/peer/peer_fixture.h"
#include "tests/testing/wait.h"

namespace chat::peer {
namespace {

using ::chat::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> LinesOf(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// The "event" of each JSON line.
std::vector<std::string> Kinds(const std::string& json) {
  std::vector<std::string> kinds;
  for (const std::string& line : LinesOf(json)) {
    const size_t start = line.find("\"event\":\"");
    if (start == std::string::npos) continue;
    const size_t from = start + 9;
    kinds.push_back(line.substr(from, line.find('"', from) - from));
  }
  return kinds;
}

PeerEvent Ready() {
  PeerEvent ready = MakeEvent(EventKind::kReady, "alice", "127.0.0.1:4000");
  ready.fingerprint = "7f3a 9c21";
  return ready;
}

PeerEvent LateMessage() {
  PeerEvent event = MakeEvent(EventKind::kMessage, "bob");
  event.message.id = "m1";
  event.message.from = "bob";
  event.message.to = "alice";
  event.message.text = "sent while you were away";
  event.message.sent_at = absl::FromUnixSeconds(1700000000);
  event.message.late = true;
  return event;
}

PeerEvent Summary() {
  PeerEvent summary = MakeEvent(EventKind::kSummary);
  summary.count = 1;
  return summary;
}

// A console without a peer (no partner, input at its end at once): what
// the peer said during its start comes out in the start-up order.
std::string RunWithoutPeer(bool json, const std::vector<PeerEvent>& events,
                           const chat::testing::TempDir& dir) {
  const std::string in_path = dir.File("empty.in");
  const std::string out_path = dir.File(json ? "json.out" : "text.out");
  std::ofstream(in_path) << "";
  const int in = open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
  const int out =
      open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(in, 0);
  EXPECT_GE(out, 0);
  {
    ConsoleOptions options;
    options.json = json;
    options.own_name = "alice";
    Console console(options, in, out);
    for (const PeerEvent& event : events) console.OnEvent(event);
    console.Run(nullptr);  // No partner, no input: Run() uses no peer.
  }
  close(in);
  close(out);
  return Contents(out_path);
}

TEST(StartupOrderTest, LateMessagesComeAfterTheReadyAndSummaryLines) {
  chat::testing::TempDir dir;
  // As a peer may emit them: a late message (from the mailbox) and the
  // outbox notice before the follower's summary.
  const std::vector<PeerEvent> events = {
      Ready(), LateMessage(),
      InfoEvent("sending 1 message left in your outbox"), Summary()};
  EXPECT_THAT(Kinds(RunWithoutPeer(/*json=*/true, events, dir)),
              ElementsAre("ready", "summary", "message", "info"));
  const std::string text = RunWithoutPeer(/*json=*/false, events, dir);
  std::vector<std::string> lines = LinesOf(text);
  ASSERT_EQ(lines.size(), 4u) << text;
  EXPECT_THAT(lines[0], ::testing::StartsWith("* You are alice, reachable at "
                                              "127.0.0.1:4000. Your key: "));
  EXPECT_EQ(lines[1], "* 1 online, /peers to list");
  EXPECT_THAT(lines[2], ::testing::MatchesRegex(
                            R"(\[[0-9][0-9]:[0-9][0-9]\] bob> sent while you )"
                            R"(were away  \(delivered late\))"));
  EXPECT_EQ(lines[3], "* sending 1 message left in your outbox");
}

class StartupPeerTest : public PeerTest {
 protected:
  // bob leaves `text` in alice's mailbox while she is away.
  void LeaveLateMessage(const std::string& text) {
    ASSERT_THAT(StartPeer("alice"), IsOk());
    StopPeer("alice");
    ASSERT_THAT(StartPeer("bob"), IsOk());
    auto id = peer("bob").Send("alice", text);
    ASSERT_THAT(id, IsOk());
    ASSERT_TRUE(sink("bob").WaitFor(StateOf(*id, SendStatus::kStored)));
  }

  // Starts alice with her console (JSON) as her sink and --peer `partner`,
  // runs it until its output holds `until`, then ends its input (or stops
  // it, when the partner never comes); returns what it printed.
  std::string StartAlice(const std::string& partner, const std::string& until,
                         bool stop) {
    const std::string out_path = dir_.File("alice-console.out");
    int input[2];
    EXPECT_EQ(pipe2(input, O_CLOEXEC), 0);
    const int out =
        open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ConsoleOptions console_options;
    console_options.json = true;
    console_options.own_name = "alice";
    console_options.initial_partner = partner;
    Console console(console_options, input[0], out);
    PeerOptions options = Options("alice");
    options.follow = {partner};  // As main.cc does for --peer.
    auto alice = Peer::Start(options, &console, RealClock());
    EXPECT_THAT(alice, IsOk());
    if (!alice.ok()) return "";
    std::thread run([&] { console.Run(alice->get()); });
    EXPECT_TRUE(chat::testing::WaitFor([&] {
      return absl::StrContains(Contents(out_path), until);
    })) << Contents(out_path);
    if (stop) console.Stop();
    close(input[1]);  // The end of input: Run() returns.
    run.join();
    const std::string printed = Contents(out_path);  // Before its shutdown.
    alice->reset();
    close(input[0]);
    close(out);
    return printed;
  }
};

TEST_F(StartupPeerTest, ReadySummaryPartnerThenLateMessagesEachOnce) {
  LeaveLateMessage("sent while you were away");
  const std::string printed =
      StartAlice("bob", "\"text\":\"sent while you were away\"", false);
  // bob is online: no "Waiting for bob" line; the partner line before the
  // late message, each line once.
  EXPECT_THAT(Kinds(printed),
              ElementsAre("ready", "summary", "partner", "message"))
      << printed;
  EXPECT_THAT(printed, ::testing::Not(HasSubstr("Waiting for")));
  EXPECT_THAT(printed, HasSubstr("\"following\":[{\"name\":\"bob\""));
  EXPECT_THAT(printed, HasSubstr("\"late\":true"));
}

TEST_F(StartupPeerTest, APartnerNotOnlineYetDoesNotHoldUpLateMessages) {
  LeaveLateMessage("sent while you were away");
  const std::string printed =
      StartAlice("carol", "\"text\":\"sent while you were away\"", true);
  EXPECT_THAT(Kinds(printed),
              ElementsAre("ready", "summary", "info", "message"))
      << printed;
  EXPECT_THAT(LinesOf(printed)[2],
              HasSubstr("\"text\":\"Waiting for carol to come online...\""));
}

// Times: the user's zone, from TZ, else /etc/localtime, else UTC.
std::string HourIn(const absl::TimeZone& zone) {
  // 2026-01-15 12:00 UTC: winter, no daylight saving in either zone.
  return absl::FormatTime("%H:%M", absl::FromUnixSeconds(1768478400), zone);
}

TEST(UserTimeZoneTest, TzNamesTheZone) {
  const std::string localtime = "/usr/share/zoneinfo/America/New_York";
  EXPECT_EQ(HourIn(UserTimeZone("Europe/Rome", localtime)), "13:00");
  EXPECT_EQ(HourIn(UserTimeZone(":Asia/Tokyo", localtime)), "21:00");
  EXPECT_EQ(HourIn(UserTimeZone("UTC", localtime)), "12:00");
}

TEST(UserTimeZoneTest, WithoutAUsableTzTheMachinesZone) {
  const std::string localtime = "/usr/share/zoneinfo/America/New_York";
  EXPECT_EQ(HourIn(UserTimeZone(nullptr, localtime)), "07:00");
  // docker-compose's `TZ: ${TZ:-}` from a host without TZ: unset, not UTC.
  EXPECT_EQ(HourIn(UserTimeZone("", localtime)), "07:00");
  EXPECT_EQ(HourIn(UserTimeZone(":", localtime)), "07:00");
  // A zone this machine does not know (no tzdata, a typo): no error line.
  EXPECT_EQ(HourIn(UserTimeZone("Nowhere/Atlantis", localtime)), "07:00");
}

TEST(UserTimeZoneTest, NothingKnownIsUtc) {
  EXPECT_EQ(HourIn(UserTimeZone(nullptr, "/nonexistent/localtime")), "12:00");
  EXPECT_EQ(HourIn(UserTimeZone("Nowhere/Atlantis", "/nonexistent/localtime")),
            "12:00");
}

}  // namespace
}  // namespace chat::peer
