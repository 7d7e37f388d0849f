#!/usr/bin/env python3
"""Opens N connections to HOST:PORT, sends one request on each and reads its whole reply (so each
is a used keep-alive connection), prints "ready" and keeps them open and idle until stdin closes.

usage: idle_conns.py HOST PORT N http-get|http-post-kv|redis-ping [PATH]
The caller measures the server's resident memory before and after "ready"."""
import selectors
import socket
import sys


def request_for(kind, host, port, path):
    if kind == "redis-ping":
        return b"PING\r\n"
    if kind == "http-post-kv":
        body = b'{"key":"idle"}'
        return (b"POST /v1/get HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (host.encode(), port, len(body))) + body
    return b"GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path.encode(), host.encode(), port)


def reply_complete(kind, data):
    if kind == "redis-ping":
        return data.endswith(b"\r\n")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    if not head.startswith(b"HTTP/1.1 2"):
        raise SystemExit("idle_conns: not a 2xx reply: %r" % head[:80])
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def main():
    host, port, count, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    path = sys.argv[5] if len(sys.argv) > 5 else "/"
    request = request_for(kind, host, port, path)
    sockets = []
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(request)
        data = b""
        while not reply_complete(kind, data):
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("idle_conns: server closed a connection after %d" % len(sockets))
            data += chunk
        sockets.append(s)
    print("ready", flush=True)
    sys.stdin.read()  # hold every connection open until the caller closes our stdin
    for s in sockets:
        s.close()


if __name__ == "__main__":
    main()
