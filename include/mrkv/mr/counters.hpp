// This file contains a task's counters: named 64-bit sums in groups, as Hadoop's, that a streaming
// command adds to by writing "reporter:counter:GROUP,NAME,AMOUNT" lines to its standard error. A worker
// sends a successful attempt's counters with its report; the coordinator sums those of the attempts
// that finished their task, so a failed or a losing backup attempt adds nothing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace mrkv::mr {

// group -> name -> value.
using counters = std::map<std::string, std::map<std::string, std::int64_t>>;

// Adds `more` into `into` (sums wrap rather than overflow: they are reports, not money).
void add_counters(counters& into, const counters& more);

// If `line` is "reporter:counter:GROUP,NAME,AMOUNT" (NAME may hold commas; AMOUNT a decimal integer),
// adds AMOUNT to that counter and returns true. Any other line: false, nothing changes.
bool parse_counter_line(std::string_view line, counters& into);

// The bytes reducers read from map outputs (the "mrkv" counter reduce_input_bytes): what the shuffle
// moved, over the network for shared-nothing workers.
std::int64_t shuffled_bytes(const counters& c) noexcept;

// True for every "reporter:..." line (status and counter updates), which are not the command's own
// diagnostics.
bool is_reporter_line(std::string_view line) noexcept;

}  // namespace mrkv::mr
