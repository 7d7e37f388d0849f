// Linearizability checking for key/value histories (lab-spec B5), for the kvsrv tests.
//
// Clients log every call through a `history_recorder`; at the end the test hands the history to
// `check_linearizable`, which searches for a sequential order consistent with real time in the style of
// Wing & Gong / Lowe as Porcupine does it: the history is split by key, and each key is searched
// depth-first over a linked list of call/return events, memoising (linearized set, state) pairs.
//
// Model, per key: the state is a string, initially "".
//   get    legal iff output == state; state unchanged.
//   put    always legal; state = input.
//   append legal iff output == state (the returned old value); state = state + input.
// An operation whose reply never arrived (the client gave up, or the test ended first) is *pending*:
// its outcome is unknown, so it may take effect at any instant after its call, or never, and its
// output constrains nothing.
//
// The versioned model (issue 13), used for every key on which some operation is a remove or carries a
// version (a condition, a version in its answer, or a 412): the state is a value and a version, initially
// ("", 0); every executed put or append adds one to the version, an executed remove makes the state
// ("", 0) again. A write with `expected_version` N executes only if the version is N; otherwise it changes
// nothing and its answer is the 412 (`mismatch`) naming the current version. So, with V the state's
// version:
//   get              legal iff output == value and (version unknown or version == V).
//   executed write   legal iff (no condition or condition == V), not a mismatch, the old value of an
//                    append == value, and its answered version (if known) the new one: V + 1, or 0 for
//                    a remove.
//   mismatch         legal iff there is a condition != V and the answered version (if known) is V.
// A pending write (no answer, or the clerk's "maybe applied") executes at most once, and only where its
// condition holds.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mrkv::test {

struct kv_operation {
  enum class kind : std::uint8_t { get, put, append, remove };

  // Return time of a pending operation: it may take effect arbitrarily late.
  static constexpr std::int64_t pending_return = std::numeric_limits<std::int64_t>::max();

  int client = 0;
  kind op = kind::get;
  std::string key;
  std::string input;   // put/append argument; unused for get
  std::string output;  // get value or append's old value; meaningful only if output_known
  bool output_known = false;
  std::int64_t call_ns = 0;                 // invoked no later than this (any monotonic clock)
  std::int64_t return_ns = pending_return;  // completed no earlier than this
  // Versions (issue 13): the write's condition; the version its answer named (a get's version, an
  // executed write's new one, a 412's current one), when known; whether the answer was a 412.
  std::optional<std::uint64_t> expected_version = std::nullopt;
  std::optional<std::uint64_t> output_version = std::nullopt;
  bool mismatch = false;

  // Whether this operation needs the versioned model.
  bool versioned() const { return op == kind::remove || expected_version || output_version || mismatch; }
};

std::string_view to_string(kv_operation::kind k);

// One line describing `op`, with long strings shortened; for failure messages.
std::string describe(const kv_operation& op);

// Thread-safe log of the operations of concurrent clients. Times come from steady_clock, measured from
// the recorder's construction. An operation that is begun but never ended stays pending.
class history_recorder {
 public:
  using handle = std::size_t;

  history_recorder();

  // Call just before sending the request, so the recorded call time precedes the real invocation.
  handle begin(int client, kv_operation::kind op, std::string key, std::string input = {},
               std::optional<std::uint64_t> expected_version = std::nullopt);
  // Call just after the reply arrived; `output` is the get value or append's old value (ignored for put).
  void end(handle h, std::string output = {});
  // The same for an answer that named a version: a versioned get's, an executed write's new version,
  // or (mismatch) a 412's current version. A "maybe applied" outcome is not an answer: leave it pending.
  void end(handle h, std::string output, std::uint64_t version, bool mismatch = false);

  // A copy of everything recorded so far; operations not yet ended are pending.
  std::vector<kv_operation> operations() const;
  std::size_t size() const;

 private:
  std::int64_t now_ns() const;

  const std::chrono::steady_clock::time_point origin_;
  mutable std::mutex mutex_;
  std::vector<kv_operation> ops_;  // guarded by mutex_; a handle is an index
};

struct check_result {
  enum class outcome : std::uint8_t { ok, illegal, unknown };

  outcome result = outcome::ok;
  // For illegal: the key whose history has no linearization. For unknown: the key being searched when
  // the budget ran out.
  std::string key;
  // For illegal: how far the search got and which operation could not be placed. For unknown: a note.
  std::string description;

  bool ok() const { return result == outcome::ok; }
  bool illegal() const { return result == outcome::illegal; }
  bool unknown() const { return result == outcome::unknown; }
};

std::string_view to_string(check_result::outcome o);

// Decides whether `history` is linearizable under the model above. Operations with
// output_known == false are treated as pending whatever their return_ns says (an abandoned call may
// still execute later). Spends at most about `budget` of wall time over all keys, then answers unknown.
// Throws std::invalid_argument if a completed operation returns before it is called.
check_result check_linearizable(const std::vector<kv_operation>& history, std::chrono::milliseconds budget);

}  // namespace mrkv::test
