// The write-ahead log without a store: its formats (frames, headers, checksums), round trips under each
// fsync policy, a torn tail cut at every byte offset of the last record, a flipped bit anywhere in a
// record that is not last stopping the start, snapshots (compaction, and an interrupted or damaged one
// falling back to the previous), and the directory lock. The state machine here is a list of strings:
// a command appends itself, a snapshot entry is one element.
#include "mrkv/kv/crc32c.hpp"
#include "mrkv/kv/log_format.hpp"
#include "mrkv/kv/write_ahead_log.hpp"
#include "support/poll_until.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <vector>

namespace mrkv::kv {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct temp_dir {
  fs::path path;
  temp_dir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("mrkv-wal-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// The list the log rebuilds: applied commands in order.
struct list_state {
  std::mutex mutex;
  std::vector<std::string> items;
};

class list_cut : public snapshot_cut {
 public:
  explicit list_cut(std::vector<std::string> items) : items_(std::move(items)) {}
  void write(const std::function<void(std::string_view)>& emit) override {
    for (const auto& item : items_) emit(item);
  }

 private:
  std::vector<std::string> items_;
};

class list_write : public pending_write {
 public:
  list_write(std::string command, list_state& state, std::promise<bool> done)
      : pending_write(command), command_(std::move(command)), state_(state), done_(std::move(done)) {}
  void apply() noexcept override {
    {
      std::lock_guard lock(state_.mutex);
      state_.items.push_back(command_);
    }
    done_.set_value(true);
  }
  void fail(const std::string&) noexcept override { done_.set_value(false); }

 private:
  std::string command_;
  list_state& state_;
  std::promise<bool> done_;
};

// A log over `dir` and a fresh list rebuilt from it.
struct opened {
  list_state state;
  std::unique_ptr<write_ahead_log> log;

  explicit opened(const fs::path& dir, fsync_policy policy = fsync_policy::always,
                  std::uint64_t snapshot_after = std::uint64_t{1} << 40, std::uint64_t segment_bytes = 1 << 20) {
    wal_recovery recovery;
    recovery.load_entry = [this](std::string_view e) { state.items.emplace_back(e); };
    recovery.replay = [this](std::string_view c) { state.items.emplace_back(c); };
    wal_options o;
    o.dir = dir;
    o.fsync = policy;
    o.snapshot_after = snapshot_after;
    o.segment_bytes = segment_bytes;
    log = std::make_unique<write_ahead_log>(o, recovery, [this] {
      std::lock_guard lock(state.mutex);
      return std::make_unique<list_cut>(state.items);
    });
  }

  bool write(const std::string& command) {
    std::promise<bool> done;
    auto answered = done.get_future();
    log->submit(std::make_unique<list_write>(command, state, std::move(done)));
    REQUIRE(answered.wait_for(30s) == std::future_status::ready);
    return answered.get();
  }

  std::vector<std::string> items() {
    std::lock_guard lock(state.mutex);
    return state.items;
  }
};

std::vector<std::string> numbered(int from, int to) {
  std::vector<std::string> v;
  for (int i = from; i <= to; ++i) v.push_back("command-" + std::to_string(i));
  return v;
}

std::vector<fs::path> files_named(const fs::path& dir, std::string_view prefix, std::string_view suffix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(suffix)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const fs::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Offsets at which each record of a segment begins, and the segment's end.
std::vector<std::size_t> record_offsets(const std::string& segment) {
  std::vector<std::size_t> at{disk::header_size};
  for (;;) {
    auto f = disk::read_frame(segment, at.back());
    if (f.status != disk::frame::kind::ok) break;
    at.push_back(f.next);
  }
  return at;
}

TEST_SUITE("wal") {

TEST_CASE("wal format: crc32c is the standard one, frames and headers round-trip and catch damage") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  CHECK(crc32c("56789", crc32c("1234")) == crc32c("123456789"));
  std::string long_text(1000, 'x');
  for (std::size_t i = 0; i < long_text.size(); ++i) long_text[i] = static_cast<char>(i * 7);
  // The instruction path and the table path meet on a split at any point.
  CHECK(crc32c(long_text.substr(3), crc32c(long_text.substr(0, 3))) == crc32c(long_text));

  std::string file = disk::make_header(disk::segment_magic, 42);
  CHECK(disk::read_header(file, disk::segment_magic) == 42u);
  CHECK_FALSE(disk::read_header(file, disk::snapshot_magic).has_value());
  disk::append_frame(file, "hello");
  disk::append_frame(file, "");
  auto a = disk::read_frame(file, disk::header_size);
  REQUIRE(a.status == disk::frame::kind::ok);
  CHECK(a.payload == "hello");
  auto b = disk::read_frame(file, a.next);
  REQUIRE(b.status == disk::frame::kind::ok);
  CHECK(b.payload.empty());
  CHECK(disk::read_frame(file, b.next).status == disk::frame::kind::end);
  for (std::size_t bit = 0; bit < 8 * disk::header_size; ++bit) {
    std::string damaged = file;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    CHECK_FALSE(disk::read_header(damaged, disk::segment_magic) == 42u);
  }
  for (std::size_t bit = 8 * disk::header_size; bit < 8 * a.next; ++bit) {
    std::string damaged = file;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    CHECK(disk::read_frame(damaged, disk::header_size).status == disk::frame::kind::bad);
  }
  disk::reader r(std::string_view("\x01\x02", 2));
  CHECK(r.u8() == 1);
  CHECK(r.u32() == 0);
  CHECK(r.failed());
}

TEST_CASE("wal: every policy gives back what it acknowledged, in order, across reopenings") {
  for (auto policy : {fsync_policy::always, fsync_policy::everysec, fsync_policy::never}) {
    CAPTURE(fsync_policy_name(policy));
    temp_dir dir;
    {
      opened db(dir.path, policy);
      for (const auto& c : numbered(1, 50)) REQUIRE(db.write(c));
    }
    {
      opened db(dir.path, policy);
      CHECK(db.items() == numbered(1, 50));
      for (const auto& c : numbered(51, 60)) REQUIRE(db.write(c));
    }
    opened db(dir.path, policy);
    CHECK(db.items() == numbered(1, 60));
    CHECK(db.log->stats().recovered_records == 60);
  }
}

TEST_CASE("wal: concurrent writers share syncs (group commit) and all land in one order") {
  temp_dir dir;
  std::vector<std::string> applied;
  {
    opened db(dir.path, fsync_policy::always);
    std::vector<std::thread> writers;
    for (int t = 0; t < 8; ++t)
      writers.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) CHECK(db.write("t" + std::to_string(t) + "-" + std::to_string(i)));
      });
    for (auto& w : writers) w.join();
    applied = db.items();
    const auto s = db.log->stats();
    CHECK(s.records == 400);
    MESSAGE("400 writes from 8 threads took " << s.fsyncs << " fsyncs");
    CHECK(s.fsyncs < 400);  // some writes shared a sync
  }
  opened db(dir.path);
  CHECK(db.items() == applied);  // the log order is the apply order
}

// A log of three commands written through the log itself: its one segment, that segment's bytes and
// where each record starts (and the end), for tests that cut or damage it.
struct three_records {
  fs::path segment;
  std::string whole;
  std::vector<std::size_t> offsets;
  explicit three_records(const temp_dir& dir) {
    {
      opened db(dir.path);
      for (const auto& c : numbered(1, 3)) REQUIRE(db.write(c));
    }
    segment = files_named(dir.path, "wal-", ".log").at(0);
    whole = slurp(segment);
    offsets = record_offsets(whole);
  }
};

TEST_CASE("wal: a torn last record is cut at every byte offset, and the log goes on after it") {
  temp_dir source;
  const three_records log(source);
  const auto& [segment, whole, offsets] = log;
  REQUIRE(offsets.size() == 4);
  for (std::size_t cut = offsets[2] + 1; cut < whole.size(); ++cut) {
    CAPTURE(cut);
    temp_dir dir;
    const auto copy = dir.path / segment.filename();
    spit(copy, std::string_view(whole).substr(0, cut));
    {
      opened db(dir.path);
      CHECK(db.items() == numbered(1, 2));
      CHECK(fs::file_size(copy) == offsets[2]);
      REQUIRE(db.write("after"));
    }
    opened db(dir.path);
    CHECK(db.items() == std::vector<std::string>{"command-1", "command-2", "after"});
  }
}

TEST_CASE("wal: a flipped bit in any field of a record that is not last stops the start, naming file and offset") {
  temp_dir source;
  const three_records log(source);
  const auto& [segment, whole, offsets] = log;
  // Every bit of the middle record (length, checksum, lsn, command) and of the segment header.
  std::vector<std::size_t> bits;
  for (std::size_t bit = 0; bit < 8 * disk::header_size; ++bit) bits.push_back(bit);
  for (std::size_t bit = 8 * offsets[1]; bit < 8 * offsets[2]; ++bit) bits.push_back(bit);
  for (auto bit : bits) {
    CAPTURE(bit);
    temp_dir dir;
    std::string damaged = whole;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    spit(dir.path / segment.filename(), damaged);
    const std::string where = bit < 8 * disk::header_size ? "offset 0" : "offset " + std::to_string(offsets[1]);
    try {
      opened db(dir.path);
      FAIL("the start went on with a damaged log");
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      CHECK(what.find(segment.filename().string()) != std::string::npos);
      CHECK_MESSAGE(what.find(where) != std::string::npos, what);
    }
  }
  // The same flip in the last record is a torn tail: it is cut, the rest stays.
  for (std::size_t bit = 8 * offsets[2]; bit < 8 * offsets[3]; bit += 7) {
    CAPTURE(bit);
    temp_dir dir;
    std::string damaged = whole;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    spit(dir.path / segment.filename(), damaged);
    opened db(dir.path);
    CHECK(db.items() == numbered(1, 2));
  }
}

TEST_CASE("wal: a snapshot compacts the log, and recovery is the snapshot plus the records after it") {
  temp_dir dir;
  {
    opened db(dir.path, fsync_policy::always, 1 << 30, 4096);
    for (const auto& c : numbered(1, 300)) REQUIRE(db.write(c));
    CHECK(files_named(dir.path, "wal-", ".log").size() >= 2);  // rotated past 4 KiB
    db.log->snapshot_now();
    CHECK(db.log->stats().snapshots == 1);
    for (const auto& c : numbered(301, 310)) REQUIRE(db.write(c));
  }
  CHECK(files_named(dir.path, "snap-", ".snap").size() == 1);
  CHECK(files_named(dir.path, "wal-", ".log").size() == 1);  // the older segments are gone
  opened db(dir.path);
  CHECK(db.items() == numbered(1, 310));
  const auto s = db.log->stats();
  CHECK(s.recovered_entries == 300);
  CHECK(s.recovered_records == 10);
}

TEST_CASE("wal: snapshots start by themselves past --snapshot-after, and keep disk use bounded") {
  temp_dir dir;
  opened db(dir.path, fsync_policy::never, 2000, 4096);
  for (const auto& c : numbered(1, 2000)) REQUIRE(db.write(c));
  db.log->snapshot_now();  // waits for whichever snapshot is running
  CHECK(db.log->stats().snapshots >= 2);
  std::uint64_t on_disk = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) on_disk += e.file_size();
  const std::uint64_t live = 2000 * (std::string("command-1000").size() + disk::frame_overhead);
  CHECK(on_disk < 2 * live + 2000 + 4096 * 2);
}

// Record starts in a segment holding `commands` from lsn 1: after the header, frame, lsn and command each.
std::vector<std::size_t> record_offsets(const std::vector<std::string>& commands) {
  std::vector<std::size_t> offsets{disk::header_size};
  for (const auto& c : commands) offsets.push_back(offsets.back() + disk::frame_overhead + 8 + c.size());
  return offsets;
}

// Why a log on `dir` refuses to start ("" if it starts).
std::string start_error(const fs::path& dir) {
  try {
    opened db(dir);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("wal: never-written bytes before later records are a torn tail in the last segment, damage in another") {
  // What a power cut leaves when the page cache wrote a later page of the unsynced end and not an
  // earlier one: zeros where records were, valid records after them.
  temp_dir source;
  auto commands = numbered(1, 300);
  commands.insert(commands.begin() + 200, std::string(3000, 'x'));  // record 201 spans whole sectors
  {
    opened db(source.path, fsync_policy::never);
    for (const auto& c : commands) REQUIRE(db.write(c));
  }
  const auto segment = files_named(source.path, "wal-", ".log").at(0);
  const std::string whole = slurp(segment);
  const auto offsets = record_offsets(commands);
  REQUIRE(offsets.back() == whole.size());
  auto restart_on = [&](const std::string& bytes) {
    temp_dir dir;
    spit(dir.path / segment.filename(), bytes);
    std::vector<std::string> items;
    {
      opened db(dir.path);
      items = db.items();
      REQUIRE(db.write("after"));
    }
    opened db(dir.path);
    auto after = db.items();
    CHECK(after.size() == items.size() + 1);
    CHECK(after.back() == "after");
    return items;
  };
  const std::vector<std::string> first_149(commands.begin(), commands.begin() + 149);
  SUBCASE("a page never written from a record's start") {
    std::string torn = whole;
    const std::size_t hole = offsets[149], page_end = (hole / 4096 + 1) * 4096;
    REQUIRE(page_end < offsets[199]);
    std::fill(torn.begin() + static_cast<std::ptrdiff_t>(hole), torn.begin() + static_cast<std::ptrdiff_t>(page_end), '\0');
    CHECK(restart_on(torn) == first_149);
  }
  SUBCASE("a page never written into which a record runs from the page before") {
    std::string torn = whole;
    const auto crossing = std::find_if(offsets.begin(), offsets.end(), [](std::size_t o) { return o > 4096; }) - 1;
    REQUIRE(*crossing < 4096);
    std::fill(torn.begin() + 4096, torn.begin() + 8192, '\0');
    CHECK(restart_on(torn) == std::vector<std::string>(commands.begin(), commands.begin() + (crossing - offsets.begin())));
  }
  SUBCASE("a whole sector inside a record never written") {
    std::string torn = whole;
    const std::size_t sector = (offsets[200] / 512 + 2) * 512;
    REQUIRE(sector + 512 <= offsets[201]);
    std::fill(torn.begin() + static_cast<std::ptrdiff_t>(sector), torn.begin() + static_cast<std::ptrdiff_t>(sector + 512), '\0');
    CHECK(restart_on(torn) == std::vector<std::string>(commands.begin(), commands.begin() + 200));
  }
  SUBCASE("fewer zeros than that are damage") {
    std::string damaged = whole;
    const std::size_t at = offsets[200] + 600;
    std::fill(damaged.begin() + static_cast<std::ptrdiff_t>(at), damaged.begin() + static_cast<std::ptrdiff_t>(at + 100), '\0');
    temp_dir dir;
    spit(dir.path / segment.filename(), damaged);
    const auto why = start_error(dir.path);
    CHECK_MESSAGE(why.find("is damaged at offset " + std::to_string(offsets[200])) != std::string::npos, why);
  }
  SUBCASE("in a segment that is not the last, never-written bytes are damage") {
    temp_dir dir;
    {
      opened db(dir.path, fsync_policy::never, std::uint64_t{1} << 40, 4096);
      for (const auto& c : numbered(1, 400)) REQUIRE(db.write(c));
    }
    const auto segments = files_named(dir.path, "wal-", ".log");
    REQUIRE(segments.size() >= 2);
    std::string first = slurp(segments[0]);
    const auto at = record_offsets(numbered(1, 10))[5];
    std::fill(first.begin() + static_cast<std::ptrdiff_t>(at), first.begin() + 4096, '\0');
    spit(segments[0], first);
    const auto why = start_error(dir.path);
    CHECK_MESSAGE(why.find("is damaged at offset " + std::to_string(at)) != std::string::npos, why);
  }
}

TEST_CASE("wal: the log replayed at a restart counts toward --snapshot-after") {
  // Without it every restart let the log grow by another threshold before a snapshot: unbounded disk use
  // for a server restarted often.
  temp_dir dir;
  constexpr std::uint64_t threshold = 8192;
  auto on_disk = [](const std::string& command) { return command.size() + 8 + disk::frame_overhead; };
  std::uint64_t first_run = 0, second_run = 0;
  {
    opened db(dir.path, fsync_policy::never, threshold);
    for (int i = 1; first_run < threshold * 6 / 10; ++i) {
      const auto c = "command-" + std::to_string(i);
      REQUIRE(db.write(c));
      first_run += on_disk(c);
    }
    CHECK(db.log->stats().snapshots == 0);
  }
  opened db(dir.path, fsync_policy::never, threshold);
  // Well under the threshold in this run alone; past it together with the run before.
  for (int i = 1; second_run < threshold - first_run + threshold / 10; ++i) {
    const auto c = "again-" + std::to_string(i);
    REQUIRE(db.write(c));
    second_run += on_disk(c);
  }
  CHECK(second_run < threshold * 6 / 10);
  CHECK(test::poll_until([&] { return db.log->stats().snapshots >= 1; }, 10s));
  CHECK(db.items().size() > 100);
}

TEST_CASE("wal: a snapshot interrupted at any point is ignored, a damaged one falls back to the previous") {
  temp_dir first;  // snapshot at 100 records, then 20 more in the log
  {
    opened db(first.path, fsync_policy::always, 1 << 30, 1 << 20);
    for (const auto& c : numbered(1, 100)) REQUIRE(db.write(c));
    db.log->snapshot_now();
    for (const auto& c : numbered(101, 120)) REQUIRE(db.write(c));
  }
  temp_dir second;  // the same, and the second snapshot written whole
  fs::copy(first.path, second.path, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  fs::remove(second.path / "LOCK");
  {
    opened db(second.path);
    db.log->snapshot_now();
  }
  const auto newest = files_named(second.path, "snap-", ".snap").back();
  const std::string snapshot = slurp(newest);
  for (std::size_t cut = 0; cut < snapshot.size(); cut += std::max<std::size_t>(1, snapshot.size() / 97)) {
    CAPTURE(cut);
    temp_dir dir;
    fs::copy(first.path, dir.path, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    spit(dir.path / (newest.filename().string() + ".tmp"), std::string_view(snapshot).substr(0, cut));
    {
      opened db(dir.path);
      CHECK(db.items() == numbered(1, 120));
      CHECK(db.log->stats().recovered_entries == 100);
    }
    CHECK(files_named(dir.path, "snap-", ".tmp").empty());
    // Renamed but damaged (bit rot, a lying disk): the older snapshot and the log still hold everything.
    spit(dir.path / newest.filename(), std::string_view(snapshot).substr(0, cut));
    opened db(dir.path);
    CHECK(db.items() == numbered(1, 120));
  }
  // A damaged snapshot that nothing can replace stops the start.
  temp_dir lone;
  {
    opened db(lone.path);
    for (const auto& c : numbered(1, 5)) REQUIRE(db.write(c));
    db.log->snapshot_now();
  }
  const auto only = files_named(lone.path, "snap-", ".snap").at(0);
  std::string bytes = slurp(only);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x10);
  spit(only, bytes);
  for (const auto& segment : files_named(lone.path, "wal-", ".log")) fs::remove(segment);
  CHECK_THROWS_AS(opened(lone.path), std::runtime_error);
}

TEST_CASE("wal: a second log on the same directory is refused, naming the holder's pid") {
  temp_dir dir;
  opened db(dir.path);
  try {
    opened again(dir.path);
    FAIL("two logs on one directory");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("pid " + std::to_string(::getpid())) != std::string::npos);
  }
}

}  // TEST_SUITE
}  // namespace
}  // namespace mrkv::kv
