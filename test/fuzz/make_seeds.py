#!/usr/bin/env python3
"""Writes the seed corpora of test/fuzz/corpus/<target>/ (committed; rerun only to change them).

Small, meaningful inputs: each one reaches a different part of its target, so libFuzzer starts from
real requests, real intermediate files and real config files instead of guessing their syntax.
Usage: test/fuzz/make_seeds.py   (from anywhere; rewrites the three corpus directories)
"""
import pathlib
import shutil

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = HERE / "corpus"
MASK = (1 << 64) - 1


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# --- http_request_fuzz: raw requests, several pipelined where that tells a story -------------------

def req(method, target, body=None, headers=(), version="1.1"):
    lines = [f"{method} {target} HTTP/{version}", "Host: 127.0.0.1:7700"]
    lines += list(headers)
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body.encode())}"]
    return "\r\n".join(lines) + "\r\n\r\n" + (body or "")


def http_seeds():
    t = "http_request_fuzz"
    write(t, "get-healthz", req("GET", "/healthz"))
    write(t, "get-metrics-after-404", req("GET", "/nope") + req("GET", "/metrics"))
    write(t, "head-job-query", req("HEAD", "/v1/job?verbose=1"))
    write(t, "delete-job-405", req("DELETE", "/v1/job"))
    write(t, "next-task", req("POST", "/v1/tasks/next", '{"worker":"w1","host":"box-1","wait_ms":0}'))
    write(t, "next-task-http10-close",
          req("POST", "/v1/tasks/next", '{"worker":"w2"}', version="1.0") + req("GET", "/v1/job"))
    write(t, "done-never-assigned-409",
          req("POST", "/v1/tasks/done", '{"worker":"w1","kind":"map","task":0,"attempt":1}'))
    write(t, "done-unknown-task-404",
          req("POST", "/v1/tasks/next", '{"worker":"w1"}') +
          req("POST", "/v1/tasks/done", '{"worker":"w1","kind":"reduce","task":-7,"attempt":1}'))
    write(t, "bad-bodies-400",
          req("POST", "/v1/tasks/next", '{"worker":"w1","extra":true}') +
          req("POST", "/v1/tasks/next", '{"worker":"has space"}') +
          req("POST", "/v1/tasks/next", '[[[[[[[[{"worker":"w"}]]]]]]]]') +
          req("POST", "/v1/tasks/done", '{"worker":"w1","kind":"map","task":1.5,"attempt":1}') +
          req("POST", "/v1/tasks/next", '{"worker":"w1",'))
    parts = ['{"worker":', '"w9"}']
    chunked = ("POST /v1/tasks/next HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
               "".join(f"{len(p):x}\r\n{p}\r\n" for p in parts) + "0\r\n\r\n")
    write(t, "chunked-next", chunked)
    # A whole job: 2 maps, 1 reduce, then the worker is told to exit and the status shows it all.
    job = [
        req("POST", "/v1/tasks/next", '{"worker":"w1","host":"a"}'),
        req("POST", "/v1/tasks/next", '{"worker":"w2","host":"b"}'),
        req("POST", "/v1/tasks/done", '{"worker":"w1","kind":"map","task":0,"attempt":1}'),
        req("POST", "/v1/tasks/done", '{"worker":"w2","kind":"map","task":1,"attempt":1}'),
        req("POST", "/v1/tasks/done", '{"worker":"w2","kind":"map","task":1,"attempt":1}'),
        req("POST", "/v1/tasks/next", '{"worker":"w1"}'),
        req("POST", "/v1/tasks/done", '{"worker":"w1","kind":"reduce","task":0,"attempt":1}'),
        req("POST", "/v1/tasks/next", '{"worker":"w2"}'),
        req("GET", "/v1/job"),
    ]
    write(t, "whole-job", "".join(job))


def kv_http_seeds():
    """Key/value routes; the fuzzer's kvserver wants the bearer token 'fuzz-token'."""
    t = "http_request_fuzz"
    auth = ("Authorization: Bearer fuzz-token",)
    write(t, "kv-put-get-append",
          req("POST", "/v1/put", '{"key":"k","value":"v1","client":"c1","seq":1}', auth) +
          req("POST", "/v1/append", '{"key":"k","value":"+2","client":"c1","seq":2}', auth) +
          req("POST", "/v1/get", '{"key":"k"}', auth) +
          req("GET", "/v1/stats", None, auth))
    write(t, "kv-duplicate-and-stale-seq",
          req("POST", "/v1/append", '{"key":"k","value":"x","client":"c1","seq":5}', auth) +
          req("POST", "/v1/append", '{"key":"k","value":"x","client":"c1","seq":5}', auth) +
          req("POST", "/v1/put", '{"key":"k","value":"y","client":"c1","seq":5}', auth) +
          req("POST", "/v1/put", '{"key":"k","value":"y","client":"c1","seq":4}', auth))
    # An append's cached reply shares the key's buffer; a put then replaces that buffer.
    write(t, "kv-append-retry-after-put",
          req("POST", "/v1/put", '{"key":"k","value":"xy"}', auth) +
          req("POST", "/v1/append", '{"key":"k","value":"z","client":"c1","seq":2}', auth) +
          req("POST", "/v1/put", '{"key":"k","value":"NEW"}', auth) +
          req("POST", "/v1/append", '{"key":"k","value":"z","client":"c1","seq":2}', auth) +
          req("POST", "/v1/append", '{"key":"k","value":"!","client":"c2","seq":1}', auth) +
          req("POST", "/v1/get", '{"key":"k"}', auth) +
          req("GET", "/v1/stats", None, auth))
    write(t, "kv-unicode-and-escapes",
          req("POST", "/v1/put", '{"key":"\\u00e9\\ud83d\\ude00","value":"a\\"b\\\\c\\n\\u0000"}', auth) +
          req("POST", "/v1/get", '{"key":"\\u00e9\\ud83d\\ude00"}', auth))
    write(t, "kv-no-token-401", req("POST", "/v1/get", '{"key":"k"}') +
          req("POST", "/v1/get", '{"key":"k"}', ("Authorization: Bearer wrong-token",)))
    write(t, "kv-bad-bodies-400",
          req("POST", "/v1/put", '{"key":"k"}', auth) +
          req("POST", "/v1/put", '{"key":"k","value":"v","seq":1}', auth) +
          req("POST", "/v1/put", '{"key":"k","value":"v","client":"","seq":1}', auth) +
          req("POST", "/v1/get", '{"key":7}', auth) +
          req("POST", "/v1/get", '{"key":"k","value":"v"}', auth))


# --- intermediate_fuzz: first byte even = whole image, odd = records only (count, body) ------------

def mix(h):
    h = (h * 0x9E3779B97F4A7C15) & MASK
    return h ^ (h >> 32)


def checksum(data):
    h = mix(0x6A09E667F3BCC908 ^ len(data))
    i = 0
    while i + 8 <= len(data):
        h = mix(h ^ int.from_bytes(data[i:i + 8], "little"))
        i += 8
    if i < len(data):
        h = mix(h ^ int.from_bytes(data[i:].ljust(8, b"\0"), "little"))
    return mix(h)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def records(pairs):
    return b"".join(varint(len(k)) + k + varint(len(v)) + v for k, v in pairs)


def image(body, count):
    head = b"mrkvint\x01" + body + count.to_bytes(8, "little")
    return head + checksum(head).to_bytes(8, "little") + b"mrkvend\n"


def intermediate_seeds():
    t = "intermediate_fuzz"
    wc = [(b"fox", b"1"), (b"the", b"1"), (b"the", b"1"), (b"\xc3\xa9t\xc3\xa9", b"1")]
    write(t, "image-wc-4-records", b"\0" + image(records(wc), len(wc)))
    write(t, "image-empty", b"\0" + image(b"", 0))
    write(t, "image-binary-keys", b"\0" + image(records([(b"\0\xff\n", b""), (b"", b"\x80" * 130)]), 2))
    good = image(records(wc), len(wc))
    write(t, "image-truncated", b"\0" + good[:-5])
    write(t, "image-bad-checksum", b"\0" + good[:10] + bytes([good[10] ^ 1]) + good[11:])
    write(t, "image-version-2", b"\0" + b"mrkvint\x02" + good[8:])
    write(t, "records-wc-4", b"\x01" + bytes([len(wc)]) + records(wc))
    write(t, "records-length-past-end", b"\x01\x01" + b"\x05abc")
    write(t, "records-overlong-varint", b"\x01\x01" + b"\x81\x80\x00a\x00")
    write(t, "records-10-byte-varint", b"\x01\x01" + b"\xff" * 9 + b"\x01" + b"\x00")
    write(t, "records-stray-bytes", b"\x01\x01" + records([(b"k", b"v")]) + b"zz")


# --- config_fuzz: config files ----------------------------------------------------------------------

def config_seeds():
    t = "config_fuzz"
    for name in ("coordinator.json", "kvserver.json", "worker.json"):
        src = ROOT / "conf" / name
        if src.exists():
            write(t, "conf-" + name.removesuffix(".json"), src.read_bytes())
    write(t, "flags-of-every-type",
          '{"listen": "[::1]:0", "reduce": 3, "task-timeout": 0.5, "no-backup-tasks": true,\n'
          ' "input": ["pg-a.txt", "pg-b.txt"], "threads": 1, "log-level": "warn", "comment": "ignored"}\n')
    write(t, "comments-and-false", '// a comment\n{"no-backup-tasks": false, /* inline */ "workdir": "/tmp"}\n')
    write(t, "bad-nested-config", '{"config": "other.json"}')
    write(t, "bad-object-value", '{"listen": {"host": "127.0.0.1"}}')
    write(t, "bad-not-object", '["--listen=0.0.0.0:1"]')
    write(t, "bad-unknown-flag", '{"no-such-flag": 1}')
    write(t, "bad-listen", '{"listen": "localhost:99999"}')
    write(t, "bad-timeout", '{"read-timeout": -1, "reduce": 1e3}')


if __name__ == "__main__":
    for target in ("http_request_fuzz", "intermediate_fuzz", "config_fuzz"):
        shutil.rmtree(CORPUS / target, ignore_errors=True)
    http_seeds()
    kv_http_seeds()
    intermediate_seeds()
    config_seeds()
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.relative_to(ROOT)}: {len(list(d.iterdir()))} seeds")
