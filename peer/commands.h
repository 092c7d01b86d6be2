// What a line typed into the peer means: a message, or a command.

#ifndef CHAT_PEER_COMMANDS_H_
#define CHAT_PEER_COMMANDS_H_

#include <optional>
#include <string>
#include <vector>

#include "common/identity.h"
#include "peer/group_text.h"
#include "peer/key_book.h"

namespace chat::peer {

struct Command {
  enum class Kind {
    kNothing,   // An empty line.
    kSend,      // Send `text` to `name`.
    kChat,      // Make `name` the partner for plain lines.
    kPeers,     // List who is online, a page at a time: the first page, or
                // the next one when `text` is "more".
    kFollow,    // Follow `name`; without a name, list whom we follow.
    kUnfollow,  // Stop following `name`.
    kWhoami,    // Our name and key fingerprint.
    kVerify,    // The fingerprints to compare with `name`.
    kTrust,     // Accept the key the registry lists for `name`.
    kHistory,   // The last `count` messages with `name`.
    kForget,    // Erase the history with `name`.
    kGroup,     // A group command: `verb` on the group `name` with `names`
                // (create: `name` is the new group's display name); verb
                // "chat" makes the group the partner.
    kGroups,    // List our groups with their members.
    kHelp,
    kQuit,
    kError,  // `text` says what is wrong with the line.
  };
  Kind kind = Kind::kNothing;
  std::string name;
  std::string text;
  bool to_partner = false;  // A plain line, sent to the partner.
  int count = 0;            // kHistory: how many messages.
  std::string verb;         // kGroup: create, add, remove, owner, leave, chat.
  std::vector<std::string> names;  // kGroup: the members named.
};

// Parses one input line. `partner` is the current partner ("" for none).
//   @bob hi        send "hi" to bob
//   /msg bob hi    the same
//   /chat bob      bob becomes the partner
//   /whoami        our name and key fingerprint
//   /verify bob    our fingerprint and bob's (pinned, and listed now)
//   /trust bob     accept the key the registry lists for bob now
//   /peers         the first page of who is online; /peers more: the next
//   /follow bob    hear when bob comes and goes; /follow: whom we follow
//   /unfollow bob  no longer
//   /history [bob] [N]  the last N (default 20, at most 1000) messages with
//                  bob (default: the partner); a number alone is N
//   /forget bob    erase the history with bob
//   #team hi       send "hi" to the group team (also /msg #team hi); a
//                  group may stand wherever a name does in /chat,
//                  /history and /forget, written #team
//   /group create team bob carol   a group with us (its owner), bob, carol
//   /group add team dave, /group remove team dave (the owner only)
//   /group owner team bob          hand the group over
//   /group leave team              leave (the owner: hand over first; the
//                                  last member ends it)
//   /group team    the group becomes the partner (as /chat #team)
//   /groups        our groups, their members and fingerprints
//   /help /quit (also /exit)
//   anything else  sent to the partner, if there is one
// A line starting with "//" sends the rest, starting with "/", to the partner.
Command ParseLine(const std::string& line, const std::string& partner);

// The commands, for help and completion.
const std::vector<std::string>& CommandWords();

// The help text, one command per line.
std::string HelpText();

// What /whoami prints.
std::string WhoamiText(const std::string& own_name, const PublicKey& own_key);

// What /verify NAME prints: our fingerprint, and `name`'s as pinned and as
// the registry lists it now, to compare out of band.
std::string VerifyText(const std::string& own_name, const PublicKey& own_key,
                       const std::string& name, const KeyView& view);

// What /trust NAME prints once it worked.
std::string TrustText(const std::string& name, const KeyView& view);

}  // namespace chat::peer

#endif  // CHAT_PEER_COMMANDS_H_
