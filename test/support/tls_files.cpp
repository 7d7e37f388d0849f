#include "support/tls_files.hpp"

#include <cstdlib>
#include <stdexcept>
#include <system_error>

namespace mrkv::test {

tls_files::tls_files() {
  std::string pattern = (std::filesystem::temp_directory_path() / "mrkv-tls-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  directory = pattern;
  cert = (directory / "cert.pem").string();
  key = (directory / "key.pem").string();
  std::string command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
                        " -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout '" +
                        key + "' -out '" + cert + "' >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
    throw std::runtime_error("openssl req failed; is openssl installed?");
  }
}

tls_files::~tls_files() {
  std::error_code ignored;
  std::filesystem::remove_all(directory, ignored);
}

}  // namespace mrkv::test
