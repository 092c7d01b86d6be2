// TLS for every server and client of the project, in one place: PEM files
// read with errors that name the file, turned into gRPC credentials
// (the stable grpc::Ssl* API). docs/security.md explains the choices.

#ifndef CHAT_COMMON_TLS_H_
#define CHAT_COMMON_TLS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace chat {

// What a server serves with. All paths; empty means not given.
struct TlsServerFiles {
  std::string cert_file;  // --tls-cert: PEM certificate (chain).
  std::string key_file;   // --tls-key: PEM private key of that certificate.
  // --tls-client-ca: when given, only clients that present a certificate
  // signed by this CA are admitted (mutual TLS).
  std::string client_ca_file;

  // Serve TLS (only) when a certificate or a key is given.
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

// What a client verifies servers with, and shows them when asked.
struct TlsClientFiles {
  // --tls-ca / CHAT_TLS_CA: servers must hold a certificate signed by this
  // CA. Given: TLS only, plaintext is never tried. Empty: plaintext.
  std::string ca_file;
  // Optional client certificate and key, for a server that asks for one
  // (mutual TLS); both or neither.
  std::string cert_file;
  std::string key_file;

  bool enabled() const { return !ca_file.empty(); }
};

// What a PEM file must hold.
enum class PemKind { kCertificate, kPrivateKey };

// The contents of `path`, checked to hold at least one complete PEM block of
// `kind`. `option` names the file in errors ("--tls-cert file x.pem: ...").
// kNotFound when it cannot be read, kInvalidArgument when it holds no such
// block. The check is textual; gRPC parses the contents when it uses them.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, PemKind kind,
                                        const std::string& option);

// Server credentials for `files`: InsecureServerCredentials() when
// !files.enabled(), else TLS only (mutual when client_ca_file is set).
// kInvalidArgument when a certificate comes without its key or the other
// way round, or a client CA without a certificate; errors of ReadPemFile.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsServerFiles& files);

// Channel credentials for `files`: InsecureChannelCredentials() when
// !files.enabled(), else TLS verified against ca_file. kInvalidArgument
// when a client certificate comes without its key (or without a CA);
// errors of ReadPemFile.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsClientFiles& files);

// Certificates by role (scripts/make-certs, docs/security.md). A server
// dialled by host (the registry; a greeter called with --target) holds a
// certificate naming those hosts. A server found by name through the
// registry holds one naming its role and chat name key, under .invalid:
// "alice.peer.invalid", "greeter.greeter.invalid". RFC 6761 reserves
// .invalid, so no host a client dials lies under it, and a role certificate
// never passes for a host's (a peer named "localhost" cannot serve as the
// registry on localhost).
//
// The name chat-peer checks when it dials the peer `name_key` (lower case).
std::string PeerCertificateName(const std::string& name_key);
// The name chatctl greet checks when it calls the greeter found as
// `name_key` (lower case).
std::string GreeterCertificateName(const std::string& name_key);

// Makes a TLS channel built with `args` check the server's certificate
// against `name` instead of the host of the target it dials: peers and the
// greeter are dialled at the address they registered (a container's IP, say)
// and hold a certificate for their role and name (PeerCertificateName(),
// GreeterCertificateName()). No effect on a plaintext channel.
void SetTlsServerName(grpc::ChannelArguments& args, const std::string& name);

// For a channel to `address` ("host:port") that checks the host it dials
// (the registry): when the host lies under .invalid, where role names live
// and no real host does, makes the check expect a name no certificate from
// make-certs carries, so that a role certificate is refused there too.
// Otherwise nothing changes. No effect on a plaintext channel.
void GuardTlsHostCheck(grpc::ChannelArguments& args,
                       const std::string& address);

}  // namespace chat

#endif  // CHAT_COMMON_TLS_H_
