#include "tests/testing/etcd_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/random.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace chat::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A port nobody listens on right now (the kernel's pick for port 0). Another
// process may take it before etcd binds it; Start() retries then.
absl::StatusOr<int> PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  // POSIX's sockaddr casts; nothing else names these structs.
  auto* generic = reinterpret_cast<sockaddr*>(&address);
  if (bind(fd, generic, sizeof(address)) != 0 ||
      getsockname(fd, generic, &length) != 0) {
    close(fd);
    return absl::InternalError("bind() or getsockname() failed");
  }
  close(fd);
  return ntohs(address.sin_port);
}

// Whether `pid` has exited (and reaps it).
bool Exited(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, WNOHANG) == pid;
}

// Waits for `pid` for up to `timeout_ms`; true when it exited.
bool WaitExit(pid_t pid, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (Exited(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::string Url(int port) { return absl::StrCat("http://127.0.0.1:", port); }

}  // namespace

EtcdCluster::EtcdCluster(EtcdClusterOptions options)
    : options_(std::move(options)), token_("chat-test-" + RandomHex(6)) {}

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(
    const EtcdClusterOptions& options) {
  if (options.members < 1) {
    return absl::InvalidArgumentError("an etcd cluster needs a member");
  }
  if (access(options.binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        options.binary,
        " is not there (scripts/install-deps installs etcd-server)"));
  }
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster(options));
  for (int i = 0; i < options.members; ++i) {
    Member member;
    member.name = absl::StrCat("m", i);
    member.data_dir = cluster->dir_.File(member.name);
    member.log_file = cluster->dir_.File(member.name + ".log");
    cluster->members_.push_back(std::move(member));
  }
  absl::Status status;
  for (int attempt = 0; attempt < 3; ++attempt) {
    status = cluster->StartAll();
    // kUnavailable: a member exited at start, most likely because another
    // process took one of its ports. Anything else will not mend itself.
    if (status.ok() || !absl::IsUnavailable(status)) break;
  }
  if (!status.ok()) return status;
  return cluster;
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) (void)Stop(i);
}

std::string EtcdCluster::ClientEndpoint(int i) const {
  return absl::StrCat("127.0.0.1:", members_[i].client_port);
}

std::vector<std::string> EtcdCluster::ClientEndpoints() const {
  std::vector<std::string> endpoints;
  for (int i = 0; i < size(); ++i) endpoints.push_back(ClientEndpoint(i));
  return endpoints;
}

std::string EtcdCluster::InitialCluster() const {
  std::vector<std::string> parts;
  for (const Member& member : members_) {
    parts.push_back(absl::StrCat(member.name, "=", Url(member.peer_port)));
  }
  return absl::StrJoin(parts, ",");
}

absl::Status EtcdCluster::StartAll() {
  for (Member& member : members_) {
    std::error_code ignored;
    std::filesystem::remove_all(member.data_dir, ignored);
    auto client_port = PickFreePort();
    auto peer_port = PickFreePort();
    if (!client_port.ok()) return client_port.status();
    if (!peer_port.ok()) return peer_port.status();
    member.client_port = *client_port;
    member.peer_port = *peer_port;
  }
  absl::Status status;
  for (Member& member : members_) {
    status = Spawn(member, /*new_cluster=*/true);
    if (!status.ok()) break;
  }
  for (int i = 0; status.ok() && i < size(); ++i) {
    status = WaitHealthy(i, options_.start_timeout_ms);
  }
  if (!status.ok()) {
    for (int i = 0; i < size(); ++i) (void)Kill(i);
  }
  return status;
}

absl::Status EtcdCluster::Spawn(Member& member, bool new_cluster) {
  const bool tls = options_.client_tls.enabled();
  const std::string client_url =
      tls ? "https://127.0.0.1:" + std::to_string(member.client_port)
          : Url(member.client_port);
  std::vector<std::string> args = {
      options_.binary,
      "--name=" + member.name,
      "--data-dir=" + member.data_dir,
      "--listen-client-urls=" + client_url,
      "--advertise-client-urls=" + client_url,
      "--listen-peer-urls=" + Url(member.peer_port),
      "--initial-advertise-peer-urls=" + Url(member.peer_port),
      "--initial-cluster=" + InitialCluster(),
      "--initial-cluster-token=" + token_,
      std::string("--initial-cluster-state=") +
          (new_cluster ? "new" : "existing"),
      absl::StrCat("--heartbeat-interval=", options_.heartbeat_ms),
      absl::StrCat("--election-timeout=", options_.election_ms),
      "--logger=zap",
      "--log-outputs=stderr",
  };
  if (options_.quota_backend_bytes > 0) {
    args.push_back(
        absl::StrCat("--quota-backend-bytes=", options_.quota_backend_bytes));
  }
  if (tls) {
    args.push_back("--cert-file=" + options_.client_tls.cert_file);
    args.push_back("--key-file=" + options_.client_tls.key_file);
    if (!options_.client_tls.client_ca_file.empty()) {
      args.push_back("--client-cert-auth");
      args.push_back("--trusted-ca-file=" + options_.client_tls.client_ca_file);
    }
  }
  for (const std::string& flag : options_.extra_flags) args.push_back(flag);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int log = open(member.log_file.c_str(),
                 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) return absl::InternalError("cannot open " + member.log_file);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(log);
    return absl::InternalError("fork() failed");
  }
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log);
  member.pid = pid;
  return absl::OkStatus();
}

absl::Status EtcdCluster::WaitHealthy(int i, int timeout_ms) {
  Member& member = members_[i];
  auto credentials = MakeChannelCredentials(options_.probe_tls);
  if (!credentials.ok()) return credentials.status();
  auto channel = grpc::CreateChannel(ClientEndpoint(i), *credentials);
  auto kv = etcdserverpb::KV::NewStub(channel);
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last_error;
  while (Clock::now() < deadline) {
    if (member.pid > 0 && Exited(member.pid)) {
      member.pid = -1;
      return absl::UnavailableError(absl::StrCat(
          "etcd member ", member.name, " exited at start:\n", LogTail(i)));
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(1));
    context.set_wait_for_ready(true);
    etcdserverpb::RangeRequest request;
    request.set_key("chat-test-health");
    etcdserverpb::RangeResponse response;
    grpc::Status status = kv->Range(&context, request, &response);
    if (status.ok()) return absl::OkStatus();
    last_error = status.error_message();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("etcd member ", member.name, " not healthy after ",
                   timeout_ms, " ms (", last_error, "):\n", LogTail(i)));
}

absl::Status EtcdCluster::Stop(int i, int grace_ms) {
  Member& member = members_[i];
  if (member.pid <= 0) return absl::OkStatus();
  // A paused member would not act on SIGTERM before it runs again.
  kill(member.pid, SIGCONT);
  kill(member.pid, SIGTERM);
  if (!WaitExit(member.pid, grace_ms)) {
    kill(member.pid, SIGKILL);
    waitpid(member.pid, nullptr, 0);
  }
  member.pid = -1;
  return absl::OkStatus();
}

absl::Status EtcdCluster::Kill(int i) {
  Member& member = members_[i];
  if (member.pid <= 0) return absl::OkStatus();
  kill(member.pid, SIGKILL);
  waitpid(member.pid, nullptr, 0);
  member.pid = -1;
  return absl::OkStatus();
}

absl::Status EtcdCluster::Pause(int i) {
  const Member& member = members_[i];
  if (member.pid <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("etcd member ", member.name, " is not running"));
  }
  if (kill(member.pid, SIGSTOP) != 0) {
    return absl::InternalError(absl::StrCat("cannot pause etcd member ",
                                            member.name, ": errno ", errno));
  }
  return absl::OkStatus();
}

absl::Status EtcdCluster::Resume(int i) {
  const Member& member = members_[i];
  if (member.pid <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("etcd member ", member.name, " is not running"));
  }
  if (kill(member.pid, SIGCONT) != 0) {
    return absl::InternalError(absl::StrCat("cannot resume etcd member ",
                                            member.name, ": errno ", errno));
  }
  return absl::OkStatus();
}

absl::Status EtcdCluster::Restart(int i) {
  if (members_[i].pid > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("etcd member ", members_[i].name, " is running"));
  }
  absl::Status status = Spawn(members_[i], /*new_cluster=*/false);
  if (!status.ok()) return status;
  return WaitHealthy(i, options_.start_timeout_ms);
}

std::string EtcdCluster::LogTail(int i, int max_bytes) const {
  std::ifstream in(members_[i].log_file, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (static_cast<int>(text.size()) > max_bytes) {
    text = text.substr(text.size() - max_bytes);
  }
  return text;
}

}  // namespace chat::testing
