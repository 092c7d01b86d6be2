#include "common/tls_options.h"

#include <string>

namespace chat {
namespace po = boost::program_options;
namespace {

std::string Get(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

}  // namespace

void AddTlsOptions(po::options_description& options, CommandLine& command_line,
                   unsigned which) {
  auto add = options.add_options();
  const bool serves = (which & kTlsServe) != 0;
  add("tls-cert", po::value<std::string>()->value_name("FILE"),
      serves ? "PEM certificate to serve TLS with (TLS only, no plaintext); "
               "also shown to a registry that asks for a client certificate"
             : "PEM client certificate, for a registry that asks for one "
               "(--tls-client-ca); needs --tls-ca");
  add("tls-key", po::value<std::string>()->value_name("FILE"),
      "PEM private key of --tls-cert");
  command_line.environment.push_back({"CHAT_TLS_CERT", "tls-cert"});
  command_line.environment.push_back({"CHAT_TLS_KEY", "tls-key"});
  if ((which & kTlsVerify) != 0) {
    add("tls-ca", po::value<std::string>()->value_name("FILE"),
        "PEM CA certificate: talk TLS only, to servers whose certificate it "
        "signed (scripts/make-certs makes one); without it, plaintext");
    command_line.environment.push_back({"CHAT_TLS_CA", "tls-ca"});
  }
  if ((which & kTlsClientCa) != 0) {
    add("tls-client-ca", po::value<std::string>()->value_name("FILE"),
        "PEM CA certificate: admit only clients holding a certificate it "
        "signed (mutual TLS); needs --tls-cert and --tls-key");
    command_line.environment.push_back({"CHAT_TLS_CLIENT_CA", "tls-client-ca"});
  }
}

TlsServerFiles TlsServerFilesFrom(const po::variables_map& vm) {
  TlsServerFiles files;
  files.cert_file = Get(vm, "tls-cert");
  files.key_file = Get(vm, "tls-key");
  files.client_ca_file = Get(vm, "tls-client-ca");
  return files;
}

TlsClientFiles TlsClientFilesFrom(const po::variables_map& vm, unsigned which) {
  TlsClientFiles files;
  files.ca_file = Get(vm, "tls-ca");
  if (files.ca_file.empty() && (which & kTlsServe) != 0) return files;
  files.cert_file = Get(vm, "tls-cert");
  files.key_file = Get(vm, "tls-key");
  return files;
}

}  // namespace chat
