// A registry serving TLS on loopback, called by real clients: a plaintext
// client and one with the wrong CA are refused, one with the right CA is
// served; with mutual TLS only a client holding a certificate from the
// client CA gets in. Also the name check peers and chatctl's greet rely on
// (SetTlsServerName). Certificates: tests/common/testdata (README there).

#include "common/tls.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "registry/client/registry_client.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/testing/status_matchers.h"

namespace chat::registry {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;

std::string TestData(const std::string& name) {
  return std::string(CHAT_TLS_TESTDATA) + "/" + name;
}

TlsClientFiles Client(const std::string& ca, const std::string& cert = "") {
  TlsClientFiles files;
  files.ca_file = ca.empty() ? "" : TestData(ca);
  if (!cert.empty()) {
    files.cert_file = TestData(cert + ".crt");
    files.key_file = TestData(cert + ".key");
  }
  return files;
}

class RegistryTlsTest : public ::testing::Test {
 protected:
  void Start(bool mutual) {
    auto store = OpenSqliteStore(":memory:", RealClock());
    ASSERT_THAT(store, IsOk());
    TlsServerFiles files;
    files.cert_file = TestData("server.crt");
    files.key_file = TestData("server.key");
    if (mutual) files.client_ca_file = TestData("ca.crt");
    auto credentials = MakeServerCredentials(files);
    ASSERT_THAT(credentials, IsOk());
    RegistryServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.credentials = *credentials;
    auto server = RegistryServer::Start(*std::move(store), options);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
  }

  // Resolve of a name nobody holds: kNotFound means the call was served.
  absl::Status Call(const TlsClientFiles& files,
                    const std::string& server_name = "") {
    auto credentials = MakeChannelCredentials(files);
    EXPECT_THAT(credentials, IsOk());
    if (!credentials.ok()) return credentials.status();
    grpc::ChannelArguments args;
    if (!server_name.empty()) SetTlsServerName(args, server_name);
    const std::string target = absl::StrCat("127.0.0.1:", server_->port());
    RegistryClient client(grpc::CreateCustomChannel(target, *credentials, args),
                          target, Millis(10000));
    return client.Resolve("nobody").status();
  }

  std::unique_ptr<RegistryServer> server_;
};

TEST_F(RegistryTlsTest, ServesAClientThatVerifiesWithTheCa) {
  Start(/*mutual=*/false);
  EXPECT_THAT(Call(Client("ca.crt")), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RegistryTlsTest, RefusesAPlaintextClient) {
  Start(/*mutual=*/false);
  EXPECT_THAT(Call(Client("")), StatusIs(absl::StatusCode::kUnavailable));
  // And still serves a TLS client after it.
  EXPECT_THAT(Call(Client("ca.crt")), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RegistryTlsTest, AClientWithAnotherCaRefusesTheServer) {
  Start(/*mutual=*/false);
  EXPECT_THAT(Call(Client("other_ca.crt")),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(RegistryTlsTest, TheCertificateMustNameTheServer) {
  Start(/*mutual=*/false);
  // server.crt names "server" (and localhost, 127.0.0.1), not "client".
  EXPECT_THAT(Call(Client("ca.crt"), "server"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Call(Client("ca.crt"), "client"),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(RegistryTlsTest, MutualTlsRefusesAClientWithoutACertificate) {
  Start(/*mutual=*/true);
  EXPECT_THAT(Call(Client("ca.crt")), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(Call(Client("ca.crt", "other_client")),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(Call(Client("ca.crt", "client")),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace chat::registry
