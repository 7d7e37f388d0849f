// This file contains the built-in applications, wc and indexer (the lab's), private to the MapReduce
// layer: load_application() is how everyone else gets them.
#pragma once

#include "mrkv/mr/application.hpp"

#include <memory>
#include <string_view>

namespace mrkv::mr {

// "wc" or "indexer"; nullptr for any other name.
std::unique_ptr<application> make_builtin_app(std::string_view name);

}  // namespace mrkv::mr
