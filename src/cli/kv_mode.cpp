#include "mrkv/cli/modes.hpp"
#include "mrkv/cli/options.hpp"

namespace mrkv::cli {

// SCAFFOLD: replaced by the real mode in its own commit.
int run_kv(const args&) { throw usage_error("kv: not built yet"); }

}  // namespace mrkv::cli
