// Process-wide logging: one whole line per event on stderr, with a UTC timestamp, a level and the
// component that speaks. Lines from different threads never interleave (one mutex, one write).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace mrkv::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

// Parses "debug", "info", "warn", "error" or "off"; throws std::invalid_argument otherwise.
level parse_level(std::string_view name);
std::string_view level_name(level l);

// The threshold below which lines are dropped; "info" until set.
void set_threshold(level l);
bool enabled(level l);

// Writes "2026-11-25T13:24:50.123Z INFO  [component] message\n" if `l` passes the threshold.
void write(level l, std::string_view component, std::string_view message);

inline void debug(std::string_view component, std::string_view message) {
  if (enabled(level::debug)) write(level::debug, component, message);
}
inline void info(std::string_view component, std::string_view message) { write(level::info, component, message); }
inline void warn(std::string_view component, std::string_view message) { write(level::warn, component, message); }
inline void error(std::string_view component, std::string_view message) { write(level::error, component, message); }

// Quotes text that came from a peer so that it can't forge log lines or hide in them: control bytes are
// escaped and long text is cut.
std::string peer_text(std::string_view text, std::size_t max_len = 200);

// A duration as people write it: "10 s", "1.5 s", "250 ms", "0.42 ms", "2 min 5 s"; at most three
// significant digits, no trailing zeros.
std::string duration(std::chrono::nanoseconds d);

// "2026-12-03T09:43:04.382Z": the stamp of every log line, and how status replies write wall-clock times.
std::string utc_time(std::chrono::system_clock::time_point when);

}  // namespace mrkv::log
