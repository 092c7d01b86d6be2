// Input parsing and output formatting of the peer's front end.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "peer/commands.h"
#include "peer/format.h"
#include "peer/peer.h"
#include "peer/plain_words.h"

namespace chat::peer {
namespace {

using Kind = Command::Kind;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ParseLineTest, GroupsAreWrittenWithAHash) {
  Command c = ParseLine("#team hello all", "");
  EXPECT_EQ(c.kind, Command::Kind::kSend);
  EXPECT_EQ(c.name, "#team");
  EXPECT_EQ(c.text, "hello all");
  EXPECT_EQ(ParseLine("#team", "").kind, Command::Kind::kError);
  EXPECT_EQ(ParseLine("# hi", "").kind, Command::Kind::kError);

  c = ParseLine("/group create team bob carol", "");
  EXPECT_EQ(c.kind, Command::Kind::kGroup);
  EXPECT_EQ(c.verb, "create");
  EXPECT_EQ(c.name, "team");
  EXPECT_EQ(c.names, (std::vector<std::string>{"bob", "carol"}));
  c = ParseLine("/group add #team dave", "");
  EXPECT_EQ(c.verb, "add");
  EXPECT_EQ(c.name, "team");  // "#team" and "team" are one group.
  EXPECT_EQ(c.names, std::vector<std::string>{"dave"});
  c = ParseLine("/group owner team bob", "");
  EXPECT_EQ(c.verb, "owner");
  EXPECT_EQ(c.names, std::vector<std::string>{"bob"});
  c = ParseLine("/group leave team", "");
  EXPECT_EQ(c.verb, "leave");
  c = ParseLine("/group team", "");
  EXPECT_EQ(c.verb, "chat");
  EXPECT_EQ(c.name, "team");
  EXPECT_EQ(ParseLine("/groups", "").kind, Command::Kind::kGroups);

  for (const char* bad :
       {"/group", "/group add team", "/group remove team", "/group owner team",
        "/group owner team a b", "/group leave", "/group leave a b",
        "/group a b", "/groups x"}) {
    EXPECT_EQ(ParseLine(bad, "").kind, Command::Kind::kError) << bad;
  }
  // A group partner takes plain lines like a name does.
  c = ParseLine("plain words", "#team");
  EXPECT_EQ(c.kind, Command::Kind::kSend);
  EXPECT_EQ(c.name, "#team");
  EXPECT_TRUE(c.to_partner);
}

TEST(ParseLineTest, SendsToANamedPeer) {
  Command c = ParseLine("@bob hello there", "");
  EXPECT_EQ(c.kind, Kind::kSend);
  EXPECT_EQ(c.name, "bob");
  EXPECT_EQ(c.text, "hello there");
  EXPECT_FALSE(c.to_partner);
  c = ParseLine("/msg carol  hi  ", "bob");
  EXPECT_EQ(c.kind, Kind::kSend);
  EXPECT_EQ(c.name, "carol");
  EXPECT_EQ(c.text, "hi  ");
}

TEST(ParseLineTest, PlainLinesGoToThePartner) {
  Command c = ParseLine("how are you?\r", "bob");
  EXPECT_EQ(c.kind, Kind::kSend);
  EXPECT_EQ(c.name, "bob");
  EXPECT_EQ(c.text, "how are you?");
  EXPECT_TRUE(c.to_partner);
  EXPECT_EQ(ParseLine("//slash", "bob").text, "/slash");
  EXPECT_EQ(ParseLine("hello", "").kind, Kind::kError);
}

TEST(ParseLineTest, Commands) {
  EXPECT_EQ(ParseLine("/chat bob", "").kind, Kind::kChat);
  EXPECT_EQ(ParseLine("/chat bob", "").name, "bob");
  EXPECT_EQ(ParseLine("/peers", "").kind, Kind::kPeers);
  EXPECT_EQ(ParseLine("/HELP", "").kind, Kind::kHelp);
  EXPECT_EQ(ParseLine("/quit", "").kind, Kind::kQuit);
  EXPECT_EQ(ParseLine("   ", "bob").kind, Kind::kNothing);
}

TEST(ParseLineTest, MistakesSayWhatIsWrong) {
  EXPECT_THAT(ParseLine("/chat", "").text, HasSubstr("usage: /chat NAME"));
  EXPECT_THAT(ParseLine("/chat a b", "").text, HasSubstr("usage"));
  EXPECT_THAT(ParseLine("@bob", "").text, HasSubstr("usage"));
  EXPECT_THAT(ParseLine("/msg bob", "").text, HasSubstr("usage"));
  EXPECT_THAT(ParseLine("/frobnicate", "").text, HasSubstr("unknown command"));
}

PeerEvent Received(const std::string& from, const std::string& text) {
  PeerEvent event = MakeEvent(EventKind::kMessage, from);
  event.message.id = "id-1";
  event.message.from = from;
  event.message.to = "alice";
  event.message.text = text;
  event.message.sent_at = absl::FromUnixSeconds(1798761600 + 3723);  // 01:02
  return event;
}

TEST(FormatTextTest, MessagesLookLikeTheLab) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  EXPECT_EQ(FormatText(Received("bob", "hi"), style), "[01:02] bob> hi\n");
  PeerEvent sent = Received("alice", "yo");
  sent.kind = EventKind::kSendResult;
  sent.status = SendStatus::kSent;
  sent.message.to = "bob";
  sent.to_partner = true;
  EXPECT_EQ(FormatText(sent, style), "[01:02] alice> yo\n");
  sent.to_partner = false;
  EXPECT_EQ(FormatText(sent, style), "[01:02] alice> @bob yo\n");
  // Delivered straight away: the echo said enough.
  sent.status = SendStatus::kDelivered;
  EXPECT_EQ(FormatText(sent, style), "");
  sent.status = SendStatus::kFailed;
  sent.text = "bob is not online";
  EXPECT_EQ(FormatText(sent, style),
            "! not delivered to bob: bob is not online\n");
}

TEST(FormatTextTest, AGroupsLinesNameTheGroup) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  PeerEvent received = Received("bob", "hi all");
  received.message.group_id = std::string(32, 'a');
  received.group = "team";
  EXPECT_EQ(FormatText(received, style), "[01:02] bob@team> hi all\n");
  EXPECT_THAT(FormatJson(received),
              HasSubstr("\"group\":\"team\",\"group_id\":\"aaaa"));
  PeerEvent sent = received;
  sent.kind = EventKind::kSendResult;
  sent.status = SendStatus::kSent;
  sent.message.from = "alice";
  sent.message.to = "bob";
  EXPECT_EQ(FormatText(sent, style), "[01:02] alice@team> hi all\n");
  sent.to_partner = true;
  EXPECT_EQ(FormatText(sent, style), "[01:02] alice@team> hi all\n");
  sent.status = SendStatus::kStored;
  sent.text = "bob is offline";
  EXPECT_EQ(FormatText(sent, style),
            "* stored for bob in #team: bob is offline; it goes out when bob "
            "is back\n");
  // A change notice's states are not lines: the change was told.
  sent.message.group_change = true;
  EXPECT_EQ(FormatText(sent, style), "");
  sent.status = SendStatus::kFailed;
  EXPECT_THAT(FormatText(sent, style), HasSubstr("not delivered to bob"));
}

TEST(FormatTextTest, ColoursOnlyWhenAskedAndControlCharactersNeutralised) {
  TextStyle plain{false, "alice", absl::UTCTimeZone()};
  TextStyle colour{true, "alice", absl::UTCTimeZone()};
  EXPECT_THAT(FormatText(Received("bob", "hi"), colour),
              HasSubstr("\033[1;36m"));
  std::string hostile =
      FormatText(Received("bob\033[2J", "x\033[31my\r"), plain);
  EXPECT_EQ(hostile.find('\033'), std::string::npos);
  EXPECT_EQ(hostile.find('\r'), std::string::npos);
}

TEST(FormatTextTest, InvisibleAndBidiCharactersAreShownNotObeyed) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  // A zero-width space after the name, and a right-to-left override that
  // would turn "exe.txt" around.
  PeerEvent event =
      Received("bob\xE2\x80\x8B", "see evil\xE2\x80\xAEtxt.exe\xE2\x81\xA6!");
  EXPECT_EQ(FormatText(event, style),
            "[01:02] bob<U+200B>> see evil<U+202E>txt.exe<U+2066>!\n");
  // A trailing space, a bidi isolate in the name.
  EXPECT_EQ(FormatText(Received("bob ", "hi"), style),
            "[01:02] bob<U+0020>> hi\n");
  EXPECT_EQ(FormatText(Received("\xE2\x81\xA8"
                                "bob",
                                "hi"),
                       style),
            "[01:02] <U+2068>bob> hi\n");
  // So in /history.
  PeerEvent history = MakeEvent(EventKind::kHistory, "bob");
  HistoryEntry said;
  said.message = event.message;
  history.history = {said};
  history.count = 1;
  const std::string listed = FormatText(history, style);
  EXPECT_EQ(listed.find("\xE2\x80\xAE"), std::string::npos);
  EXPECT_EQ(listed.find("\xE2\x80\x8B"), std::string::npos);
  EXPECT_THAT(listed, HasSubstr("bob<U+200B>> see evil<U+202E>txt.exe"));
  // JSON stays exact: scripts get what was sent.
  EXPECT_THAT(FormatJson(event), HasSubstr("\"from\":\"bob\xE2\x80\x8B\""));
  EXPECT_THAT(FormatJson(event), HasSubstr("evil\xE2\x80\xAEtxt.exe"));
}

TEST(FormatTextTest, ALookalikeOfSomeoneKnownIsFlagged) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  PeerEvent event = Received("\xD0\xB0lice", "it is me, send the key");
  event.message.unverified = true;
  event.looks_like = "alice";
  EXPECT_EQ(FormatText(event, style),
            "[01:02] \xD0\xB0lice> it is me, send the key  (unverified)\n"
            "! looks like alice but is not alice\n");
  EXPECT_THAT(FormatJson(event), HasSubstr("\"looks_like\":\"alice\""));
}

TEST(RegistryFailureTextTest, OneSentenceWithoutGrpcText) {
  const absl::Status down = absl::UnavailableError(
      "registry at 127.0.0.1:1 is unreachable: failed to connect to all "
      "addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Connection refused");
  EXPECT_EQ(RegistryFailureText(down, "list who is online"),
            "the registry is unreachable, so you cannot list who is online "
            "now; try again in a moment");
  EXPECT_EQ(RegistryFailureText(absl::DeadlineExceededError("Deadline "
                                                            "Exceeded"),
                                "look up bob's key"),
            "the registry is unreachable, so you cannot look up bob's key "
            "now; try again in a moment");
  EXPECT_EQ(RegistryFailureText(absl::InternalError("RST_STREAM 2"), "x"),
            "cannot x: the registry failed to answer (--verbose says why)");
  // The registry's own refusals are its words.
  EXPECT_EQ(RegistryFailureText(
                absl::ResourceExhaustedError("too many Watch streams"), "x"),
            "cannot x: too many Watch streams");
  PeerEvent event = RegistryErrorEvent(down, "list who is online");
  EXPECT_EQ(event.kind, EventKind::kError);
  EXPECT_THAT(event.detail, HasSubstr("failed to connect"));
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  EXPECT_EQ(FormatText(event, style).find("failed"), std::string::npos);
}

TEST(FormatTest, StoredAndLateMessagesSaySo) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  PeerEvent late = Received("bob", "hi");
  late.message.late = true;
  EXPECT_EQ(FormatText(late, style), "[01:02] bob> hi  (delivered late)\n");
  EXPECT_THAT(FormatJson(late), HasSubstr(",\"late\":true}"));
  late.repeated = true;
  EXPECT_EQ(FormatText(late, style),
            "[01:02] bob> hi  (again, after a restart)\n");
  EXPECT_THAT(FormatJson(late), HasSubstr(",\"repeated\":true}"));
  PeerEvent waiting = Received("alice", "yo");
  waiting.kind = EventKind::kSendResult;
  waiting.message.to = "bob";
  waiting.status = SendStatus::kSent;
  waiting.text = "the registry is unreachable";
  EXPECT_EQ(FormatText(waiting, style),
            "* not yet sent to bob: the registry is unreachable; it waits in "
            "your outbox\n");
  EXPECT_THAT(FormatJson(waiting),
              HasSubstr("\"status\":\"sent\",\"reason\":\"the registry"));
  PeerEvent stored = Received("alice", "yo");
  stored.kind = EventKind::kSendResult;
  stored.message.to = "bob";
  stored.status = SendStatus::kStored;
  stored.text = "bob is offline";
  EXPECT_EQ(FormatText(stored, style),
            "* stored for bob: bob is offline; it goes out when bob is back\n");
  EXPECT_THAT(FormatJson(stored), HasSubstr("\"status\":\"stored\""));
}

// Every notice of the delivery path is one short line; the gRPC text rides
// in `detail` (JSON, --verbose), never on the line.
TEST(FormatTest, DeliveryNoticesAreOneLineWithTheDetailApart) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  PeerEvent waiting = Received("alice", "yo");
  waiting.kind = EventKind::kSendResult;
  waiting.message.to = "labpeer";
  waiting.status = SendStatus::kSent;
  waiting.text = "it is unreachable";
  waiting.detail =
      "UNAVAILABLE: failed to connect to all addresses; last error: "
      "UNKNOWN: ipv4:127.0.0.1:1: Failed to connect to remote host";
  EXPECT_EQ(FormatText(waiting, style),
            "* not yet sent to labpeer: it is unreachable; it waits in your "
            "outbox\n");
  EXPECT_THAT(FormatJson(waiting),
              HasSubstr("\"detail\":\"UNAVAILABLE: failed to connect"));
  waiting.message.to = "bob";
  waiting.text = "bob is unreachable and so is the registry";
  EXPECT_EQ(FormatText(waiting, style),
            "* not yet sent to bob: bob is unreachable and so is the registry; "
            "it waits in your outbox\n");
  PeerEvent away = InfoEvent(kRegistryAwayNotice);
  away.detail = "UNAVAILABLE: registry at registry:50050 is unreachable";
  EXPECT_EQ(FormatText(away, style),
            "* the registry is unreachable; chatting goes on with peers you "
            "know, new names and the mailbox wait\n");
  EXPECT_THAT(FormatJson(away), HasSubstr("\"detail\":\"UNAVAILABLE"));
  EXPECT_EQ(FormatText(InfoEvent(kRegistryBackNotice), style),
            "* the registry is back\n");
}

TEST(FormatTextTest, ADeliveryFromTheMailboxRepeatsTheText) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  PeerEvent receipt = MakeEvent(EventKind::kSendResult, "bob");
  receipt.status = SendStatus::kDelivered;
  receipt.message.id = "01a2";
  receipt.message.to = "bob";
  receipt.message.text = "are you there?";
  receipt.text = "from the mailbox";
  EXPECT_EQ(FormatText(receipt, style),
            "* delivered to bob (from the mailbox): are you there?\n");
}

TEST(FormatTextTest, ADeliveryNoKeyProvedSaysUnverified) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  PeerEvent delivered = MakeEvent(EventKind::kSendResult, "davide");
  delivered.status = SendStatus::kDelivered;
  delivered.unverified = true;
  delivered.message.id = "01a2";
  delivered.message.to = "davide";
  delivered.message.text = "ciao";
  // Straight through, yet said: only the lab peer's word vouches for it.
  EXPECT_EQ(FormatText(delivered, style),
            "* delivered (unverified) to davide: ciao\n");
  EXPECT_THAT(FormatJson(delivered),
              HasSubstr("\"status\":\"delivered\",\"unverified\":true"));
  delivered.text = "from the mailbox";
  EXPECT_EQ(FormatText(delivered, style),
            "* delivered (unverified) to davide (from the mailbox): ciao\n");
  delivered.unverified = false;
  EXPECT_THAT(FormatJson(delivered), Not(HasSubstr("unverified")));
}

TEST(FormatTextTest, SeveralLinesOfInfoStaySeveralLines) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  EXPECT_EQ(FormatText(InfoEvent("one\ntwo\n"), style), "* one\n  two\n");
}

TEST(FormatJsonTest, EventsAreOneObjectPerLine) {
  EXPECT_EQ(FormatJson(Received("bob", "say \"hi\"")),
            "{\"event\":\"message\",\"id\":\"id-1\",\"from\":\"bob\","
            "\"to\":\"alice\",\"text\":\"say \\\"hi\\\"\","
            "\"time\":\"2027-01-01T01:02:03.000Z\"}\n");
  PeerEvent sent = Received("alice", "yo");
  sent.kind = EventKind::kSendResult;
  sent.message.to = "bob";
  EXPECT_THAT(FormatJson(sent), HasSubstr("\"status\":\"delivered\""));
  sent.status = SendStatus::kFailed;
  sent.text = "nope";
  EXPECT_THAT(FormatJson(sent),
              HasSubstr("\"status\":\"failed\",\"error\":\"nope\""));
  EXPECT_EQ(FormatJson(MakeEvent(EventKind::kOffline, "bob", "h:1", "left")),
            "{\"event\":\"offline\",\"name\":\"bob\",\"address\":\"h:1\","
            "\"reason\":\"left\"}\n");
}

}  // namespace
}  // namespace chat::peer

namespace chat::peer {
namespace {

TEST(KeyCommandsTest, WhoamiVerifyAndTrustParseAndPrintFingerprints) {
  EXPECT_EQ(ParseLine("/whoami", "").kind, Command::Kind::kWhoami);
  Command verify = ParseLine("/verify bob", "");
  EXPECT_EQ(verify.kind, Command::Kind::kVerify);
  EXPECT_EQ(verify.name, "bob");
  EXPECT_EQ(ParseLine("/trust bob", "").kind, Command::Kind::kTrust);
  EXPECT_EQ(ParseLine("/trust", "").kind, Command::Kind::kError);
  EXPECT_EQ(ParseLine("/verify bob carol", "").kind, Command::Kind::kError);

  Identity alice = Identity::Generate();
  Identity bob = Identity::Generate();
  Identity thief = Identity::Generate();
  EXPECT_NE(WhoamiText("alice", alice.public_key())
                .find(Fingerprint(alice.public_key())),
            std::string::npos);
  KeyView changed{bob.public_key(),
                  std::optional<PublicKey>(thief.public_key()), true};
  const std::string text =
      VerifyText("alice", alice.public_key(), "bob", changed);
  EXPECT_NE(text.find(Fingerprint(alice.public_key())), std::string::npos);
  EXPECT_NE(text.find(Fingerprint(bob.public_key())), std::string::npos);
  EXPECT_NE(text.find(Fingerprint(thief.public_key())), std::string::npos);
  EXPECT_NE(text.find("/trust bob"), std::string::npos);
  KeyView trusted{thief.public_key(),
                  std::optional<PublicKey>(thief.public_key()), false};
  EXPECT_NE(TrustText("bob", trusted).find(Fingerprint(thief.public_key())),
            std::string::npos);
}

TEST(KeyCommandsTest, UnverifiedMessagesAndTheReadyLineSaySo) {
  PeerEvent event = MakeEvent(EventKind::kMessage, "davide");
  event.message.from = "davide";
  event.message.text = "ciao";
  event.message.unverified = true;
  TextStyle style;
  EXPECT_NE(FormatText(event, style).find("(unverified)"), std::string::npos);
  EXPECT_NE(FormatJson(event).find("\"unverified\":true"), std::string::npos);
  PeerEvent ready = MakeEvent(EventKind::kReady, "alice", "127.0.0.1:1");
  ready.fingerprint = "7f3a 9c21";
  EXPECT_NE(FormatText(ready, style).find("7f3a 9c21"), std::string::npos);
  EXPECT_NE(FormatJson(ready).find("\"fingerprint\":\"7f3a 9c21\""),
            std::string::npos);
}

}  // namespace
}  // namespace chat::peer

namespace chat::peer {
namespace {

registry::Entry Online(const std::string& name, bool is_static = false) {
  registry::Entry entry;
  entry.name = name;
  entry.address = "127.0.0.1:1";
  entry.is_static = is_static;
  return entry;
}

TEST(ScreenCommandsTest, PeersPagesAndFollowParse) {
  EXPECT_EQ(ParseLine("/peers", "").text, "");
  EXPECT_EQ(ParseLine("/peers more", "").kind, Command::Kind::kPeers);
  EXPECT_EQ(ParseLine("/peers MORE ", "").text, "more");
  EXPECT_THAT(ParseLine("/peers bob", "").text, HasSubstr("usage: /peers"));
  Command follow = ParseLine("/follow bob", "");
  EXPECT_EQ(follow.kind, Command::Kind::kFollow);
  EXPECT_EQ(follow.name, "bob");
  EXPECT_EQ(ParseLine("/follow", "").kind, Command::Kind::kFollow);
  EXPECT_EQ(ParseLine("/follow", "").name, "");
  EXPECT_EQ(ParseLine("/unfollow bob", "").kind, Command::Kind::kUnfollow);
  EXPECT_THAT(ParseLine("/unfollow", "").text, HasSubstr("usage: /unfollow"));
  EXPECT_THAT(ParseLine("/follow a b", "").text, HasSubstr("usage: /follow"));
  EXPECT_THAT(HelpText(), HasSubstr("/peers more"));
  EXPECT_THAT(HelpText(), HasSubstr("/unfollow NAME"));
}

TEST(ScreenFormatTest, TheSummaryIsOneLineWhateverTheRegistryHolds) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  PeerEvent summary = MakeEvent(EventKind::kSummary);
  summary.count = 12345;
  EXPECT_EQ(FormatText(summary, style), "* 12,345 online, /peers to list\n");
  EXPECT_EQ(FormatJson(summary),
            "{\"event\":\"summary\",\"online\":12345,\"following\":[]}\n");
  summary.count = 1000000;
  summary.peers = {Online("bob"), Online("lab", true)};
  EXPECT_EQ(FormatText(summary, style),
            "* 1,000,000 online, /peers to list; of those you follow: bob, lab "
            "(static)\n");
  EXPECT_THAT(FormatJson(summary),
              HasSubstr("\"following\":[{\"name\":\"bob\",\"address\":"
                        "\"127.0.0.1:1\",\"static\":false},{\"name\":\"lab\""));
  // However many of those followed are online: ten names and a count.
  summary.peers.clear();
  for (int i = 0; i < 25; ++i)
    summary.peers.push_back(Online("p" + std::to_string(i)));
  const std::string line = FormatText(summary, style);
  EXPECT_THAT(line, HasSubstr("p9 and 15 more\n"));
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  summary.peers.clear();
  summary.count = 0;
  EXPECT_EQ(FormatText(summary, style), "* nobody else is online\n");
  summary.count = -1;  // A registry that does not count.
  EXPECT_EQ(FormatText(summary, style), "* /peers lists who is online\n");
  EXPECT_EQ(FormatJson(summary), "{\"event\":\"summary\",\"following\":[]}\n");
}

TEST(ScreenFormatTest, APageOfPeersSaysWhereItIsAndWhatComesNext) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  PeerEvent page = MakeEvent(EventKind::kPeers);
  page.peers = {Online("alice"), Online("bob"), Online("carol")};
  page.page = 1;
  page.count = 2;
  // One page holds everyone: as before.
  EXPECT_EQ(FormatText(page, style), "* online: bob, carol\n");
  page.more = true;
  page.count = 12345;
  EXPECT_EQ(FormatText(page, style),
            "* online, page 1 (12,345 in all): bob, carol; /peers more for the "
            "next page\n");
  EXPECT_EQ(FormatJson(page),
            "{\"event\":\"peers\",\"peers\":[{\"name\":\"alice\",\"address\":"
            "\"127.0.0.1:1\",\"static\":false},{\"name\":\"bob\",\"address\":"
            "\"127.0.0.1:1\",\"static\":false},{\"name\":\"carol\","
            "\"address\":\"127.0.0.1:1\",\"static\":false}],\"page\":1,"
            "\"more\":true,\"online\":12345}\n");
  page.page = 3;
  page.more = false;
  page.peers = {Online("zed")};
  EXPECT_EQ(FormatText(page, style),
            "* online, page 3, the last (12,345 in all): zed\n");
  page.peers.clear();
  page.peers = {Online("alice")};
  EXPECT_EQ(FormatText(page, style),
            "* online, page 3, the last (12,345 in all): nobody else\n");
  page.page = 1;
  EXPECT_EQ(FormatText(page, style), "* nobody else is online\n");
}

TEST(HistoryCommandsTest, HistoryAndForgetParse) {
  Command c = ParseLine("/history", "bob");
  EXPECT_EQ(c.kind, Kind::kHistory);
  EXPECT_EQ(c.name, "bob");
  EXPECT_EQ(c.count, 20);
  c = ParseLine("/history bob 5", "");
  EXPECT_EQ(c.kind, Kind::kHistory);
  EXPECT_EQ(c.name, "bob");
  EXPECT_EQ(c.count, 5);
  c = ParseLine("/history carol", "bob");
  EXPECT_EQ(c.name, "carol");
  EXPECT_EQ(c.count, 20);
  c = ParseLine("/HISTORY 7", "bob");  // A number alone: N, with the partner.
  EXPECT_EQ(c.kind, Kind::kHistory);
  EXPECT_EQ(c.name, "bob");
  EXPECT_EQ(c.count, 7);
  EXPECT_EQ(ParseLine("/history bob 1000", "").count, 1000);
  c = ParseLine("/forget bob", "carol");
  EXPECT_EQ(c.kind, Kind::kForget);
  EXPECT_EQ(c.name, "bob");
  const std::vector<std::string>& words = CommandWords();
  EXPECT_NE(std::find(words.begin(), words.end(), "/history"), words.end());
  EXPECT_NE(std::find(words.begin(), words.end(), "/forget"), words.end());
  EXPECT_THAT(HelpText(), HasSubstr("/history [NAME] [N]"));
}

TEST(HistoryCommandsTest, BadCountsAndMissingNamesSayWhatIsWrong) {
  for (const char* line :
       {"/history bob 0", "/history bob 1001", "/history bob -3",
        "/history bob five", "/history 0", "/history bob 99999999999"}) {
    Command c = ParseLine(line, "bob");
    EXPECT_EQ(c.kind, Kind::kError) << line;
    EXPECT_THAT(c.text, HasSubstr("/history shows 1 to 1000 messages")) << line;
  }
  EXPECT_THAT(ParseLine("/history bob 5 more", "").text,
              HasSubstr("usage: /history [NAME] [N]"));
  EXPECT_THAT(ParseLine("/history", "").text, HasSubstr("no partner yet"));
  EXPECT_THAT(ParseLine("/history 5", "").text, HasSubstr("no partner yet"));
  EXPECT_THAT(ParseLine("/forget", "bob").text,
              HasSubstr("usage: /forget NAME"));
  EXPECT_THAT(ParseLine("/forget bob carol", "").text,
              HasSubstr("usage: /forget NAME"));
}

HistoryEntry Said(bool ours, const std::string& text, SendStatus status,
                  int minute) {
  HistoryEntry entry;
  entry.ours = ours;
  entry.message.id = "id-" + text;
  entry.message.from = ours ? "alice" : "bob";
  entry.message.to = ours ? "bob" : "alice";
  entry.message.text = text;
  entry.message.sent_at = absl::FromUnixSeconds(1798761600 + minute * 60);
  entry.status = status;
  return entry;
}

PeerEvent HistoryOf(std::vector<HistoryEntry> entries, int64_t total) {
  PeerEvent event = MakeEvent(EventKind::kHistory, "bob");
  event.history = std::move(entries);
  event.count = total;
  return event;
}

TEST(HistoryFormatTest, OneLineEachWithDateTimeAndState) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  HistoryEntry theirs = Said(false, "hi alice", SendStatus::kSent, 2);
  theirs.message.late = true;
  HistoryEntry plain = Said(false, "from the lab", SendStatus::kSent, 3);
  plain.message.unverified = true;
  plain.message.sent_at = absl::InfinitePast();  // A lab peer: when it came.
  plain.message.received_at = absl::FromUnixSeconds(1798761600 + 4 * 60);
  PeerEvent event =
      HistoryOf({Said(true, "hi bob", SendStatus::kRead, 1), theirs, plain,
                 Said(true, "still there?", SendStatus::kStored, 5),
                 Said(true, "gone", SendStatus::kExpired, 6)},
                12);
  EXPECT_EQ(FormatText(event, style),
            "* the last 5 of 12 messages with bob:\n"
            "[2027-01-01 00:01] alice> hi bob  (read)\n"
            "[2027-01-01 00:02] bob> hi alice  (delivered late)\n"
            "[2027-01-01 00:04] bob> from the lab  (unverified)\n"
            "[2027-01-01 00:05] alice> still there?  (stored)\n"
            "[2027-01-01 00:06] alice> gone  (expired)\n");
  event = HistoryOf({Said(true, "hi", SendStatus::kDelivered, 1)}, 1);
  EXPECT_EQ(FormatText(event, style),
            "* 1 message with bob:\n"
            "[2027-01-01 00:01] alice> hi  (delivered)\n");
  EXPECT_EQ(FormatText(HistoryOf({}, 0), style), "* no history with bob\n");
  // /chat's preview: the lines alone.
  event.preview = true;
  EXPECT_EQ(FormatText(event, style),
            "[2027-01-01 00:01] alice> hi  (delivered)\n");
  // Their text is untrusted.
  event = HistoryOf({Said(false, "x\033[2Jy", SendStatus::kSent, 1)}, 1);
  EXPECT_EQ(FormatText(event, style).find('\033'), std::string::npos);
}

TEST(HistoryFormatTest, AGroupMessageSaysHowManyMembersHaveIt) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  HistoryEntry group = Said(true, "hi all", SendStatus::kStored, 1);
  group.copies = 3;
  group.delivered_copies = 2;
  PeerEvent event = HistoryOf({group}, 1);
  EXPECT_THAT(FormatText(event, style),
              HasSubstr("alice> hi all  (delivered to 2 of 3)"));
  EXPECT_THAT(FormatJson(event),
              HasSubstr("\"copies\":3,\"delivered_copies\":2"));
  group.delivered_copies = 3;
  group.status = SendStatus::kDelivered;
  EXPECT_THAT(FormatText(HistoryOf({group}, 1), style),
              HasSubstr("alice> hi all  (delivered to all)"));
  EXPECT_THAT(FormatJson(HistoryOf({group}, 1)), HasSubstr("\"read_by\":[]"));
}

TEST(HistoryFormatTest, AGroupMessageNamesTheMembersWhoReadIt) {
  TextStyle style{false, "alice", absl::UTCTimeZone()};
  HistoryEntry group = Said(true, "hi all", SendStatus::kDelivered, 1);
  group.copies = 3;
  group.delivered_copies = 2;
  group.read_by = {"bob"};
  EXPECT_THAT(FormatText(HistoryOf({group}, 1), style),
              HasSubstr("alice> hi all  (delivered to 2 of 3, read by bob)"));
  group.delivered_copies = 3;
  group.read_by = {"bob", "carol"};
  PeerEvent event = HistoryOf({group}, 1);
  EXPECT_THAT(
      FormatText(event, style),
      HasSubstr("alice> hi all  (delivered to all, read by bob, carol)"));
  EXPECT_THAT(
      FormatJson(event),
      HasSubstr("\"delivered_copies\":3,\"read_by\":[\"bob\",\"carol\"]"));
  // Every member read it: still by name, never "read to all".
  group.status = SendStatus::kRead;
  group.read_by = {"bob", "carol", "dave"};
  EXPECT_THAT(FormatText(HistoryOf({group}, 1), style),
              HasSubstr("(delivered to all, read by bob, carol, dave)"));
  // A name is untrusted text too.
  group.read_by = {"x\033[2Jy"};
  EXPECT_EQ(FormatText(HistoryOf({group}, 1), style).find('\033'),
            std::string::npos);
}

// The live state of a group copy: `read` names the member and the group.
TEST(HistoryFormatTest, AGroupCopysReadEventNamesItsMember) {
  PeerEvent event = MakeEvent(EventKind::kSendResult, "bob");
  event.status = SendStatus::kRead;
  event.message.id = "g1";
  event.message.from = "alice";
  event.message.to = "bob";
  event.message.group_id = "0123456789abcdef0123456789abcdef";
  event.group = "team";
  const std::string json = FormatJson(event);
  EXPECT_THAT(json, HasSubstr("\"group\":\"team\""));
  EXPECT_THAT(json, HasSubstr("\"to\":\"bob\",\"status\":\"read\""));
  EXPECT_EQ(FormatText(event, TextStyle{false, "alice", absl::UTCTimeZone()}),
            "");
}

TEST(HistoryFormatTest, JsonListsTheMessagesWithTheirStates) {
  HistoryEntry theirs = Said(false, "hi alice", SendStatus::kSent, 2);
  theirs.message.late = true;
  PeerEvent event = HistoryOf(
      {Said(true, "hi \"bob\"", SendStatus::kDelivered, 1), theirs}, 2);
  EXPECT_EQ(FormatJson(event),
            "{\"event\":\"history\",\"name\":\"bob\",\"messages\":["
            "{\"id\":\"id-hi \\\"bob\\\"\",\"direction\":\"out\",\"from\":"
            "\"alice\",\"to\":\"bob\",\"text\":\"hi \\\"bob\\\"\",\"time\":"
            "\"2027-01-01T00:01:00.000Z\",\"status\":\"delivered\"},"
            "{\"id\":\"id-hi alice\",\"direction\":\"in\",\"from\":\"bob\","
            "\"to\":\"alice\",\"text\":\"hi alice\",\"time\":"
            "\"2027-01-01T00:02:00.000Z\",\"status\":\"shown\",\"late\":true}"
            "],\"total\":2}\n");
  event.preview = true;
  EXPECT_THAT(FormatJson(event), HasSubstr(",\"preview\":true}"));
}

}  // namespace
}  // namespace chat::peer
