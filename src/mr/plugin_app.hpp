// This file contains applications loaded from shared libraries that follow mrkv/plugin.h, private to
// the MapReduce layer: load_application() is how everyone else gets them.
#pragma once

#include "mrkv/mr/application.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace mrkv::mr {

// A name containing '/' or ending in ".so".
bool is_plugin_name(std::string_view name);

// dlopen()s the plugin (see load_application()); app_error when it can't be loaded or used.
std::unique_ptr<application> load_plugin(std::string name);

}  // namespace mrkv::mr
