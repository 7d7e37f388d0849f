#include "support/tls_files.hpp"

#include <cstdlib>
#include <stdexcept>

namespace mrkv::test {

tls_files::tls_files() : cert((directory.path() / "cert.pem").string()), key((directory.path() / "key.pem").string()) {
  std::string command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
                        " -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout '" +
                        key + "' -out '" + cert + "' >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("openssl req failed; is openssl installed?");
}

}  // namespace mrkv::test
