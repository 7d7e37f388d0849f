#include "mrkv/mr/task_runner.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <span>
#include <stdexcept>

#include "mrkv/common/log.hpp"
#include "mrkv/mr/map_output.hpp"
#include "mrkv/mr/partition.hpp"

namespace mrkv::mr {
namespace {

// Runs `body`, prefixing the message of any file error with the task it happened in.
template <class F>
void in_task(const std::string& task, F&& body) {
  try {
    body();
  } catch (const task_file_error& e) {
    throw task_file_error(e.why(), task + ": " + e.what());
  }
}

long long millis_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

// Sorts `pairs` by key and calls f(key, values) once per distinct key, in byte order of keys.
template <class F>
void for_each_key(std::vector<kv_view>& pairs, F&& f) {
  // Most keys differ within their first few bytes, so look at those inline before paying for a full
  // compare (a memcmp call per comparison dominated the sort).
  std::sort(pairs.begin(), pairs.end(), [](const kv_view& a, const kv_view& b) {
    const std::size_t n = std::min<std::size_t>({a.key.size(), b.key.size(), 8});
    for (std::size_t i = 0; i < n; ++i) {
      const auto x = static_cast<unsigned char>(a.key[i]);
      const auto y = static_cast<unsigned char>(b.key[i]);
      if (x != y) return x < y;
    }
    return a.key < b.key;
  });
  std::vector<std::string_view> values;
  for (std::size_t i = 0; i < pairs.size();) {
    const std::string_view key = pairs[i].key;
    values.clear();
    std::size_t j = i;
    for (; j < pairs.size() && pairs[j].key == key; ++j) values.push_back(pairs[j].value);
    f(key, std::span<const std::string_view>(values));
    i = j;
  }
}

}  // namespace

counters run_map_task(application& app, int map_id, const std::string& input_path, int n_reduce,
                      const std::filesystem::path& workdir, const std::filesystem::path& input_copy) {
  if (map_id < 0) throw std::invalid_argument("run_map_task: negative map task number");
  if (n_reduce < 1) throw std::invalid_argument("run_map_task: n_reduce must be at least 1");
  const std::string task = "map task " + std::to_string(map_id);
  counters counts;
  in_task(task, [&] {
    const auto start = std::chrono::steady_clock::now();
    const std::string contents = read_whole_file(input_copy.empty() ? std::filesystem::path(input_path) : input_copy);
    std::vector<intermediate_encoder> buckets(static_cast<std::size_t>(n_reduce));
    std::uint64_t pairs = 0;
    auto to_bucket = [&](std::string_view key, std::string_view value) {
      buckets[static_cast<std::size_t>(reduce_bucket(key, n_reduce))].add(key, value);
      ++pairs;
    };
    if (app.has_combiner()) {
      // The map's pairs wait in one arena (the intermediate encoding) to be grouped by key.
      intermediate_encoder all;
      app.map(input_path, contents, [&](std::string_view key, std::string_view value) { all.add(key, value); });
      const std::string image = all.finish();
      std::vector<kv_view> mapped;
      decode_intermediate(image, "(map output)", mapped);
      counts["mrkv"]["combine_input_records"] = static_cast<std::int64_t>(mapped.size());
      for_each_key(mapped, [&](std::string_view key, std::span<const std::string_view> values) {
        app.combine(key, values, to_bucket);
      });
      counts["mrkv"]["combine_output_records"] = static_cast<std::int64_t>(pairs);
    } else {
      app.map(input_path, contents, to_bucket);
    }
    map_output_writer out(workdir / map_output_file_name(map_id));
    std::uint64_t bytes = 0;
    for (auto& bucket : buckets) {
      const std::string image = bucket.finish();
      bytes += image.size();
      out.add_partition(image);
    }
    out.commit();
    counts["mrkv"]["map_output_records"] = static_cast<std::int64_t>(pairs);
    counts["mrkv"]["map_output_bytes"] = static_cast<std::int64_t>(bytes);
    if (log::enabled(log::level::debug))
      log::debug("mr", task + ": " + std::to_string(contents.size()) + " bytes of " + input_path + " -> " +
                           std::to_string(pairs) + " pairs in " + std::to_string(millis_since(start)) + " ms");
  });
  return counts;
}

counters run_reduce_task(application& app, int reduce_id, int n_map, const std::filesystem::path& workdir) {
  return run_reduce_task(app, reduce_id, n_map, workdir, [&](int map_id) {
    return map_output_reader(workdir / map_output_file_name(map_id)).read(reduce_id);
  });
}

counters run_reduce_task(application& app, int reduce_id, int n_map, const std::filesystem::path& workdir,
                         const partition_fetcher& fetch) {
  if (reduce_id < 0) throw std::invalid_argument("run_reduce_task: negative reduce task number");
  if (n_map < 0) throw std::invalid_argument("run_reduce_task: negative n_map");
  const std::string task = "reduce task " + std::to_string(reduce_id);
  counters counts;
  in_task(task, [&] {
    const auto start = std::chrono::steady_clock::now();
    // The pairs are views into these buffers. Reserved up front so that no buffer moves once viewed.
    std::vector<std::string> images;
    images.reserve(static_cast<std::size_t>(n_map));
    std::vector<kv_view> pairs;
    std::uint64_t bytes = 0;
    for (int m = 0; m < n_map; ++m) {
      images.push_back(fetch(m));
      bytes += images.back().size();
      decode_intermediate(images.back(), map_output_file_name(m) + " partition " + std::to_string(reduce_id), pairs);
    }
    const std::size_t n_pairs = pairs.size();
    write_file_atomically(workdir / output_file_name(reduce_id), reduce_pairs(app, pairs));
    counts["mrkv"]["reduce_input_records"] = static_cast<std::int64_t>(n_pairs);
    counts["mrkv"]["reduce_input_bytes"] = static_cast<std::int64_t>(bytes);
    if (log::enabled(log::level::debug))
      log::debug("mr", task + ": " + std::to_string(n_pairs) + " pairs from " + std::to_string(n_map) + " maps in " +
                           std::to_string(millis_since(start)) + " ms");
  });
  return counts;
}

std::string reduce_pairs(application& app, std::vector<kv_view>& pairs) {
  std::string out;
  for_each_key(pairs, [&](std::string_view key, std::span<const std::string_view> values) {
    const std::string result = app.reduce(key, values);
    out.append(key).append(1, ' ').append(result).append(1, '\n');
  });
  return out;
}

}  // namespace mrkv::mr
