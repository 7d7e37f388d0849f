#!/usr/bin/env python3
"""Listing on a big store (issue 13): how long a page of POST /v1/list takes, and how long GETs wait
while another client lists back to back.

usage: kv_list.py [--mrkv PATH] [--keys N] [--seconds S] [--recovery]

Starts `mrkv kvserver --threads 2` on a free port, preloads N keys key:0..key:N-1 (16-byte values) with
`mrkv bench kv --preload`, and prints one line per figure:
  - bytes per key: the server's VmRSS growth over the preload, divided by N;
  - page times of 100 and of 10,000 keys, from random places in the key space;
  - GET latency (p50, p99, max) over S seconds alone, then while a second process lists pages of 100
    back to back, then pages of 10,000. The GETs go round robin over 4 kept-alive connections, so some
    share an I/O thread with the listing;
  - with --recovery: the same keys in a --data-dir server, and the time from a restart to its
    "listening" line (the log replayed or the snapshot loaded).
"""
import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time


def start_server(mrkv, extra=()):
    proc = subprocess.Popen([mrkv, "kvserver", "--listen", "127.0.0.1:0", "--threads", "2", "--log-level", "warn",
                             *extra], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit("kvserver did not start: %r" % line)
    return proc, int(line.rsplit(":", 1)[1])


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS")


def preload(mrkv, port, keys):
    subprocess.run([mrkv, "bench", "kv", "--server", "http://127.0.0.1:%d" % port, "--keys", str(keys), "--preload",
                    "--clients", "8", "--threads", "2", "--duration", "0.1", "--warmup", "0", "--mix", "1:0:0",
                    "--value-size", "16"], check=True, stdout=subprocess.DEVNULL)


def post(conn, target, body):
    conn.request("POST", target, body=json.dumps(body), headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    data = reply.read()
    if reply.status != 200:
        raise SystemExit("%s: HTTP %d %r" % (target, reply.status, data[:200]))
    return data


def page_times(port, keys, limit, pages):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    rng = random.Random(limit)
    times = []
    for _ in range(pages):
        # A page that starts near the end of the key space comes back shorter.
        body = {"prefix": "key:", "after": "key:%d" % rng.randrange(keys), "limit": limit}
        t = time.perf_counter()
        data = post(conn, "/v1/list", body)
        times.append(time.perf_counter() - t)
        if not json.loads(data)["items"]:
            raise SystemExit("a page of %d keys came back empty" % limit)
    return sorted(times)


def lister(port, keys, limit, stop, count):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    rng = random.Random(7)
    while not stop.is_set():
        post(conn, "/v1/list", {"prefix": "key:", "after": "key:%d" % rng.randrange(keys), "limit": limit})
        with count.get_lock():
            count.value += 1


def get_latencies(port, keys, seconds):
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(4)]
    rng = random.Random(3)
    lat = []
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        t = time.perf_counter()
        post(conns[i % 4], "/v1/get", {"key": "key:%d" % rng.randrange(keys)})
        lat.append(time.perf_counter() - t)
        i += 1
    return sorted(lat)


def pct(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p / 100.0 * len(sorted_values)))]


def ms(seconds):
    return "%.2f ms" % (seconds * 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--mrkv", default=os.path.join(here, "..", "..", "build", "release", "mrkv"))
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--recovery", action="store_true")
    args = parser.parse_args()

    server, port = start_server(args.mrkv)
    try:
        before = rss_bytes(server.pid)
        t = time.perf_counter()
        preload(args.mrkv, port, args.keys)
        print("preload: %d keys in %.1f s" % (args.keys, time.perf_counter() - t))
        print("bytes per key: %.1f (VmRSS growth over the preload)" % ((rss_bytes(server.pid) - before) / args.keys))
        for limit, pages in ((100, 50), (10_000, 10)):
            times = page_times(port, args.keys, limit, pages)
            print("page of %d: median %s, max %s (%d pages)" % (limit, ms(pct(times, 50)), ms(times[-1]), pages))
        for limit in (None, 100, 10_000):
            stop = multiprocessing.Event()
            count = multiprocessing.Value("l", 0)
            other = None
            if limit:
                other = multiprocessing.Process(target=lister, args=(port, args.keys, limit, stop, count))
                other.start()
                time.sleep(0.5)  # the lister's first pages are under way before GETs are timed
            lat = get_latencies(port, args.keys, args.seconds)
            if other:
                stop.set()
                other.join()
            what = "alone" if not limit else "during back-to-back listings of %d (%d pages)" % (limit, count.value)
            print("GET %s: p50 %s, p99 %s, max %s (%d gets)" % (what, ms(pct(lat, 50)), ms(pct(lat, 99)), ms(lat[-1]),
                                                               len(lat)))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()

    if args.recovery:
        with tempfile.TemporaryDirectory(prefix="kv-list-bench-") as data:
            server, port = start_server(args.mrkv, ("--data-dir", data, "--fsync", "never"))
            preload(args.mrkv, port, args.keys)
            server.send_signal(signal.SIGTERM)
            server.wait()
            for attempt in range(2):
                t = time.perf_counter()
                server, port = start_server(args.mrkv, ("--data-dir", data))
                print("recovery of %d keys: %.2f s (restart %d)" % (args.keys, time.perf_counter() - t, attempt + 1))
                server.send_signal(signal.SIGTERM)
                server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
