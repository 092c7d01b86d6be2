// chatctl's commands against a real registry on 127.0.0.1, port 0, called
// through RunChatctl() with string streams: output formats, exit codes and
// the watch's reconnect.

#include "registry/chatctl/chatctl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <streambuf>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "common/identity.h"
#include "common/random.h"
#include "proto/greet.grpc.pb.h"
#include "registry/client/registry_client.h"
#ifdef CHAT_ETCD
#include "registry/etcd/etcd_store.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/temp_dir.h"
#endif
#include "registry/mailbox/sqlite_mailbox.h"
#include "registry/server/server.h"
#include "registry/store/sqlite_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wait.h"

namespace chat::chatctl {
namespace {

using ::chat::registry::RegistryClient;
using ::chat::registry::RegistryServer;
using ::chat::registry::RegistryServerOptions;
using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::chat::testing::WaitFor;
using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

// An ostream target that one thread writes (a running watch) while the test
// thread reads it.
// A write that brings `text` into it can be held until Release(), so a test
// can act while the writer waits at a known point.
class SharedBuffer final : public std::streambuf {
 public:
  std::string str() const {
    absl::MutexLock lock(&mu_);
    return text_;
  }

  // From now on, the write that brings `text` in (and every later one)
  // waits until Release().
  void HoldAt(std::string text) {
    absl::MutexLock lock(&mu_);
    hold_at_ = std::move(text);
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    hold_at_.clear();
  }

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return 0;
    absl::MutexLock lock(&mu_);
    text_.push_back(traits_type::to_char_type(c));
    mu_.Await(absl::Condition(this, &SharedBuffer::MayGoOn));
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    absl::MutexLock lock(&mu_);
    text_.append(s, static_cast<size_t>(n));
    mu_.Await(absl::Condition(this, &SharedBuffer::MayGoOn));
    return n;
  }

 private:
  bool MayGoOn() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return hold_at_.empty() || text_.find(hold_at_) == std::string::npos;
  }

  mutable absl::Mutex mu_;
  std::string text_ ABSL_GUARDED_BY(mu_);
  std::string hold_at_ ABSL_GUARDED_BY(mu_);
};

// A `chatctl watch` running on its own thread until Stop().
class BackgroundWatch {
 public:
  explicit BackgroundWatch(ChatctlInvocation invocation)
      : invocation_(std::move(invocation)),
        out_(&out_buffer_),
        err_(&err_buffer_) {
    invocation_.interrupt = &interrupt_;
    thread_ =
        std::thread([this] { code_ = RunChatctl(invocation_, out_, err_); });
  }
  ~BackgroundWatch() { Stop(); }

  // The exit code.
  int Stop() {
    err_buffer_.Release();
    interrupt_.Trigger();
    if (thread_.joinable()) thread_.join();
    return code_;
  }

  std::string out() const { return out_buffer_.str(); }
  std::string err() const { return err_buffer_.str(); }

  // Holds the watch when it writes `text` to stderr, until ReleaseErr().
  void HoldErrAt(const std::string& text) { err_buffer_.HoldAt(text); }
  void ReleaseErr() { err_buffer_.Release(); }

  bool WaitForOut(const std::string& text) {
    return WaitFor([&] { return out().find(text) != std::string::npos; });
  }
  bool WaitForErr(const std::string& text, size_t times = 1) {
    return WaitFor([&] { return Count(err(), text) >= times; });
  }

  static size_t Count(const std::string& haystack, const std::string& needle) {
    size_t count = 0;
    for (size_t at = haystack.find(needle); at != std::string::npos;
         at = haystack.find(needle, at + 1)) {
      ++count;
    }
    return count;
  }

 private:
  ChatctlInvocation invocation_;
  Interrupt interrupt_;
  SharedBuffer out_buffer_;
  SharedBuffer err_buffer_;
  std::ostream out_;
  std::ostream err_;
  int code_ = -1;
  std::thread thread_;
};

// A port on 127.0.0.1 that nothing listens on: bound (so nobody else gets
// it) but never listen()ed, so connecting is refused.
class UnusedPort {
 public:
  UnusedPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof(address);
    if (fd_ >= 0 &&
        ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) ==
            0) {
      port_ = ntohs(address.sin_port);
    }
  }
  ~UnusedPort() {
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class FakeGreeter final : public GreetService::Service {
 public:
  grpc::Status Greet(grpc::ServerContext* /*context*/,
                     const GreetRequest* request,
                     GreetResponse* response) override {
    if (request->name().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "name is empty");
    }
    response->set_message("Hello, " + request->name() + "!");
    return grpc::Status::OK;
  }
};

constexpr char kAdminToken[] = "chatctl-test-admin-token";

class ChatctlTest : public ::testing::Test {
 protected:
  ChatctlTest()
      : db_path_(std::filesystem::temp_directory_path() /
                 ("chatctl-test-" + RandomHex(8) + ".db")),
        token_path_(db_path_ + ".token") {
    std::ofstream(token_path_) << kAdminToken << "\n";
  }

  ~ChatctlTest() override {
    server_.reset();
    for (const char* suffix : {"", "-wal", "-shm", ".lock", ".token"}) {
      std::filesystem::remove(db_path_ + suffix);
    }
    for (const char* suffix : {"", "-wal", "-shm", ".lock"}) {
      std::filesystem::remove(registry::MailboxPath(db_path_) + suffix);
    }
  }

  void SetUp() override { StartRegistry("127.0.0.1:0"); }

  void StartRegistry(const std::string& listen_address) {
    auto store = registry::OpenSqliteStore(db_path_, RealClock());
    ASSERT_THAT(store, IsOk());
    auto mailbox = registry::OpenSqliteMailbox(db_path_, RealClock());
    ASSERT_THAT(mailbox, IsOk());
    RegistryServerOptions options;
    options.listen_address = listen_address;
    options.expiry_interval = Millis(10);
    options.admin_token = kAdminToken;
    auto server =
        RegistryServer::Start(*std::move(store), *std::move(mailbox), options);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    client_ = std::make_unique<RegistryClient>(server_->InProcessChannel(),
                                               "in-process", Millis(5000));
    client_->SetAdminToken(kAdminToken);
  }

  ChatctlInvocation Invocation(const std::string& command,
                               std::vector<std::string> args = {}) const {
    ChatctlInvocation invocation;
    invocation.command = command;
    invocation.args = std::move(args);
    invocation.registry = address_;
    invocation.admin_token_file = token_path_;
    invocation.reconnect_initial = Millis(10);
    invocation.reconnect_max = Millis(100);
    return invocation;
  }

  static Result Run(const ChatctlInvocation& invocation) {
    std::ostringstream out;
    std::ostringstream err;
    Result result;
    result.code = RunChatctl(invocation, out, err);
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  Result Run(const std::string& command, std::vector<std::string> args = {},
             bool json = false) const {
    ChatctlInvocation invocation = Invocation(command, std::move(args));
    invocation.json = json;
    return Run(invocation);
  }

  Result RunStatic(const std::string& command, std::vector<std::string> args,
                   bool json = false) const {
    ChatctlInvocation invocation = Invocation(command, std::move(args));
    invocation.is_static = true;
    invocation.json = json;
    return Run(invocation);
  }

  // A lease of `name`, proven with its own key (IdentityOf(name)).
  void Lease(const std::string& name, const std::string& address) {
    ASSERT_THAT(client_->Register({name, address, Millis(60000), ""},
                                  &IdentityOf(name)),
                IsOk());
  }

  const Identity& IdentityOf(const std::string& name) {
    return identities_.try_emplace(name, Identity::Generate()).first->second;
  }

  std::string db_path_;
  std::string token_path_;
  std::unique_ptr<RegistryServer> server_;
  std::string address_;
  std::unique_ptr<RegistryClient> client_;
  std::map<std::string, Identity> identities_;  // By name, as Lease() made.
};

// --- list -------------------------------------------------------------------

TEST_F(ChatctlTest, ListOfNothingIsTheHeaderOrAnEmptyArray) {
  Result table = Run("list");
  EXPECT_EQ(table.code, kExitOk) << table.err;
  EXPECT_EQ(table.out, "NAME  ADDRESS  SERVICES  EXPIRES IN\n");
  EXPECT_THAT(table.err, IsEmpty());

  Result json = Run("list", {}, /*json=*/true);
  EXPECT_EQ(json.code, kExitOk) << json.err;
  EXPECT_EQ(json.out, "[]\n");
}

TEST_F(ChatctlTest, ListShowsAlignedColumnsWithTimeLeftOrStatic) {
  Lease("alice", "127.0.0.1:5000");
  ASSERT_THAT(client_->PutStatic("Printer-Room-2", "[::1]:6000"), IsOk());

  Result result = Run("list");
  ASSERT_EQ(result.code, kExitOk) << result.err;
  std::vector<std::string> lines =
      absl::StrSplit(result.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << result.out;
  EXPECT_EQ(lines[0], "NAME            ADDRESS         SERVICES  EXPIRES IN");
  // 60 s granted a moment ago: 59.x s or 60.0 s left. Registered without
  // services (a client older than services): read as chat, marked so.
  EXPECT_THAT(lines[1], MatchesRegex("alice           127\\.0\\.0\\.1:5000  "
                                     "chat\\*     (59\\.[0-9]|60\\.0)s"));
  EXPECT_EQ(lines[2], "Printer-Room-2  [::1]:6000      chat      static");
}

TEST_F(ChatctlTest, ListJsonIsOneArrayWithNullsForStaticEntries) {
  Lease("alice", "127.0.0.1:5000");
  ASSERT_THAT(client_->PutStatic("bob", "10.0.0.2:6000"), IsOk());

  const PublicKey& alice = IdentityOf("alice").public_key();
  // Base64's '+' is the one character of a key special in a regex.
  const std::string alice_key =
      absl::StrReplaceAll(alice.Base64(), {{"+", "[+]"}});

  Result result = Run("list", {}, /*json=*/true);
  ASSERT_EQ(result.code, kExitOk) << result.err;
  EXPECT_THAT(
      result.out,
      MatchesRegex("\\[\\{\"name\":\"alice\",\"address\":\"127\\.0\\.0\\.1:"
                   "5000\",\"static\":false,\"ttl_ms\":60000,"
                   "\"expires_in_ms\":[0-9]+,\"public_key\":\"" +
                   alice_key + "\",\"fingerprint\":\"" + Fingerprint(alice) +
                   "\",\"services\":\\[\\]\\},"
                   "\\{\"name\":\"bob\",\"address\":\"10\\.0\\.0\\.2:6000\","
                   "\"static\":true,\"ttl_ms\":null,\"expires_in_ms\":null,"
                   "\"services\":\\[\"chat\"\\]\\}"
                   "\\]\n"));
}

TEST_F(ChatctlTest, ListFiltersByPrefixCaseInsensitively) {
  ASSERT_THAT(client_->PutStatic("alice", "127.0.0.1:5000"), IsOk());
  ASSERT_THAT(client_->PutStatic("Alfred", "127.0.0.1:5001"), IsOk());
  ASSERT_THAT(client_->PutStatic("bob", "127.0.0.1:5002"), IsOk());

  Result result = Run("list", {"AL"});
  ASSERT_EQ(result.code, kExitOk) << result.err;
  EXPECT_THAT(result.out, HasSubstr("alice"));
  EXPECT_THAT(result.out, HasSubstr("Alfred"));
  EXPECT_THAT(result.out, Not(HasSubstr("bob")));
}

TEST_F(ChatctlTest, ListRejectsABadPrefixLocally) {
  Result result = Run("list", {"no spaces"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, StartsWith("chatctl: bad prefix: "));
  EXPECT_THAT(result.out, IsEmpty());
}

// --- resolve ----------------------------------------------------------------

TEST_F(ChatctlTest, ResolvePrintsTheAddressAlone) {
  Lease("alice", "127.0.0.1:5000");
  Result result = Run("resolve", {"ALICE"});
  EXPECT_EQ(result.code, kExitOk) << result.err;
  EXPECT_EQ(result.out, "127.0.0.1:5000\n");
  EXPECT_THAT(result.err, IsEmpty());

  Result json = Run("resolve", {"alice"}, /*json=*/true);
  EXPECT_EQ(json.code, kExitOk);
  EXPECT_THAT(json.out, StartsWith("{\"name\":\"alice\",\"address\":"
                                   "\"127.0.0.1:5000\",\"static\":false,"));
  EXPECT_THAT(json.out, EndsWith("}\n"));
}

TEST_F(ChatctlTest, MailboxShowsCountAndAgeNeverText) {
  Result empty = Run("mailbox", {"bob"});
  EXPECT_EQ(empty.code, kExitOk) << empty.err;
  EXPECT_EQ(empty.out, "no messages wait for bob\n");
  auto mail = registry::v1::Mailbox::NewStub(server_->InProcessChannel());
  for (const char* id : {"m1", "m2"}) {
    registry::v1::DepositRequest request;
    request.mutable_item()->set_id(id);
    request.mutable_item()->set_sender("alice");
    request.mutable_item()->set_recipient("bob");
    request.mutable_item()->set_payload("secret text");
    registry::v1::DepositResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(mail->Deposit(&context, request, &response).ok());
  }
  Result result = Run("mailbox", {"BOB"});
  EXPECT_EQ(result.code, kExitOk) << result.err;
  EXPECT_THAT(result.out, StartsWith("2 messages (22 bytes) wait for BOB"));
  EXPECT_THAT(result.out, Not(HasSubstr("secret")));
  Result json = Run("mailbox", {"bob"}, /*json=*/true);
  EXPECT_THAT(json.out, StartsWith("{\"name\":\"bob\",\"count\":2,"
                                   "\"bytes\":22,\"oldest_age_ms\":"));
  EXPECT_EQ(Run("mailbox", {"not a name"}).code, kExitUsage);
}

TEST_F(ChatctlTest, ResolveOfAMissingNameExitsOne) {
  Result result = Run("resolve", {"nobody"});
  EXPECT_EQ(result.code, kExitNotFound);
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_THAT(result.err, AllOf(StartsWith("chatctl: "), HasSubstr("nobody"),
                                EndsWith("\n")));
  EXPECT_EQ(BackgroundWatch::Count(result.err, "\n"), 1u);
}

TEST_F(ChatctlTest, BadNamesAreUsageErrors) {
  for (const std::string& name :
       {std::string(""), std::string("-leading-dash"), std::string("a b"),
        std::string(65, 'x'), std::string("caf\xc3\xa9"),
        std::string("nul\0byte", 8)}) {
    Result result = Run("resolve", {name});
    EXPECT_EQ(result.code, kExitUsage) << name;
    EXPECT_THAT(result.err, StartsWith("chatctl: ")) << name;
    EXPECT_EQ(BackgroundWatch::Count(result.err, "\n"), 1u) << result.err;
  }
}

// --- register / unregister --------------------------------------------------

TEST_F(ChatctlTest, RegisterAndUnregisterStaticEntries) {
  Result added = RunStatic("register", {"lab-peer", "127.0.0.1:7000"});
  EXPECT_EQ(added.code, kExitOk) << added.err;
  EXPECT_EQ(added.out,
            "registered lab-peer at 127.0.0.1:7000 (static, offers chat)\n");
  auto entry = client_->Resolve("lab-peer");
  ASSERT_THAT(entry, IsOk());
  EXPECT_TRUE(entry->is_static);
  EXPECT_EQ(entry->address, "127.0.0.1:7000");

  Result moved =
      RunStatic("register", {"LAB-peer", "127.0.0.1:7001"}, /*json=*/true);
  EXPECT_EQ(moved.code, kExitOk) << moved.err;
  EXPECT_EQ(moved.out,
            "{\"name\":\"lab-peer\",\"address\":\"127.0.0.1:7001\","
            "\"static\":true,\"ttl_ms\":null,\"expires_in_ms\":null,"
            "\"services\":[\"chat\"]}\n");

  Result removed = RunStatic("unregister", {"lab-peer"});
  EXPECT_EQ(removed.code, kExitOk) << removed.err;
  EXPECT_EQ(removed.out, "unregistered lab-peer\n");
  EXPECT_EQ(client_->Resolve("lab-peer").status().code(),
            absl::StatusCode::kNotFound);

  Result again = RunStatic("unregister", {"lab-peer"});
  EXPECT_EQ(again.code, kExitNotFound);
  EXPECT_THAT(again.err, StartsWith("chatctl: "));
}

// Static entries say what they offer; list shows and filters it.
TEST_F(ChatctlTest, RegisterServicesAndListFiltersByService) {
  ChatctlInvocation printer =
      Invocation("register", {"printer", "127.0.0.1:7100"});
  printer.is_static = true;
  printer.services = {"print", "scan"};
  Result added = Run(printer);
  EXPECT_EQ(added.code, kExitOk) << added.err;
  EXPECT_EQ(added.out,
            "registered printer at 127.0.0.1:7100 (static, offers "
            "print,scan)\n");
  EXPECT_EQ(client_->Resolve("printer")->services,
            (std::vector<std::string>{"print", "scan"}));
  ASSERT_EQ(RunStatic("register", {"lab", "127.0.0.1:7000"}).code, kExitOk);
  registry::RegisterRequest greeter{"greeter", "127.0.0.1:7200", Millis(60000),
                                    ""};
  greeter.services = {"greet"};
  ASSERT_THAT(client_->Register(greeter, &IdentityOf("greeter")), IsOk());
  Lease("old", "127.0.0.1:7300");  // Says nothing: a chat peer.

  Result all = Run("list");
  ASSERT_EQ(all.code, kExitOk) << all.err;
  EXPECT_THAT(all.out, HasSubstr("SERVICES"));
  EXPECT_THAT(all.out, ContainsRegex("greeter +127\\.0\\.0\\.1:7200 +greet "));
  EXPECT_THAT(all.out, HasSubstr("print,scan"));

  ChatctlInvocation chat = Invocation("list");
  chat.services = {"chat"};
  Result chats = Run(chat);
  ASSERT_EQ(chats.code, kExitOk) << chats.err;
  std::vector<std::string> lines =
      absl::StrSplit(chats.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << chats.out;
  EXPECT_THAT(lines[1], StartsWith("lab "));
  EXPECT_THAT(lines[2], StartsWith("old "));

  chat.json = true;
  Result json = Run(chat);
  ASSERT_EQ(json.code, kExitOk) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"name\":\"lab\""));
  EXPECT_THAT(json.out, HasSubstr("\"services\":[\"chat\"]"));
  EXPECT_THAT(json.out, Not(HasSubstr("greeter")));

  ChatctlInvocation greet = Invocation("list");
  greet.services = {"greet"};
  greet.json = true;
  Result greeters = Run(greet);
  ASSERT_EQ(greeters.code, kExitOk) << greeters.err;
  EXPECT_THAT(greeters.out, HasSubstr("\"services\":[\"greet\"]"));
  EXPECT_THAT(greeters.out, Not(HasSubstr("\"lab\"")));
}

TEST_F(ChatctlTest, BadServicesAreUsageErrors) {
  ChatctlInvocation bad = Invocation("register", {"lab", "127.0.0.1:7000"});
  bad.is_static = true;
  bad.services = {"Chat"};
  Result result = Run(bad);
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, HasSubstr("bad --service"));
  EXPECT_EQ(client_->Resolve("lab").status().code(),
            absl::StatusCode::kNotFound);

  ChatctlInvocation two = Invocation("list");
  two.services = {"chat", "greet"};
  EXPECT_EQ(Run(two).code, kExitUsage);

  ChatctlInvocation elsewhere = Invocation("resolve", {"lab"});
  elsewhere.services = {"chat"};
  Result wrong = Run(elsewhere);
  EXPECT_EQ(wrong.code, kExitUsage);
  EXPECT_THAT(wrong.err, HasSubstr("--service applies only"));
}

TEST_F(ChatctlTest, RegisterWithoutStaticExplainsAndExitsTwo) {
  Result result = Run("register", {"alice", "127.0.0.1:5000"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, HasSubstr("--static"));
  EXPECT_EQ(BackgroundWatch::Count(result.err, "\n"), 1u);
  EXPECT_EQ(client_->Resolve("alice").status().code(),
            absl::StatusCode::kNotFound);

  Result unregister = Run("unregister", {"alice"});
  EXPECT_EQ(unregister.code, kExitUsage);
  EXPECT_THAT(unregister.err, HasSubstr("--static"));
}

TEST_F(ChatctlTest, StaticCommandsDoNotTouchLeases) {
  Lease("alice", "127.0.0.1:5000");
  Result put = RunStatic("register", {"alice", "127.0.0.1:6000"});
  EXPECT_EQ(put.code, kExitError);
  EXPECT_THAT(put.err, HasSubstr("alice"));

  Result remove = RunStatic("unregister", {"alice"});
  EXPECT_EQ(remove.code, kExitError);
  EXPECT_THAT(remove.err, HasSubstr("lease"));

  auto entry = client_->Resolve("alice");
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->address, "127.0.0.1:5000");
}

TEST_F(ChatctlTest, BadAddressIsAUsageError) {
  for (const char* address :
       {"127.0.0.1", "127.0.0.1:0", "host:99999", "::1:5000", "bad host:1"}) {
    Result result = RunStatic("register", {"alice", address});
    EXPECT_EQ(result.code, kExitUsage) << address;
    EXPECT_THAT(result.err, StartsWith("chatctl: ")) << address;
  }
}

// --- keys, the admin token, release ----------------------------------------

TEST_F(ChatctlTest, JsonShowsTheKeyAndFingerprintOfABoundName) {
  const Identity bob = Identity::Generate();
  ASSERT_THAT(client_->Register({"bob", "127.0.0.1:5000", Millis(60000)}, &bob),
              IsOk());
  const std::string key_fields = absl::StrCat(
      "\"public_key\":\"", bob.public_key().Base64(), "\",\"fingerprint\":\"",
      Fingerprint(bob.public_key()), "\"");
  Result resolved = Run("resolve", {"bob"}, /*json=*/true);
  EXPECT_EQ(resolved.code, kExitOk) << resolved.err;
  EXPECT_THAT(resolved.out, HasSubstr(key_fields));
  Result listed = Run("list", {}, /*json=*/true);
  EXPECT_EQ(listed.code, kExitOk) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr(key_fields));
  // A static entry has no key, and no such fields.
  ASSERT_THAT(client_->PutStatic("lab", "127.0.0.1:6000"), IsOk());
  Result lab = Run("resolve", {"lab"}, /*json=*/true);
  EXPECT_THAT(lab.out, Not(HasSubstr("public_key")));
}

TEST_F(ChatctlTest, AdminCommandsWithoutTheTokenExitFourInOneLine) {
  for (const std::string& token_file :
       {std::string(), db_path_ + ".wrong-token"}) {
    SCOPED_TRACE(token_file);
    std::ofstream(db_path_ + ".wrong-token") << "wrong\n";
    ChatctlInvocation invocation =
        Invocation("register", {"lab", "127.0.0.1:6000"});
    invocation.is_static = true;
    invocation.admin_token_file = token_file;
    Result result = Run(invocation);
    EXPECT_EQ(result.code, kExitError);
    EXPECT_EQ(result.err,
              "chatctl: PutStatic needs the registry's admin token (chatctl "
              "--admin-token-file or CHAT_ADMIN_TOKEN_FILE)\n");
    invocation = Invocation("release", {"bob"});
    invocation.admin_token_file = token_file;
    EXPECT_EQ(Run(invocation).code, kExitError);
  }
  std::filesystem::remove(db_path_ + ".wrong-token");
  // A token file that cannot be read is an error before anything is sent.
  ChatctlInvocation missing = Invocation("release", {"bob"});
  missing.admin_token_file = db_path_ + ".missing";
  Result result = Run(missing);
  EXPECT_EQ(result.code, kExitError);
  EXPECT_THAT(result.err, HasSubstr("cannot read the admin token"));
  EXPECT_THAT(client_->Resolve("lab"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ChatctlTest, ReleaseEndsABinding) {
  const Identity bob = Identity::Generate();
  ASSERT_THAT(client_->Register({"bob", "127.0.0.1:5000", Millis(60000)}, &bob),
              IsOk());
  Result released = Run("release", {"bob"});
  EXPECT_EQ(released.code, kExitOk) << released.err;
  EXPECT_EQ(released.out, "released bob: anyone may register it now\n");
  EXPECT_THAT(client_->GetBinding("bob"),
              StatusIs(absl::StatusCode::kNotFound));
  Result again = Run("release", {"bob"}, /*json=*/true);
  EXPECT_EQ(again.code, kExitNotFound);
  EXPECT_EQ(Run("release", {"not a name"}).code, kExitUsage);
}

// --- unreachable and usage --------------------------------------------------

TEST_F(ChatctlTest, UnreachableRegistryExitsThreeNamingTheAddress) {
  UnusedPort unused;
  ASSERT_NE(unused.port(), 0);
  const std::string address = absl::StrCat("127.0.0.1:", unused.port());
  for (const auto& [command, args] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"list", {}},
           {"resolve", {"alice"}},
           {"watch", {}},
           {"health", {}},
           {"greet", {"Bob"}}}) {
    ChatctlInvocation invocation = Invocation(command, args);
    invocation.registry = address;
    Result result = Run(invocation);
    EXPECT_EQ(result.code, kExitUnreachable) << command << ": " << result.err;
    EXPECT_THAT(result.err, AllOf(StartsWith("chatctl: "), HasSubstr(address),
                                  HasSubstr("unreachable")))
        << command;
    EXPECT_EQ(BackgroundWatch::Count(result.err, "\n"), 1u) << result.err;
  }
  ChatctlInvocation register_static =
      Invocation("register", {"alice", "127.0.0.1:5000"});
  register_static.is_static = true;
  register_static.registry = address;
  EXPECT_EQ(Run(register_static).code, kExitUnreachable);
}

TEST_F(ChatctlTest, UsageErrorsExitTwo) {
  struct Case {
    ChatctlInvocation invocation;
    std::string says;
  };
  std::vector<Case> cases;
  cases.push_back({Invocation(""), "no command"});
  cases.push_back({Invocation("lsit"), "unknown command"});
  cases.push_back({Invocation("resolve"), "too few arguments"});
  cases.push_back({Invocation("resolve", {"a", "b"}), "too many arguments"});
  cases.push_back({Invocation("list", {"a", "b"}), "too many arguments"});
  cases.push_back({Invocation("greet"), "too few arguments"});
  ChatctlInvocation static_list = Invocation("list");
  static_list.is_static = true;
  cases.push_back({static_list, "--static"});
  ChatctlInvocation target_list = Invocation("list");
  target_list.target = "127.0.0.1:1";
  cases.push_back({target_list, "--target"});
  for (double timeout : {0.0, -1.0, 1e12}) {
    ChatctlInvocation bad_timeout = Invocation("list");
    bad_timeout.timeout_seconds = timeout;
    cases.push_back({bad_timeout, "--timeout"});
  }
  ChatctlInvocation bad_registry = Invocation("list");
  bad_registry.registry = "no-port";
  cases.push_back({bad_registry, "--registry"});
  ChatctlInvocation bad_target = Invocation("greet", {"Bob"});
  bad_target.target = "nowhere";
  cases.push_back({bad_target, "--target"});

  for (const Case& c : cases) {
    Result result = Run(c.invocation);
    EXPECT_EQ(result.code, kExitUsage) << c.says;
    EXPECT_THAT(result.err, AllOf(StartsWith("chatctl: "), HasSubstr(c.says)));
    EXPECT_EQ(BackgroundWatch::Count(result.err, "\n"), 1u) << result.err;
    EXPECT_THAT(result.out, IsEmpty());
  }
}

TEST_F(ChatctlTest, HelpNamesEveryCommandAndExitCode) {
  const std::string help = CommandsHelp() + "\n" + ExitCodesHelp();
  for (const char* command : {"list", "resolve", "watch", "register",
                              "unregister", "health", "greet"}) {
    EXPECT_THAT(help, ContainsRegex(absl::StrCat("\n  ", command, " ")));
  }
  for (const char* code : {"0", "1", "2", "3", "4"}) {
    EXPECT_THAT(help, HasSubstr(absl::StrCat("\n  ", code, "  ")));
  }
}

// --- health -----------------------------------------------------------------

TEST_F(ChatctlTest, HealthOfTheRegistryIsServing) {
  Result result = Run("health");
  EXPECT_EQ(result.code, kExitOk) << result.err;
  EXPECT_EQ(result.out, "SERVING\n");

  Result json = Run("health", {address_}, /*json=*/true);
  EXPECT_EQ(json.code, kExitOk) << json.err;
  EXPECT_EQ(json.out, absl::StrCat("{\"address\":\"", address_,
                                   "\",\"status\":\"SERVING\"}\n"));
}

TEST_F(ChatctlTest, HealthOfANotServingServerExitsFour) {
  FakeGreeter greeter;
  ServerConfig config;
  config.listen_address = "127.0.0.1:0";
  config.services = {&greeter};
  auto running = StartServer(config);
  ASSERT_THAT(running, IsOk());
  const std::string address = absl::StrCat("127.0.0.1:", running->port);
  running->server->GetHealthCheckService()->SetServingStatus(false);

  Result result = Run("health", {address});
  EXPECT_EQ(result.code, kExitError);
  EXPECT_EQ(result.out, "NOT_SERVING\n");
  running->server->Shutdown();
}

// --- greet ------------------------------------------------------------------

class ChatctlGreetTest : public ChatctlTest {
 protected:
  void SetUp() override {
    ChatctlTest::SetUp();
    ServerConfig config;
    config.listen_address = "127.0.0.1:0";
    config.services = {&greeter_};
    auto running = StartServer(config);
    ASSERT_THAT(running, IsOk());
    greeter_server_ = std::move(running->server);
    greeter_address_ = absl::StrCat("127.0.0.1:", running->port);
  }
  void TearDown() override {
    if (greeter_server_) greeter_server_->Shutdown();
  }

  FakeGreeter greeter_;
  std::unique_ptr<grpc::Server> greeter_server_;
  std::string greeter_address_;
};

TEST_F(ChatctlGreetTest, GreetFindsTheGreeterByName) {
  ASSERT_THAT(client_->PutStatic("greeter", greeter_address_), IsOk());
  Result result = Run("greet", {"Bob"});
  EXPECT_EQ(result.code, kExitOk) << result.err;
  EXPECT_EQ(result.out, "Server response: Hello, Bob!\n");
}

TEST_F(ChatctlGreetTest, GreetUnderAnotherNameOrAtATarget) {
  ASSERT_THAT(client_->PutStatic("greeter-2", greeter_address_), IsOk());
  ChatctlInvocation named = Invocation("greet", {"Ann"});
  named.greeter_name = "greeter-2";
  Result result = Run(named);
  EXPECT_EQ(result.code, kExitOk) << result.err;
  EXPECT_EQ(result.out, "Server response: Hello, Ann!\n");

  ChatctlInvocation direct = Invocation("greet", {"Zoë"});
  direct.target = greeter_address_;
  direct.registry = "127.0.0.1:1";  // Not asked.
  direct.json = true;
  Result json = Run(direct);
  EXPECT_EQ(json.code, kExitOk) << json.err;
  EXPECT_EQ(json.out, absl::StrCat("{\"greeter\":\"", greeter_address_,
                                   "\",\"message\":\"Hello, Zoë!\"}\n"));
}

TEST_F(ChatctlGreetTest, GreetErrors) {
  Result missing = Run("greet", {"Bob"});
  EXPECT_EQ(missing.code, kExitNotFound);
  EXPECT_THAT(missing.err,
              HasSubstr("no greeter is registered as \"greeter\""));

  ASSERT_THAT(client_->PutStatic("greeter", greeter_address_), IsOk());
  Result refused = Run("greet", {""});
  EXPECT_EQ(refused.code, kExitError);
  EXPECT_THAT(refused.err, HasSubstr("name is empty"));

  Result not_utf8 = Run("greet", {"\xff"});
  EXPECT_EQ(not_utf8.code, kExitUsage);

  UnusedPort unused;
  ChatctlInvocation gone = Invocation("greet", {"Bob"});
  gone.target = absl::StrCat("127.0.0.1:", unused.port());
  Result unreachable = Run(gone);
  EXPECT_EQ(unreachable.code, kExitUnreachable);
  EXPECT_THAT(
      unreachable.err,
      HasSubstr(absl::StrCat("greeter at ", gone.target, " is unreachable")));
}

// --- watch ------------------------------------------------------------------

TEST_F(ChatctlTest, WatchPrintsTheStateThenChangesUntilInterrupted) {
  ASSERT_THAT(client_->PutStatic("alice", "127.0.0.1:5000"), IsOk());
  BackgroundWatch watch(Invocation("watch"));
  ASSERT_TRUE(watch.WaitForErr("-- synced, watching for changes\n"))
      << watch.err();
  EXPECT_EQ(watch.out(), "PUT alice 127.0.0.1:5000 (initial)\n");

  Lease("bob", "127.0.0.1:5001");
  ASSERT_TRUE(watch.WaitForOut("PUT bob 127.0.0.1:5001 (registered)\n"))
      << watch.out();
  ASSERT_THAT(client_->RemoveStatic("alice"), IsOk());
  ASSERT_TRUE(watch.WaitForOut("DELETE alice 127.0.0.1:5000 (unregistered)\n"))
      << watch.out();

  EXPECT_EQ(watch.Stop(), kExitOk);
  EXPECT_THAT(watch.err(), Not(HasSubstr("chatctl:")));
}

TEST_F(ChatctlTest, WatchJsonIsOneObjectPerEventAndOnlyEvents) {
  BackgroundWatch watch([&] {
    ChatctlInvocation invocation = Invocation("watch", {"b"});
    invocation.json = true;
    return invocation;
  }());
  ASSERT_TRUE(watch.WaitForErr("-- synced")) << watch.err();
  ASSERT_THAT(client_->PutStatic("alice", "127.0.0.1:5000"), IsOk());
  ASSERT_THAT(client_->PutStatic("bob", "127.0.0.1:5001"), IsOk());
  ASSERT_THAT(client_->PutStatic("bob", "127.0.0.1:5002"), IsOk());
  ASSERT_THAT(client_->RemoveStatic("bob"), IsOk());
  ASSERT_TRUE(watch.WaitForOut("\"unregistered\"")) << watch.out();
  EXPECT_EQ(watch.Stop(), kExitOk);

  const std::string bob = "\"name\":\"bob\",\"address\":\"127.0.0.1:";
  const std::string nulls =
      "\",\"static\":true,\"ttl_ms\":null,\"expires_in_ms\":null,"
      "\"services\":[\"chat\"]}\n";
  EXPECT_EQ(watch.out(),
            "{\"type\":\"PUT\",\"reason\":\"registered\"," + bob + "5001" +
                nulls + "{\"type\":\"PUT\",\"reason\":\"address_changed\"," +
                bob + "5002" + nulls +
                "{\"type\":\"DELETE\",\"reason\":\"unregistered\"," + bob +
                "5002" + nulls);
}

TEST_F(ChatctlTest, WatchCarriesOnAcrossARegistryRestart) {
  ASSERT_THAT(client_->PutStatic("alice", "127.0.0.1:5000"), IsOk());
  ASSERT_THAT(client_->PutStatic("bob", "127.0.0.1:5001"), IsOk());
  BackgroundWatch watch(Invocation("watch"));
  ASSERT_TRUE(watch.WaitForErr("-- synced")) << watch.err();

  // While the registry is down, bob leaves and carol arrives.
  const int port = server_->port();
  client_.reset();
  server_.reset();
  {
    auto store = registry::OpenSqliteStore(db_path_, RealClock());
    ASSERT_THAT(store, IsOk());
    ASSERT_THAT((*store)->RemoveStatic("bob"), IsOk());
    ASSERT_THAT((*store)->PutStatic("carol", "127.0.0.1:5002"), IsOk());
  }
  ASSERT_TRUE(watch.WaitForErr("reconnecting")) << watch.err();
  StartRegistry(absl::StrCat("127.0.0.1:", port));

  ASSERT_TRUE(watch.WaitForErr("-- synced", 2)) << watch.err();
  Lease("dave", "127.0.0.1:5003");
  ASSERT_TRUE(watch.WaitForOut("PUT dave")) << watch.out();
  EXPECT_EQ(watch.Stop(), kExitOk);

  // Only the differences after the reconnect: alice is not repeated.
  EXPECT_EQ(watch.out(),
            "PUT alice 127.0.0.1:5000 (initial)\n"
            "PUT bob 127.0.0.1:5001 (initial)\n"
            "PUT carol 127.0.0.1:5002 (initial)\n"
            "DELETE bob 127.0.0.1:5001 (gone while disconnected)\n"
            "PUT dave 127.0.0.1:5003 (registered)\n");
  // Once per outage, not once per attempt (twice if the watch got in again
  // while the old registry was shutting down).
  EXPECT_LE(BackgroundWatch::Count(watch.err(), "reconnecting"), 2u)
      << watch.err();
}

#ifdef CHAT_ETCD
// Two registries on one etcd: a watch whose registry goes away resumes at
// the other from the revision it had reached, so what changed meanwhile is
// printed as it happened (with its reason), not as the difference of two
// snapshots.
TEST(ChatctlEtcdTest, WatchResumesAtAnotherRegistryFromItsRevision) {
  auto etcd = chat::testing::EtcdCluster::Start();
  ASSERT_THAT(etcd, IsOk());
  chat::testing::TempDir dir;
  const std::string prefix = absl::StrCat("/chatctl-test/", RandomHex(6), "/");
  auto start = [&](const std::string& name) -> std::unique_ptr<RegistryServer> {
    registry::etcd::EtcdStoreOptions options;
    options.etcd.endpoints = (*etcd)->ClientEndpoints();
    options.prefix = prefix;
    auto store = registry::etcd::OpenEtcdStore(options, RealClock());
    EXPECT_THAT(store, IsOk());
    auto mailbox =
        registry::OpenSqliteMailbox(dir.File(name + ".db"), RealClock());
    EXPECT_THAT(mailbox, IsOk());
    if (!store.ok() || !mailbox.ok()) return nullptr;
    RegistryServerOptions server_options;
    server_options.listen_address = "127.0.0.1:0";
    server_options.admin_token = kAdminToken;
    auto server = RegistryServer::Start(*std::move(store), *std::move(mailbox),
                                        server_options);
    EXPECT_THAT(server, IsOk());
    return server.ok() ? *std::move(server) : nullptr;
  };
  std::unique_ptr<RegistryServer> first = start("first");
  std::unique_ptr<RegistryServer> second = start("second");
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  auto admin_of = [](RegistryServer& server) {
    auto client = std::make_unique<RegistryClient>(server.InProcessChannel(),
                                                   "in-process", Millis(5000));
    client->SetAdminToken(kAdminToken);
    return client;
  };
  // Written at the first registry, so its snapshot has them.
  ASSERT_THAT(admin_of(*first)->PutStatic("alice", "127.0.0.1:5000"), IsOk());
  ASSERT_THAT(admin_of(*first)->PutStatic("bob", "127.0.0.1:5001"), IsOk());

  ChatctlInvocation invocation;
  invocation.command = "watch";
  invocation.registry =
      absl::StrCat("127.0.0.1:", first->port(), ",127.0.0.1:", second->port());
  invocation.reconnect_initial = Millis(10);
  invocation.reconnect_max = Millis(100);
  BackgroundWatch watch(invocation);
  ASSERT_TRUE(watch.WaitForErr("-- synced")) << watch.err();

  // The first registry goes; while the watch is held before reconnecting,
  // bob leaves and carol comes, through the second.
  watch.HoldErrAt("reconnecting");
  first->Shutdown(Millis(1000));
  ASSERT_TRUE(watch.WaitForErr("reconnecting")) << watch.err();
  std::unique_ptr<RegistryClient> admin = admin_of(*second);
  ASSERT_THAT(admin->RemoveStatic("bob"), IsOk());
  ASSERT_THAT(admin->PutStatic("carol", "127.0.0.1:5002"), IsOk());
  watch.ReleaseErr();

  ASSERT_TRUE(watch.WaitForErr("-- resumed, watching for changes"))
      << watch.err();
  ASSERT_THAT(admin->PutStatic("dave", "127.0.0.1:5003"), IsOk());
  ASSERT_TRUE(watch.WaitForOut("PUT dave")) << watch.out();
  EXPECT_EQ(watch.Stop(), kExitOk);
  EXPECT_EQ(watch.out(),
            "PUT alice 127.0.0.1:5000 (initial)\n"
            "PUT bob 127.0.0.1:5001 (initial)\n"
            "DELETE bob 127.0.0.1:5001 (unregistered)\n"
            "PUT carol 127.0.0.1:5002 (registered)\n"
            "PUT dave 127.0.0.1:5003 (registered)\n");
  second.reset();
  first.reset();
}
#endif

TEST_F(ChatctlTest, WatchEndsAtOnceWhenInterruptedWhileReconnecting) {
  BackgroundWatch watch([&] {
    ChatctlInvocation invocation = Invocation("watch");
    invocation.reconnect_initial = Millis(60000);  // Only an interrupt ends it.
    invocation.reconnect_max = Millis(60000);
    return invocation;
  }());
  ASSERT_TRUE(watch.WaitForErr("-- synced")) << watch.err();
  client_.reset();
  server_.reset();
  ASSERT_TRUE(watch.WaitForErr("reconnecting")) << watch.err();
  EXPECT_EQ(watch.Stop(), kExitOk);
}

TEST_F(ChatctlTest, WatchRejectsABadPrefix) {
  Result result = Run("watch", {"-x"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, StartsWith("chatctl: bad prefix"));
}

// --- TLS ---------------------------------------------------------------------

TEST_F(ChatctlTest, AnUnreadableTlsFileIsAUsageErrorNamingIt) {
  ChatctlInvocation invocation = Invocation("list");
  invocation.tls.ca_file = db_path_ + ".no-such-ca.crt";
  Result result = Run(invocation);
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, HasSubstr("--tls-ca file " + invocation.tls.ca_file));
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1);
  EXPECT_THAT(result.out, IsEmpty());
}

TEST_F(ChatctlTest, WithACaPlaintextIsNeverTried) {
  // This registry serves plaintext: a TLS-only chatctl cannot talk to it.
  ChatctlInvocation invocation = Invocation("list");
  invocation.tls.ca_file = std::string(CHAT_TLS_TESTDATA) + "/ca.crt";
  invocation.timeout_seconds = 10;
  Result result = Run(invocation);
  EXPECT_EQ(result.code, kExitUnreachable);
  EXPECT_THAT(result.err, HasSubstr("unreachable"));
}

}  // namespace
}  // namespace chat::chatctl
