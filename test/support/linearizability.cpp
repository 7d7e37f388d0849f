#include "support/linearizability.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace mrkv::test {

std::string_view to_string(kv_operation::kind k) {
  switch (k) {
    case kv_operation::kind::get:
      return "get";
    case kv_operation::kind::put:
      return "put";
    case kv_operation::kind::append:
      return "append";
    case kv_operation::kind::remove:
      return "remove";
    default:
      return "?";
  }
}

std::string_view to_string(check_result::outcome o) {
  switch (o) {
    case check_result::outcome::ok:
      return "ok";
    case check_result::outcome::illegal:
      return "illegal";
    case check_result::outcome::unknown:
      return "unknown";
    default:
      return "?";
  }
}

namespace {

// Appended values grow to many kilobytes; messages show both ends, which is where the interesting
// differences usually are.
std::string shorten(std::string_view s) {
  constexpr std::size_t keep = 24;
  std::string out = "\"";
  auto put = [&out](std::string_view part) {
    for (char c : part) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        out += '?';
      } else {
        out += c;
      }
    }
  };
  if (s.size() <= 2 * keep + 8) {
    put(s);
    out += '"';
  } else {
    put(s.substr(0, keep));
    out += "...";
    put(s.substr(s.size() - keep));
    out += "\" (" + std::to_string(s.size()) + " bytes)";
  }
  return out;
}

std::string format_us(std::int64_t ns) {
  if (ns == kv_operation::pending_return) return "inf";
  return std::to_string(ns / 1000) + "us";
}

}  // namespace

std::string describe(const kv_operation& op) {
  std::string s =
      "client " + std::to_string(op.client) + " " + std::string(to_string(op.op)) + "(" + shorten(op.key);
  if (op.op != kv_operation::kind::get && op.op != kv_operation::kind::remove) s += ", " + shorten(op.input);
  if (op.expected_version) s += " if version " + std::to_string(*op.expected_version);
  s += ")";
  if (!op.output_known) {
    s += " -> pending";
  } else if (op.mismatch) {
    s += " -> 412";
  } else if (op.op == kv_operation::kind::get || op.op == kv_operation::kind::append) {
    s += " -> " + shorten(op.output);
  } else if (op.output_version) {
    s += " -> ok";
  }
  if (op.output_known && op.output_version) s += " version " + std::to_string(*op.output_version);
  s += " [" + format_us(op.call_ns) + ", " +
       format_us(op.output_known ? op.return_ns : kv_operation::pending_return) + "]";
  return s;
}

// ---------------------------------------------------------------------------------------------------
// history_recorder

history_recorder::history_recorder() : origin_(std::chrono::steady_clock::now()) {}

std::int64_t history_recorder::now_ns() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - origin_)
      .count();
}

history_recorder::handle history_recorder::begin(int client, kv_operation::kind op, std::string key,
                                                 std::string input, std::optional<std::uint64_t> expected_version) {
  kv_operation rec;
  rec.client = client;
  rec.op = op;
  rec.key = std::move(key);
  rec.input = std::move(input);
  rec.expected_version = expected_version;
  std::lock_guard lock(mutex_);
  // Read the clock under the lock so the recorded order of calls is also their time order.
  rec.call_ns = now_ns();
  ops_.push_back(std::move(rec));
  return ops_.size() - 1;
}

void history_recorder::end(handle h, std::string output) {
  std::lock_guard lock(mutex_);
  if (h >= ops_.size()) throw std::out_of_range("history_recorder::end: unknown handle");
  kv_operation& rec = ops_[h];
  if (rec.output_known) throw std::logic_error("history_recorder::end: operation already ended");
  rec.return_ns = now_ns();
  rec.output = std::move(output);
  rec.output_known = true;
}

void history_recorder::end(handle h, std::string output, std::uint64_t version, bool mismatch) {
  std::lock_guard lock(mutex_);
  if (h >= ops_.size()) throw std::out_of_range("history_recorder::end: unknown handle");
  kv_operation& rec = ops_[h];
  if (rec.output_known) throw std::logic_error("history_recorder::end: operation already ended");
  rec.return_ns = now_ns();
  rec.output = std::move(output);
  rec.output_known = true;
  rec.output_version = version;
  rec.mismatch = mismatch;
}

std::vector<kv_operation> history_recorder::operations() const {
  std::lock_guard lock(mutex_);
  return ops_;
}

std::size_t history_recorder::size() const {
  std::lock_guard lock(mutex_);
  return ops_.size();
}

// ---------------------------------------------------------------------------------------------------
// check_linearizable

namespace {

using clock = std::chrono::steady_clock;

std::uint64_t mix64(std::uint64_t x) {
  // splitmix64's finaliser: cheap, and flips about half the output bits per input bit.
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Exact interning of state strings: equal strings get equal ids, so "same state" is an integer
// comparison both in the model's legality checks and in the memo table. Strings that appear in the
// history are referenced, not copied; only states built by appends are stored here, once each.
class state_table {
 public:
  using id = std::int32_t;

  state_table() { intern_view(std::string_view{}); }

  // `s` must outlive the table.
  id intern_view(std::string_view s) {
    auto [it, inserted] = ids_.try_emplace(s, static_cast<id>(contents_.size()));
    if (inserted) contents_.push_back(s);
    return it->second;
  }

  id intern_concat(std::string_view a, std::string_view b) {
    scratch_.assign(a);
    scratch_.append(b);
    if (auto it = ids_.find(std::string_view(scratch_)); it != ids_.end()) return it->second;
    owned_.push_back(std::move(scratch_));
    scratch_ = std::string();
    return intern_view(owned_.back());
  }

  std::string_view value(id s) const { return contents_[static_cast<std::size_t>(s)]; }

 private:
  std::deque<std::string> owned_;  // deque: views into it stay valid as it grows
  std::vector<std::string_view> contents_;
  std::unordered_map<std::string_view, id> ids_;
  std::string scratch_;
};

// Memo of visited (linearized set, state) pairs, where "state" stands for everything besides the set that
// decides how the search continues. A set is stored without its leading all-ones words and trailing zero
// words: the search linearizes roughly in time order, so each stored set is a few words however long
// the history is.
class visited_set {
 public:
  explicit visited_set(std::size_t words) : words_(words) {}

  // Adds the pair; false if it was already there (the search below it has been done).
  bool insert(const std::vector<std::uint64_t>& bits, std::uint64_t set_hash, std::int64_t state) {
    std::size_t lead = 0;
    while (lead < words_ && bits[lead] == ~std::uint64_t{0}) ++lead;
    std::size_t end = words_;
    while (end > lead && bits[end - 1] == 0) --end;

    const std::uint64_t h = mix64(set_hash ^ mix64(static_cast<std::uint64_t>(state)));
    auto [it, inserted] = heads_.try_emplace(h, none);
    for (std::uint32_t e = it->second; e != none; e = entries_[e].next) {
      const entry& c = entries_[e];
      if (c.state == state && c.lead == lead && c.tail_len == end - lead &&
          std::equal(bits.begin() + static_cast<std::ptrdiff_t>(lead),
                     bits.begin() + static_cast<std::ptrdiff_t>(end),
                     tails_.begin() + static_cast<std::ptrdiff_t>(c.tail_off))) {
        return false;
      }
    }
    entries_.push_back(entry{static_cast<std::uint32_t>(lead), tails_.size(),
                             static_cast<std::uint32_t>(end - lead), state, it->second});
    it->second = static_cast<std::uint32_t>(entries_.size() - 1);
    tails_.insert(tails_.end(), bits.begin() + static_cast<std::ptrdiff_t>(lead),
                  bits.begin() + static_cast<std::ptrdiff_t>(end));
    return true;
  }

 private:
  static constexpr std::uint32_t none = ~std::uint32_t{0};
  struct entry {
    std::uint32_t lead;
    std::size_t tail_off;
    std::uint32_t tail_len;
    std::int64_t state;
    std::uint32_t next;  // chain of entries with the same hash
  };

  std::size_t words_;
  std::vector<entry> entries_;
  std::vector<std::uint64_t> tails_;
  std::unordered_map<std::uint64_t, std::uint32_t> heads_;
};

enum class search_outcome { ok, illegal, timed_out };

// The search for one key. Operations are numbered with every completed one before every pending one,
// each group in call order, which is what keeps visited_set's sets short.
class key_checker {
 public:
  key_checker(std::vector<const kv_operation*> ops, std::size_t completed, bool versioned,
              clock::time_point deadline)
      : ops_(std::move(ops)), completed_(completed), versioned_(versioned), deadline_(deadline) {
    const std::size_t n = ops_.size();
    in_state_.assign(n, -1);
    out_state_.assign(n, -1);
    append_result_.assign(n, -1);
    zobrist_.resize(n);
    for (std::size_t k = 0; k < n; ++k) {
      const kv_operation& op = *ops_[k];
      zobrist_[k] = mix64(k * 0x2545f4914f6cdd1dULL + 1);
      if (op.op == kv_operation::kind::put) in_state_[k] = states_.intern_view(op.input);
      if (op.output_known && op.op != kv_operation::kind::put) out_state_[k] = states_.intern_view(op.output);
    }
    if (versioned_) versioned_state(0, 0);  // state 0 is ("", 0) in both models
    build_event_list();
  }

  search_outcome run() {
    const std::size_t n = ops_.size();
    std::vector<std::uint64_t> bits((n + 63) / 64, 0);
    std::uint64_t set_hash = 0;
    visited_set visited(bits.size());
    struct frame {
      std::int32_t op;
      state_table::id before;
    };
    std::vector<frame> calls;
    state_table::id state = 0;
    std::size_t linearized_completed = 0;
    if (completed_ == 0) return search_outcome::ok;

    std::uint32_t steps = 0;
    std::int32_t node = next_[head];
    for (;;) {
      if ((++steps & 0x3ff) == 0 && clock::now() > deadline_) return search_outcome::timed_out;
      if (is_call(node)) {
        const std::int32_t k = op_of(node);
        // A pending write directly followed by a put has no visible effect: dropping it (it may just
        // never happen) leaves an equally valid order. Searching only orders without that pattern keeps
        // the search from trying every subset of the pending writes in front of every put.
        const bool after_pending = !calls.empty() && is_pending(calls.back().op);
        state_table::id after = -1;
        if (versioned_) {
          // Every executed write changes the version, so no write is invisible: no pruning.
          after = versioned_step(k, state);
        } else if (after_pending && ops_[static_cast<std::size_t>(k)]->op == kv_operation::kind::put) {
          // pruned
        } else if (is_pending(k)) {
          after = pending_step(k, state);
        } else {
          after = step(k, state);
        }
        if (after >= 0) {
          bits[static_cast<std::size_t>(k) / 64] ^= std::uint64_t{1} << (k % 64);
          set_hash ^= zobrist_[static_cast<std::size_t>(k)];
          // Which moves are allowed next depends on whether k is pending, so that is part of the memo key.
          if (visited.insert(bits, set_hash, 2 * std::int64_t{after} + (is_pending(k) ? 1 : 0))) {
            calls.push_back(frame{k, state});
            state = after;
            lift(k);
            if (!is_pending(k) && ++linearized_completed == completed_) {
              // Every pending operation left can go last: its step is always legal.
              return search_outcome::ok;
            }
            node = next_[head];
            continue;
          }
          bits[static_cast<std::size_t>(k) / 64] ^= std::uint64_t{1} << (k % 64);
          set_hash ^= zobrist_[static_cast<std::size_t>(k)];
        }
        node = next_[node];
        continue;
      }
      // A return event (or the end, which only pending operations can leave unlinearized and which the
      // early success above makes unreachable): the operation returning here cannot be placed later, so
      // undo the most recent choice.
      if (static_cast<std::ptrdiff_t>(calls.size()) > best_depth_) {
        best_depth_ = static_cast<std::ptrdiff_t>(calls.size());
        stuck_op_ = node == tail_ ? -1 : op_of(node);
        stuck_state_ = state;
      }
      if (calls.empty()) return search_outcome::illegal;
      const frame top = calls.back();
      calls.pop_back();
      state = top.before;
      bits[static_cast<std::size_t>(top.op) / 64] ^= std::uint64_t{1} << (top.op % 64);
      set_hash ^= zobrist_[static_cast<std::size_t>(top.op)];
      unlift(top.op);
      if (!is_pending(top.op)) --linearized_completed;
      node = next_[call_node(top.op)];
    }
  }

  std::string failure_description() const {
    std::string s = "no linearization of " + std::to_string(completed_) + " completed";
    if (ops_.size() > completed_) s += " (+" + std::to_string(ops_.size() - completed_) + " pending)";
    s += " operations; the search got furthest with " +
         std::to_string(std::max<std::ptrdiff_t>(best_depth_, 0)) + " linearized and state ";
    if (versioned_) {
      const auto& [value, version] = versioned_states_[static_cast<std::size_t>(stuck_state_)];
      s += shorten(states_.value(value)) + " version " + std::to_string(version);
    } else {
      s += shorten(states_.value(stuck_state_));
    }
    if (stuck_op_ >= 0)
      s += ", where it could not place " + describe(*ops_[static_cast<std::size_t>(stuck_op_)]);
    return s;
  }

 private:
  // Node 0 is the list head, then a call and a return node per operation, then the tail.
  static constexpr std::int32_t head = 0;
  static std::int32_t call_node(std::int32_t k) { return 1 + 2 * k; }
  static std::int32_t return_node(std::int32_t k) { return 2 + 2 * k; }
  bool is_call(std::int32_t node) const { return node != tail_ && node % 2 == 1; }
  static std::int32_t op_of(std::int32_t node) { return (node - 1) / 2; }
  bool is_pending(std::int32_t k) const { return static_cast<std::size_t>(k) >= completed_; }

  void build_event_list() {
    struct event {
      std::int64_t time;
      bool is_return;
      std::int32_t op;
    };
    const auto n = static_cast<std::int32_t>(ops_.size());
    std::vector<event> events;
    events.reserve(2 * ops_.size());
    for (std::int32_t k = 0; k < n; ++k) {
      const kv_operation& op = *ops_[static_cast<std::size_t>(k)];
      events.push_back(event{op.call_ns, false, k});
      events.push_back(event{op.output_known ? op.return_ns : kv_operation::pending_return, true, k});
    }
    // At equal times calls go first: touching intervals count as concurrent, the permissive reading.
    std::sort(events.begin(), events.end(), [](const event& a, const event& b) {
      if (a.time != b.time) return a.time < b.time;
      if (a.is_return != b.is_return) return !a.is_return;
      return a.op < b.op;
    });
    tail_ = 2 * n + 1;
    next_.assign(static_cast<std::size_t>(tail_) + 1, tail_);
    prev_.assign(static_cast<std::size_t>(tail_) + 1, head);
    std::int32_t last = head;
    for (const event& e : events) {
      const std::int32_t node = e.is_return ? return_node(e.op) : call_node(e.op);
      next_[static_cast<std::size_t>(last)] = node;
      prev_[static_cast<std::size_t>(node)] = last;
      last = node;
    }
    next_[static_cast<std::size_t>(last)] = tail_;
    prev_[static_cast<std::size_t>(tail_)] = last;
  }

  void unlink(std::int32_t node) {
    next_[static_cast<std::size_t>(prev_[static_cast<std::size_t>(node)])] =
        next_[static_cast<std::size_t>(node)];
    prev_[static_cast<std::size_t>(next_[static_cast<std::size_t>(node)])] =
        prev_[static_cast<std::size_t>(node)];
  }
  // Dancing links: a removed node still knows its neighbours, so undoing in reverse order restores it.
  void relink(std::int32_t node) {
    next_[static_cast<std::size_t>(prev_[static_cast<std::size_t>(node)])] = node;
    prev_[static_cast<std::size_t>(next_[static_cast<std::size_t>(node)])] = node;
  }
  void lift(std::int32_t k) {
    unlink(call_node(k));
    unlink(return_node(k));
    ++position_;
  }
  void unlift(std::int32_t k) {
    relink(return_node(k));
    relink(call_node(k));
    ++position_;
  }

  // Pending operations are tried only where something could see their effect. After a pending operation
  // comes either a pending append (which extends the state) or, since puts are excluded, a completed get
  // or append that must read the state exactly; and linearizing pending operations never changes which
  // completed ones can come next. So the state after a pending operation must be a prefix of what some
  // completed get or append that is callable now reads; otherwise it leads nowhere, and runs of such
  // operations would be tried in every order. This is the model's step for pending k, or -1.
  state_table::id pending_step(std::int32_t k, state_table::id state) {
    const kv_operation& op = *ops_[static_cast<std::size_t>(k)];
    refresh_readers(state);
    if (op.op == kv_operation::kind::put) {
      for (const reader& r : readers_) {
        if (states_.value(r.reads).starts_with(op.input)) return in_state_[static_cast<std::size_t>(k)];
      }
      return -1;
    }
    const std::string_view s = states_.value(state);
    for (reader& r : readers_) {
      const std::string_view v = states_.value(r.reads);
      if (v.size() < s.size() + op.input.size() || v.compare(s.size(), op.input.size(), op.input) != 0)
        continue;
      if (r.extends_state < 0) r.extends_state = v.starts_with(s) ? 1 : 0;
      if (r.extends_state == 0) continue;
      const std::uint64_t key = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(state)) << 32) |
                                static_cast<std::uint32_t>(k);
      auto [it, inserted] = pending_appends_.try_emplace(key, -1);
      if (inserted) it->second = states_.intern_concat(s, op.input);
      return it->second;
    }
    return -1;
  }

  // The completed gets and appends callable at the current search position (before the first return
  // event); recomputed only when the position has changed since the last call.
  void refresh_readers(state_table::id state) {
    if (readers_position_ == position_) return;
    readers_position_ = position_;
    readers_.clear();
    for (std::int32_t node = next_[head]; is_call(node); node = next_[node]) {
      const std::int32_t c = op_of(node);
      if (is_pending(c) || ops_[static_cast<std::size_t>(c)]->op == kv_operation::kind::put) continue;
      readers_.push_back(reader{out_state_[static_cast<std::size_t>(c)], -1});
    }
  }

  // The model's step for completed k: the state after it, or -1 if k cannot happen in `state`.
  state_table::id step(std::int32_t k, state_table::id state) {
    const auto i = static_cast<std::size_t>(k);
    const kv_operation& op = *ops_[i];
    switch (op.op) {
      case kv_operation::kind::get:
        return out_state_[i] == state ? state : -1;
      case kv_operation::kind::put:
        return in_state_[i];
      case kv_operation::kind::append:
        if (out_state_[i] != state) return -1;
        // The result depends only on the (known) output, so it is computed once per operation.
        if (append_result_[i] < 0) append_result_[i] = states_.intern_concat(op.output, op.input);
        return append_result_[i];
      default:
        return -1;
    }
  }

  // The versioned model's states: (value, version) pairs, interned like values, so that a state is one
  // id here too.
  state_table::id versioned_state(state_table::id value, std::uint64_t version) {
    auto [it, inserted] = versioned_ids_.try_emplace({value, version}, static_cast<state_table::id>(versioned_states_.size()));
    if (inserted) versioned_states_.emplace_back(value, version);
    return it->second;
  }

  // The versioned model's step for k (see the header): the state after it, or -1 if k cannot happen
  // in `state` (for a pending write: if it would change nothing, which is the same as never happening).
  state_table::id versioned_step(std::int32_t k, state_table::id state) {
    const auto i = static_cast<std::size_t>(k);
    const kv_operation& op = *ops_[i];
    const auto [value, version] = versioned_states_[static_cast<std::size_t>(state)];
    const bool answered = !is_pending(k);
    auto named = [&](std::uint64_t v) { return !answered || !op.output_version || *op.output_version == v; };
    if (op.op == kv_operation::kind::get) return answered && out_state_[i] == value && named(version) ? state : -1;
    const bool holds = !op.expected_version || *op.expected_version == version;
    if (answered && op.mismatch) return !holds && named(version) ? state : -1;
    if (!holds) return -1;
    switch (op.op) {
      case kv_operation::kind::put:
        return named(version + 1) ? versioned_state(in_state_[i], version + 1) : -1;
      case kv_operation::kind::append: {
        if (!named(version + 1)) return -1;
        if (answered) {
          if (out_state_[i] != value) return -1;
          if (append_result_[i] < 0) append_result_[i] = states_.intern_concat(op.output, op.input);
          return versioned_state(append_result_[i], version + 1);
        }
        const std::uint64_t key = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(state)) << 32) |
                                  static_cast<std::uint32_t>(k);
        auto [it, inserted] = pending_appends_.try_emplace(key, -1);
        if (inserted) it->second = versioned_state(states_.intern_concat(states_.value(value), op.input), version + 1);
        return it->second;
      }
      case kv_operation::kind::remove:
        return named(0) ? versioned_state(0, 0) : -1;
      default:
        return -1;
    }
  }

  std::vector<const kv_operation*> ops_;
  std::size_t completed_;
  bool versioned_;
  clock::time_point deadline_;
  std::vector<std::pair<state_table::id, std::uint64_t>> versioned_states_;
  std::map<std::pair<state_table::id, std::uint64_t>, state_table::id> versioned_ids_;

  state_table states_;
  std::vector<state_table::id> in_state_;       // put: its input
  std::vector<state_table::id> out_state_;      // get/append with known output: that output
  std::vector<state_table::id> append_result_;  // append with known output: output + input, once computed
  std::unordered_map<std::uint64_t, state_table::id> pending_appends_;  // (state, op) -> state + input
  std::vector<std::uint64_t> zobrist_;  // per-operation random words; a set's hash is the xor of its members'

  std::vector<std::int32_t> next_, prev_;
  std::int32_t tail_ = 0;
  std::uint64_t position_ = 0;  // changes whenever the list (hence the state and the callable set) does

  struct reader {
    state_table::id reads;
    std::int8_t extends_state;  // whether `reads` starts with the state; -1 until needed
  };
  std::vector<reader> readers_;
  std::uint64_t readers_position_ = ~std::uint64_t{0};

  std::ptrdiff_t best_depth_ = -1;
  std::int32_t stuck_op_ = -1;
  state_table::id stuck_state_ = 0;
};

// Pending writes that no linearization needs, which the search would otherwise keep trying everywhere:
// an empty append changes nothing, and a put matters only if a get or append that can come after it
// reads a value starting with what it wrote (see key_checker::pending_step); without one, it can
// always be moved to the end.
bool cannot_matter(const kv_operation& pending, const std::vector<const kv_operation*>& completed) {
  if (pending.op == kv_operation::kind::append) return pending.input.empty();
  if (pending.op != kv_operation::kind::put) return true;
  return std::none_of(completed.begin(), completed.end(), [&pending](const kv_operation* c) {
    return c->op != kv_operation::kind::put && c->return_ns >= pending.call_ns &&
           std::string_view(c->output).starts_with(pending.input);
  });
}

}  // namespace

check_result check_linearizable(const std::vector<kv_operation>& history, std::chrono::milliseconds budget) {
  const clock::time_point deadline = clock::now() + budget;

  struct partition {
    std::vector<const kv_operation*> completed, pending;
  };
  std::map<std::string_view, partition> by_key;
  std::map<std::string_view, bool> versioned_keys;
  for (const kv_operation& op : history) {
    if (op.output_known && op.return_ns < op.call_ns) {
      throw std::invalid_argument("check_linearizable: operation returns before it is called: " +
                                  describe(op));
    }
    if (op.versioned()) versioned_keys[op.key] = true;
    if (op.output_known) {
      by_key[op.key].completed.push_back(&op);
    } else if (op.op != kv_operation::kind::get) {
      // A pending get constrains nothing (it can always go last), so only pending writes are kept.
      by_key[op.key].pending.push_back(&op);
    }
  }

  auto by_call = [](const kv_operation* a, const kv_operation* b) { return a->call_ns < b->call_ns; };
  for (auto& [key, part] : by_key) {
    if (clock::now() > deadline) {
      return check_result{check_result::outcome::unknown, std::string(key),
                          "time budget exhausted before this key"};
    }
    const bool versioned = versioned_keys.contains(key);
    std::stable_sort(part.completed.begin(), part.completed.end(), by_call);
    if (!versioned)
      std::erase_if(part.pending,
                    [&part](const kv_operation* op) { return cannot_matter(*op, part.completed); });
    std::stable_sort(part.pending.begin(), part.pending.end(), by_call);
    const std::size_t completed = part.completed.size();
    std::vector<const kv_operation*> ops = std::move(part.completed);
    ops.insert(ops.end(), part.pending.begin(), part.pending.end());

    key_checker checker(std::move(ops), completed, versioned, deadline);
    switch (checker.run()) {
      case search_outcome::ok:
        break;
      case search_outcome::illegal:
        return check_result{check_result::outcome::illegal, std::string(key), checker.failure_description()};
      case search_outcome::timed_out:
        return check_result{check_result::outcome::unknown, std::string(key),
                            "time budget of " + std::to_string(budget.count()) + " ms exhausted"};
      default:
        break;
    }
  }
  return check_result{};
}

}  // namespace mrkv::test
