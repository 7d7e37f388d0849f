#include "mrkv/mr/job_files.hpp"

#include <system_error>

namespace mrkv::mr {
namespace {

// Consumes a run of decimal digits at the front of `s`; false if there is none.
bool take_number(std::string_view& s) noexcept {
  std::size_t n = 0;
  while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
  s.remove_prefix(n);
  return n > 0;
}

bool take(std::string_view& s, std::string_view prefix) noexcept {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

}  // namespace

bool is_output_file_name(std::string_view name) noexcept {
  return take(name, "mr-out-") && take_number(name) && name.empty();
}

bool is_intermediate_file_name(std::string_view name) noexcept {
  if (take(name, ".tmp-mr-")) return true;  // an interrupted write of any mr- file
  if (!take(name, "mr-") || !take_number(name)) return false;
  if (name == ".map" || name == "-index") return true;
  if (!take(name, "-")) return false;
  if (take_number(name)) return name.empty();  // mr-M-R
  return take(name, "a") && take_number(name) && take(name, "-s") && take_number(name) && name.empty();
}

removed_files remove_job_files(const std::filesystem::path& dir, job_file_kinds kinds) {
  removed_files removed;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const bool ours = is_intermediate_file_name(name) ||
                      (kinds == job_file_kinds::outputs_and_intermediate && is_output_file_name(name));
    std::error_code type_error, size_error, remove_error;
    if (!ours || !entry.is_regular_file(type_error)) continue;
    const auto size = entry.file_size(size_error);
    if (!std::filesystem::remove(entry.path(), remove_error)) {
      if (remove_error) throw std::filesystem::filesystem_error("cannot remove", entry.path(), remove_error);
      continue;  // gone meanwhile
    }
    ++removed.files;
    removed.bytes += size_error ? 0 : size;
    if (removed.first_name.empty()) removed.first_name = name;
  }
  return removed;
}

}  // namespace mrkv::mr
