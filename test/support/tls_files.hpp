// A throwaway self-signed certificate for 127.0.0.1 and localhost, made with `openssl req` at test
// time in a private temporary directory that is removed afterwards.
#pragma once

#include "support/temp_dir.hpp"

#include <string>

namespace mrkv::test {

struct tls_files {
  temp_dir directory{"tls"};
  std::string cert;  // PEM certificate (also the CA to trust: it signs itself)
  std::string key;   // PEM private key
  tls_files();       // throws std::runtime_error when openssl fails
};

}  // namespace mrkv::test
