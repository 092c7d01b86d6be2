// common/tls: PEM files read with errors that name the file, and the rules
// for which files go together. The handshakes themselves are tested through
// a real registry in tests/registry/server/tls_test.cc, certificates by role in
// tests/e2e/tls_e2e.sh.

#include "common/tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string TestData(const std::string& name) {
  return std::string(CHAT_TLS_TESTDATA) + "/" + name;
}

class TlsTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = dir_.File(name);
    std::ofstream(path) << contents;
    return path;
  }
  ::chat::testing::TempDir dir_;
};

TEST_F(TlsTest, ReadsACertificateAndAKey) {
  EXPECT_THAT(
      ReadPemFile(TestData("server.crt"), PemKind::kCertificate, "--tls-cert"),
      IsOk());
  EXPECT_THAT(
      ReadPemFile(TestData("server.key"), PemKind::kPrivateKey, "--tls-key"),
      IsOk());
}

TEST_F(TlsTest, AMissingFileIsNamed) {
  const std::string path = dir_.File("nope.crt");
  EXPECT_THAT(ReadPemFile(path, PemKind::kCertificate, "--tls-ca"),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("--tls-ca file " + path),
                             HasSubstr("No such file"))));
}

TEST_F(TlsTest, ADirectoryIsNotAFile) {
  const std::string sub = dir_.File("sub");
  std::filesystem::create_directories(sub);
  absl::StatusOr<std::string> read =
      ReadPemFile(sub, PemKind::kCertificate, "--tls-ca");
  EXPECT_FALSE(read.ok());
  EXPECT_THAT(std::string(read.status().message()), HasSubstr(sub));
}

TEST_F(TlsTest, BadPemIsRefusedNamingTheFile) {
  const std::string garbage = Write("garbage.crt", "not a certificate\n");
  EXPECT_THAT(ReadPemFile(garbage, PemKind::kCertificate, "--tls-cert"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--tls-cert file " + garbage),
                             HasSubstr("no PEM certificate"))));
  const std::string empty = Write("empty.crt", "");
  EXPECT_THAT(
      ReadPemFile(empty, PemKind::kCertificate, "--tls-cert"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("it is empty")));
  // Cut short: a BEGIN line without its END.
  const std::string cut =
      Write("cut.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n");
  EXPECT_THAT(ReadPemFile(cut, PemKind::kCertificate, "--tls-cert"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(TlsTest, AKeyWhereACertificateShouldBeIsRefused) {
  EXPECT_THAT(
      ReadPemFile(TestData("server.key"), PemKind::kCertificate, "--tls-cert"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("no PEM certificate")));
  EXPECT_THAT(
      ReadPemFile(TestData("server.crt"), PemKind::kPrivateKey, "--tls-key"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("no PEM private key")));
}

TEST_F(TlsTest, NoFilesMeansPlaintext) {
  EXPECT_THAT(MakeServerCredentials(TlsServerFiles()), IsOk());
  EXPECT_THAT(MakeChannelCredentials(TlsClientFiles()), IsOk());
}

TEST_F(TlsTest, ServerNeedsBothCertificateAndKey) {
  TlsServerFiles missing_key;
  missing_key.cert_file = TestData("server.crt");
  EXPECT_THAT(MakeServerCredentials(missing_key),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--tls-cert and --tls-key go together")));
  TlsServerFiles missing_cert;
  missing_cert.key_file = TestData("server.key");
  EXPECT_THAT(MakeServerCredentials(missing_cert),
              StatusIs(absl::StatusCode::kInvalidArgument));
  TlsServerFiles client_ca_alone;
  client_ca_alone.client_ca_file = TestData("ca.crt");
  EXPECT_THAT(MakeServerCredentials(client_ca_alone),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--tls-client-ca needs --tls-cert")));
}

TEST_F(TlsTest, ServerWithAMissingKeyFileNamesIt) {
  TlsServerFiles files;
  files.cert_file = TestData("server.crt");
  files.key_file = dir_.File("server.key");
  EXPECT_THAT(MakeServerCredentials(files),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("--tls-key file " + files.key_file)));
}

TEST_F(TlsTest, ServerAndMutualCredentials) {
  TlsServerFiles files;
  files.cert_file = TestData("server.crt");
  files.key_file = TestData("server.key");
  EXPECT_THAT(MakeServerCredentials(files), IsOk());
  files.client_ca_file = TestData("ca.crt");
  EXPECT_THAT(MakeServerCredentials(files), IsOk());
  files.client_ca_file = Write("bad_ca.crt", "junk");
  EXPECT_THAT(MakeServerCredentials(files),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--tls-client-ca file")));
}

TEST_F(TlsTest, ClientCertificateRules) {
  TlsClientFiles files;
  files.ca_file = TestData("ca.crt");
  EXPECT_THAT(MakeChannelCredentials(files), IsOk());
  files.cert_file = TestData("client.crt");
  EXPECT_THAT(
      MakeChannelCredentials(files),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("go together")));
  files.key_file = TestData("client.key");
  EXPECT_THAT(MakeChannelCredentials(files), IsOk());
  files.ca_file.clear();
  EXPECT_THAT(MakeChannelCredentials(files),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("needs --tls-ca")));
  TlsClientFiles missing_ca;
  missing_ca.ca_file = dir_.File("ca.crt");
  EXPECT_THAT(MakeChannelCredentials(missing_ca),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("--tls-ca file " + missing_ca.ca_file)));
}

// The name a channel's TLS check expects instead of the host it dials, if
// any (the target name override in `args`).
std::string ExpectedServerName(grpc::ChannelArguments& args) {
  grpc_channel_args c_args = args.c_channel_args();
  for (size_t i = 0; i < c_args.num_args; ++i) {
    if (std::string(c_args.args[i].key) == GRPC_SSL_TARGET_NAME_OVERRIDE_ARG) {
      return c_args.args[i].value.string;
    }
  }
  return "";
}

TEST(RoleNamesTest, PeersAndGreetersAreNamedUnderInvalid) {
  EXPECT_EQ(PeerCertificateName("alice"), "alice.peer.invalid");
  EXPECT_EQ(GreeterCertificateName("greeter"), "greeter.greeter.invalid");
  // A peer named like a host still gets a role name, never the host.
  EXPECT_EQ(PeerCertificateName("localhost"), "localhost.peer.invalid");
}

TEST(GuardTlsHostCheckTest, AnOrdinaryHostIsCheckedAsItIs) {
  for (const char* address :
       {"localhost:50050", "127.0.0.1:50050", "registry:50050", "[::1]:50050",
        "registry.example.org:443", "invalid.example:1"}) {
    grpc::ChannelArguments args;
    GuardTlsHostCheck(args, address);
    EXPECT_EQ(ExpectedServerName(args), "") << address;
  }
}

TEST(GuardTlsHostCheckTest, AHostUnderInvalidMatchesNoRoleCertificate) {
  for (const char* address :
       {"alice.peer.invalid:50050", "ALICE.Peer.Invalid:50050",
        "greeter.greeter.invalid.:1", "invalid:1", "x.invalid"}) {
    grpc::ChannelArguments args;
    GuardTlsHostCheck(args, address);
    const std::string expected = ExpectedServerName(args);
    EXPECT_NE(expected, "") << address;
    EXPECT_NE(expected, PeerCertificateName("alice")) << address;
    EXPECT_NE(expected, GreeterCertificateName("greeter")) << address;
  }
}

}  // namespace
}  // namespace chat
