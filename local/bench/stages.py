#!/usr/bin/env python3
"""Where the time of a request goes, from the runner's socket system calls.

    stages.py TRACE FDMAP PORT

TRACE is `perf trace -p <runner> -e read,write,readv,writev,sendto,recvfrom,sendmsg,recvmsg`
output taken while one connection sends requests one after another (local/bench/miss-stages.sh);
FDMAP has one `fd local-port remote-port` line per TCP connection of the runner; PORT is the
one it serves on (its connections are the client's, wrk's). Each
request runs from the first read of its HTTP request to the write of its answer; in between,
consecutive calls on connections to the same service form a stage, from its first send to
the end of its last receive (the service's round trip and this side's handling of it), and
the time between stages is this process's own work plus, for Kafka, librdkafka's queueing
(`linger.ms`) before it sends. Prints the median, mean and p90 of each stage over all requests,
in the order they happen.
"""

import re
import statistics
import sys
from collections import defaultdict

SERVICES = {5432: "postgres", 6379: "redis", 9092: "kafka", 18070: "provider (stand-in)"}
CALL = re.compile(
    r"^\s*(?P<t>[\d.]+) \(\s*(?P<dur>[\d.]+) ms\): \S+/\d+ "
    r"(?P<call>read|write|readv|writev|sendto|recvfrom|sendmsg|recvmsg)\(fd: (?P<fd>\d+)[^)]*\)"
    r"\s+= (?P<ret>-?\d+)"
)
SENDS = {"write", "writev", "sendto", "sendmsg"}


def load_fds(path, listen):
    fds = {}
    with open(path) as f:
        for line in f:
            fd, local, remote = (int(x) for x in line.split())
            if local == listen:
                fds[fd] = "client"
            else:
                fds[fd] = SERVICES.get(remote, f"port {remote}")
    return fds


def calls(path, fds):
    """(start ms, end ms, service, is send) of every successful call on a known socket."""
    out = []
    with open(path) as f:
        for line in f:
            m = CALL.match(line)
            if not m or int(m["ret"]) <= 0:
                continue
            service = fds.get(int(m["fd"]))
            if service is None:
                continue
            t, dur = float(m["t"]), float(m["dur"])
            out.append((t, t + dur, service, m["call"] in SENDS))
    out.sort()
    return out


def requests(events):
    """The events of each request: from a receive on the client connection to the send on it."""
    current = None
    for e in events:
        _, _, service, send = e
        if service == "client" and not send:
            current = [e]
        elif current is not None:
            current.append(e)
            if service == "client" and send:
                yield current
                current = None


def stages(request):
    """[(name, gap before it, its own duration)] of one request, and its total."""
    start, end = request[0][0], request[-1][1]
    groups = []
    for t0, t1, service, _ in request[1:-1]:
        if groups and groups[-1][0] == service:
            groups[-1][2] = t1
        else:
            groups.append([service, t0, t1])
    out, previous = [], request[0][1]
    for service, t0, t1 in groups:
        out.append((service, t0 - previous, t1 - t0))
        previous = t1
    out.append(("answer written", request[-1][0] - previous, request[-1][1] - request[-1][0]))
    return out, end - start


def main():
    fds = load_fds(sys.argv[2], int(sys.argv[3]))
    shapes = defaultdict(list)
    for request in requests(calls(sys.argv[1], fds)):
        parts, total = stages(request)
        shapes[tuple(name for name, _, _ in parts)].append((parts, total))
    if not shapes:
        sys.exit("no complete request in the trace")
    shape, runs = max(shapes.items(), key=lambda kv: len(kv[1]))
    n = sum(len(r) for r in shapes.values())
    print(f"{len(runs)} of {n} requests have the most common shape: {' > '.join(shape)}")
    print()
    print("| stage | median (ms) | mean (ms) | p90 (ms) |")
    print("|---|---:|---:|---:|")

    def row(label, values):
        values = sorted(values)
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        print(f"| {label} | {statistics.median(values):.3f} | {statistics.mean(values):.3f} | {p90:.3f} |")

    for i, name in enumerate(shape):
        row(f"before {name} (this process, queues)", [p[i][1] for p, _ in runs])
        row(f"{name}", [p[i][2] for p, _ in runs])
    row("whole request (first read to answer written)", [t for _, t in runs])


if __name__ == "__main__":
    main()
