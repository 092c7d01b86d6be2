// The TLS options of our executables, added and read the same way in every
// main.cc (two lines each): --tls-cert, --tls-key, --tls-ca, --tls-client-ca
// and their CHAT_TLS_* environment variables.

#ifndef CHAT_COMMON_TLS_OPTIONS_H_
#define CHAT_COMMON_TLS_OPTIONS_H_

#include <boost/program_options.hpp>

#include "common/cli.h"
#include "common/tls.h"

namespace chat {

// Which options a program takes; combine with |.
enum TlsOptionSet : unsigned {
  kTlsServe = 1,     // --tls-cert, --tls-key: serve TLS (a server).
  kTlsVerify = 2,    // --tls-ca: verify the servers it calls (a client).
  kTlsClientCa = 4,  // --tls-client-ca: ask clients for a certificate.
};

// Adds the options of `which` to `options` and their environment variables
// (CHAT_TLS_CERT, CHAT_TLS_KEY, CHAT_TLS_CA, CHAT_TLS_CLIENT_CA) to
// `command_line`. A client without kTlsServe still gets --tls-cert and
// --tls-key, for a registry that asks for a client certificate.
void AddTlsOptions(boost::program_options::options_description& options,
                   CommandLine& command_line, unsigned which);

// What the options added by AddTlsOptions() hold (empty when absent).
TlsServerFiles TlsServerFilesFrom(
    const boost::program_options::variables_map& vm);
// --tls-ca, and --tls-cert/--tls-key as the client certificate. With
// kTlsServe in `which` (the certificate is the one the program serves with)
// and no --tls-ca, no client certificate: a server may serve TLS and still
// call a plaintext registry.
TlsClientFiles TlsClientFilesFrom(
    const boost::program_options::variables_map& vm, unsigned which);

}  // namespace chat

#endif  // CHAT_COMMON_TLS_OPTIONS_H_
