// This file contains the job service's web page (GET /): one self-contained HTML document with its
// style and script inline, nothing fetched from elsewhere, so it works offline. It polls the service's
// JSON API every second (GET /v1/jobs, /v1/jobs/ID, /v1/workers), shows each job with a progress bar per
// phase, the tasks of the job picked and the workers, and has a form to submit a job (POST /v1/jobs) and
// a cancel button per running job (DELETE /v1/jobs/ID). When the service answers 401 (it runs with
// --auth-token-file) the page asks for the token once and sends it as a bearer token from then on.
#pragma once

#include <string_view>

namespace mrkv::mr {

std::string_view job_page_html() noexcept;

}  // namespace mrkv::mr
