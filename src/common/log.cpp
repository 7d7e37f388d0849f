#include "mrkv/common/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <stdexcept>

namespace mrkv::log {
namespace {

std::atomic<int> threshold{static_cast<int>(level::info)};
std::mutex write_mutex;

}  // namespace

level parse_level(std::string_view name) {
  if (name == "debug") return level::debug;
  if (name == "info") return level::info;
  if (name == "warn" || name == "warning") return level::warn;
  if (name == "error") return level::error;
  if (name == "off") return level::off;
  throw std::invalid_argument("unknown log level '" + std::string(name) + "' (debug, info, warn, error, off)");
}

std::string_view level_name(level l) {
  switch (l) {
    case level::debug: return "DEBUG";
    case level::info: return "INFO ";
    case level::warn: return "WARN ";
    case level::error: return "ERROR";
    default: return "OFF  ";
  }
}

void set_threshold(level l) { threshold.store(static_cast<int>(l), std::memory_order_relaxed); }

bool enabled(level l) { return static_cast<int>(l) >= threshold.load(std::memory_order_relaxed); }

std::string utc_time(std::chrono::system_clock::time_point when) {
  const auto seconds = std::chrono::system_clock::to_time_t(when);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[80];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(millis));
  return stamp;
}

void write(level l, std::string_view component, std::string_view message) {
  if (!enabled(l) || l == level::off) return;
  const std::string stamp = utc_time(std::chrono::system_clock::now());
  std::string line;
  line.reserve(48 + component.size() + message.size());
  line.append(stamp).append(" ").append(level_name(l)).append(" [").append(component).append("] ");
  line.append(message).push_back('\n');
  std::lock_guard lock(write_mutex);
  // One write(2) per line: lines stay whole even when several processes share the terminal.
  const char* data = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, data, left);
    if (n <= 0) break;
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

std::string peer_text(std::string_view text, std::size_t max_len) {
  std::string out;
  out.reserve(std::min(text.size(), max_len) + 2);
  out.push_back('"');
  for (std::size_t i = 0; i < text.size() && i < max_len; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out.append(hex);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (text.size() > max_len) out.append("...");
  out.push_back('"');
  return out;
}

namespace {

// `value` with `decimals` digits after the point, trailing zeros (and a bare point) dropped.
std::string trimmed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  std::string out = text;
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  return out;
}

// Three significant digits for values of 0.001 up to 999.
std::string three_digits(double value) {
  const int decimals = value >= 100 ? 0 : value >= 10 ? 1 : value >= 1 ? 2 : 3;
  return trimmed(value, decimals);
}

}  // namespace

std::string duration(std::chrono::nanoseconds d) {
  const double ns = static_cast<double>(d.count());
  const char* sign = ns < 0 ? "-" : "";
  const double abs_ns = ns < 0 ? -ns : ns;
  if (abs_ns < 1e9) return sign + three_digits(abs_ns / 1e6) + " ms";
  if (abs_ns < 60e9) return sign + three_digits(abs_ns / 1e9) + " s";
  const auto whole_seconds = static_cast<long long>(abs_ns / 1e9 + 0.5);
  std::string out = sign + std::to_string(whole_seconds / 60) + " min";
  if (whole_seconds % 60) out += " " + std::to_string(whole_seconds % 60) + " s";
  return out;
}

}  // namespace mrkv::log
