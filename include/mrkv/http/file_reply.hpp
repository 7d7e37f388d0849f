// This file contains a reply that is a file's bytes, with the one byte range a client may ask for
// ("Range: bytes=A-B", "bytes=A-" or "bytes=-N": 206 with Content-Range; a range that starts past the
// end: 416), as a job service serves its inputs to workers that cannot read them.
#pragma once

#include "mrkv/http/reply.hpp"
#include "mrkv/http/router.hpp"

#include <filesystem>

namespace mrkv::http {

// 404 {"error"} when the file does not exist, 500 when it cannot be read. Files are read whole into
// memory: fine for inputs, which a map task holds whole anyway.
reply file_reply(const request& req, const std::filesystem::path& path);

}  // namespace mrkv::http
