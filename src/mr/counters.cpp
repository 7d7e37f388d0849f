#include "mrkv/mr/counters.hpp"

#include <charconv>

namespace mrkv::mr {

namespace {

std::int64_t wrapping_add(std::int64_t a, std::int64_t b) noexcept {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

}  // namespace

void add_counters(counters& into, const counters& more) {
  for (const auto& [group, names] : more)
    for (const auto& [name, value] : names) {
      auto& slot = into[group][name];
      slot = wrapping_add(slot, value);
    }
}

std::int64_t shuffled_bytes(const counters& c) noexcept {
  const auto group = c.find("mrkv");
  if (group == c.end()) return 0;
  const auto value = group->second.find("reduce_input_bytes");
  return value == group->second.end() ? 0 : value->second;
}

bool is_reporter_line(std::string_view line) noexcept { return line.starts_with("reporter:"); }

bool parse_counter_line(std::string_view line, counters& into) {
  constexpr std::string_view prefix = "reporter:counter:";
  if (!line.starts_with(prefix)) return false;
  line.remove_prefix(prefix.size());
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const auto first = line.find(',');
  const auto last = line.rfind(',');
  if (first == std::string_view::npos || first == last) return false;
  const auto group = line.substr(0, first);
  const auto name = line.substr(first + 1, last - first - 1);
  auto amount_text = line.substr(last + 1);
  if (group.empty() || name.empty() || amount_text.empty()) return false;
  if (amount_text.front() == '+') amount_text.remove_prefix(1);
  std::int64_t amount = 0;
  const auto [end, ec] = std::from_chars(amount_text.data(), amount_text.data() + amount_text.size(), amount);
  if (ec != std::errc() || end != amount_text.data() + amount_text.size()) return false;
  auto& slot = into[std::string(group)][std::string(name)];
  slot = wrapping_add(slot, amount);
  return true;
}

}  // namespace mrkv::mr
