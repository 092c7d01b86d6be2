#include "registry/names.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ValidateNameTest, AcceptsTheDocumentedAlphabet) {
  for (const char* name :
       {"a", "Z", "7", "alice", "Bob-2", "node_1.eu", "x.y-z"}) {
    EXPECT_THAT(ValidateName(name), IsOk()) << name;
  }
  EXPECT_THAT(ValidateName(std::string(64, 'a')), IsOk());
}

TEST(ValidateNameTest, RejectsWithAMessageThatSaysWhy) {
  EXPECT_THAT(ValidateName(""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(ValidateName(std::string(65, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("64")));
  EXPECT_THAT(ValidateName("-alice"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("start")));
  EXPECT_THAT(ValidateName(".alice"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  for (const char* name :
       {"al ice", "al/ice", "al:ice", "a\xC3\xA9", "a\nb", "a@b"}) {
    EXPECT_THAT(ValidateName(name), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("may contain only")))
        << name;
  }
}

TEST(NameKeyTest, IsCaseInsensitive) {
  EXPECT_EQ(NameKey("Alice"), NameKey("aLICE"));
  EXPECT_EQ(NameKey("Node-1.EU"), "node-1.eu");
}

TEST(ValidateAddressTest, AcceptsDnsIpv4AndBracketedIpv6) {
  for (const char* address :
       {"localhost:50050", "peer-1.chat.example.com:1", "127.0.0.1:65535",
        "[::1]:50050", "registry:50050", "example.com.:80",
        "chat_registry_1:50050"}) {
    EXPECT_THAT(ValidateAddress(address), IsOk()) << address;
  }
}

TEST(ValidateAddressTest, RejectsWithAMessageThatSaysWhy) {
  struct Case {
    const char* address;
    const char* why;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"", "empty"},
           {"localhost", "host:port"},
           {"localhost:0", "1-65535"},
           {"localhost:65536", "1-65535"},
           {"localhost:http", "1-65535"},
           {"localhost:-1", "1-65535"},
           {"localhost:", "1-65535"},
           {":50050", "empty"},
           {"::1:50050", "brackets"},
           {"[::1:50050", "closing"},
           {"[::zz]:50050", "IPv6"},
           {"256.1.1.1:80", "IPv4"},
           {"1.2.3:80", "IPv4"},
           {"bad host:80", "may contain only"},
           {"-bad.example:80", "'-'"},
           {"a..b:80", "label"},
       }) {
    EXPECT_THAT(ValidateAddress(c.address),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.why)))
        << c.address;
  }
  // Found by names_fuzz: inet_pton stops at a NUL, so what followed one
  // inside the brackets was accepted (and went on to every peer).
  EXPECT_THAT(ValidateAddress(std::string("[::b\0\0\0]:50050", 14)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("IPv6")));
  EXPECT_THAT(ValidateAddress(std::string("[::1\0junk]:50050", 16)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("IPv6")));
  EXPECT_THAT(ValidateAddress(std::string(300, 'a') + ":80"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateAddress(std::string(64, 'a') + ".com:80"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("63")));
}

TEST(NamesTest, APrefixIsEmptyOrANameCutShort) {
  EXPECT_THAT(ValidatePrefix(""), IsOk());
  EXPECT_THAT(ValidatePrefix("al"), IsOk());
  EXPECT_THAT(ValidatePrefix("Alice.2"), IsOk());
  EXPECT_THAT(ValidatePrefix("-x"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("bad prefix: name \"-x\" must start")));
  EXPECT_THAT(
      ValidatePrefix("a b"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad prefix")));
  EXPECT_THAT(ValidatePrefix(std::string(65, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace chat::registry
