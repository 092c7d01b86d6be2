#include "common/tls.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace chat {
namespace {

// A whole block: its BEGIN line and its END line, in this order.
bool HasPemBlock(const std::string& text, const std::string& label) {
  const std::string begin = absl::StrCat("-----BEGIN ", label, "-----");
  const size_t start = text.find(begin);
  if (start == std::string::npos) return false;
  return text.find(absl::StrCat("-----END ", label, "-----"),
                   start + begin.size()) != std::string::npos;
}

bool HoldsKind(const std::string& text, PemKind kind) {
  if (kind == PemKind::kCertificate) return HasPemBlock(text, "CERTIFICATE");
  for (const char* label :
       {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"}) {
    if (HasPemBlock(text, label)) return true;
  }
  return false;
}

// A certificate and its private key, as --tls-cert and --tls-key name them.
struct CertAndKey {
  std::string cert;
  std::string key;
};

absl::StatusOr<CertAndKey> ReadCertAndKey(const std::string& cert_file,
                                          const std::string& key_file) {
  absl::StatusOr<std::string> cert =
      ReadPemFile(cert_file, PemKind::kCertificate, "--tls-cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key =
      ReadPemFile(key_file, PemKind::kPrivateKey, "--tls-key");
  if (!key.ok()) return key.status();
  return CertAndKey{*std::move(cert), *std::move(key)};
}

}  // namespace

absl::StatusOr<std::string> ReadPemFile(const std::string& path, PemKind kind,
                                        const std::string& option) {
  const std::string what = absl::StrCat(option, " file ", path);
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", what, ": ",
                     errno != 0 ? std::strerror(errno) : "cannot open it"));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::NotFoundError(absl::StrCat("cannot read ", what));
  }
  std::string text = contents.str();
  if (!HoldsKind(text, kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " holds no PEM ",
        kind == PemKind::kCertificate ? "certificate (-----BEGIN CERTIFICATE)"
                                      : "private key (-----BEGIN PRIVATE KEY)",
        text.empty() ? ": it is empty" : ""));
  }
  return text;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsServerFiles& files) {
  if (!files.enabled()) {
    if (!files.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)");
    }
    return grpc::InsecureServerCredentials();
  }
  if (files.cert_file.empty() || files.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: give both, or neither");
  }
  absl::StatusOr<CertAndKey> pair =
      ReadCertAndKey(files.cert_file, files.key_file);
  if (!pair.ok()) return pair.status();
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({pair->key, pair->cert});
  if (!files.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPemFile(
        files.client_ca_file, PemKind::kCertificate, "--tls-client-ca");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsClientFiles& files) {
  if (files.cert_file.empty() != files.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: give both, or neither");
  }
  if (!files.enabled()) {
    if (!files.cert_file.empty()) {
      return absl::InvalidArgumentError(
          "a client certificate (--tls-cert) needs --tls-ca to verify the "
          "server with");
    }
    return grpc::InsecureChannelCredentials();
  }
  absl::StatusOr<std::string> ca =
      ReadPemFile(files.ca_file, PemKind::kCertificate, "--tls-ca");
  if (!ca.ok()) return ca.status();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *ca;
  if (!files.cert_file.empty()) {
    absl::StatusOr<CertAndKey> pair =
        ReadCertAndKey(files.cert_file, files.key_file);
    if (!pair.ok()) return pair.status();
    options.pem_cert_chain = std::move(pair->cert);
    options.pem_private_key = std::move(pair->key);
  }
  return grpc::SslCredentials(options);
}

std::string PeerCertificateName(const std::string& name_key) {
  return absl::StrCat(name_key, ".peer.invalid");
}

std::string GreeterCertificateName(const std::string& name_key) {
  return absl::StrCat(name_key, ".greeter.invalid");
}

void SetTlsServerName(grpc::ChannelArguments& args, const std::string& name) {
  args.SetSslTargetNameOverride(name);
}

void GuardTlsHostCheck(grpc::ChannelArguments& args,
                       const std::string& address) {
  // The host of "host:port", "[v6]:port" or a bare host; a trailing dot and
  // case do not change a DNS name.
  std::string host = address;
  const size_t colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']') == std::string::npos &&
      host.find(':') == colon) {
    host.resize(colon);
  }
  host = absl::AsciiStrToLower(host);
  while (!host.empty() && host.back() == '.') host.pop_back();
  if (host == "invalid" || absl::EndsWith(host, ".invalid")) {
    // make-certs refuses hosts under .invalid and gives every role name a
    // label before the role, so nothing it makes names this.
    args.SetSslTargetNameOverride("no-host.invalid");
  }
}

}  // namespace chat
