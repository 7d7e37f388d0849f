// A fault-injecting HTTP/1.1 proxy for tests: the lab's unreliable network (lab-spec B4) over real
// sockets. Clients connect to 127.0.0.1:port() instead of the server; each request is delayed, maybe
// dropped before the server sees it, maybe has its reply dropped after the server executed it.
//
// Per request, unless reliable: wait a uniform 0..max_delay; with p_drop_request close the client's
// connection without forwarding; otherwise forward it on this client connection's own keep-alive
// upstream connection, read the whole reply, and with p_drop_reply close the client's connection
// instead of answering. A dropped request or reply looks to the client like a connection closed before
// a response (an unknown outcome), which is all an HTTP client can see of a lost message. Reliable mode
// forwards everything without delay.
//
// Runs on its own thread with its own io_context. Thread-safe: every public member may be called from
// any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace mrkv::test {

struct fault_proxy_config {
  std::string upstream_host = "127.0.0.1";  // numeric address only: no resolver, whose waits can't be cut
  std::uint16_t upstream_port = 0;
  double p_drop_request = 0.1;
  double p_drop_reply = 0.1;
  std::chrono::milliseconds max_delay{26};  // labrpc's per-message delay, uniform from 0
  bool reliable = false;                    // initial mode; see fault_proxy::set_reliable
  // Each of connecting to, writing to and reading a reply from the upstream.
  std::chrono::milliseconds upstream_timeout{10'000};
  // Waiting for a client's next request on a kept-alive connection, and writing a reply to it.
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds client_write_timeout{10'000};
  std::size_t body_limit = 64 * 1024 * 1024;  // for requests and replies
  // For the fault dice; 0 picks a random one (see seed()). The pattern repeats exactly only if requests
  // come one at a time, since concurrent connections draw in whatever order they arrive.
  std::uint64_t seed = 0;
};

// Counts since start(). Each is bumped when its step completes, so a client holding its reply may look a
// moment before `replies` counts it; after stop() the snapshot is final and consistent.
struct fault_proxy_stats {
  std::uint64_t requests = 0;          // complete requests read from clients
  std::uint64_t dropped_requests = 0;  // connection closed without forwarding: the server never saw these
  std::uint64_t forwarded = 0;         // written to the upstream
  std::uint64_t dropped_replies = 0;   // the server answered, the client's connection was closed instead
  std::uint64_t replies = 0;           // answered to the client
  std::uint64_t upstream_errors = 0;   // upstream connect/write/read failed or timed out; connection closed
};

class fault_proxy {
 public:
  explicit fault_proxy(fault_proxy_config config);
  ~fault_proxy();  // stop()
  fault_proxy(const fault_proxy&) = delete;
  fault_proxy& operator=(const fault_proxy&) = delete;

  // Binds 127.0.0.1 on an ephemeral port and starts serving. Once only; throws std::logic_error if
  // called again, boost::system::system_error if it cannot listen or upstream_host is not an address.
  void start();
  // Closes the listener and every connection, then joins the thread. Idempotent. Requests in flight
  // are abandoned: their clients see the connection close.
  void stop();

  std::uint16_t port() const;   // valid after start()
  std::string address() const;  // "127.0.0.1:<port>"

  // Switches between the lossy network and a perfect one; applies to requests read from then on.
  void set_reliable(bool reliable);
  bool reliable() const;

  fault_proxy_stats stats() const;
  std::uint64_t seed() const;  // the seed in use, to reproduce a run's fault pattern

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace mrkv::test
