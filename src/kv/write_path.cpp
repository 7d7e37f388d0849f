#include "mrkv/kv/write_path.hpp"

namespace mrkv::kv {

boost::asio::awaitable<write_result> memory_write_path::execute(write_command command) {
  co_return data_.execute(std::move(command), store::clock::now());
}

}  // namespace mrkv::kv
