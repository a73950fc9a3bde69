"""Start-up time of each binary, from process start to ready, and its resident memory.

For a Lambda function, "ready" is its first call to the runtime API for an invocation
(GET /2018-06-01/runtime/invocation/next): this script serves that API itself, on a free
port, and never answers the call. For the local runner, "ready" is its first 200 on /health.

    python3 local/bench/startup.py <target/release dir> [runs]

Configuration comes from the environment, as on Lambda (connections are lazy, so none is
opened before ready).
"""

import http.server
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

FUNCTIONS = ["price-api", "poller", "ma-consumer"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lambda_start(binary, runs):
    times = []
    for _ in range(runs):
        ready = threading.Event()

        class Runtime(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if "/runtime/invocation/next" in self.path:
                    ready.set()
                    time.sleep(5)  # never hand out an invocation

            def log_message(self, *args):
                pass

        port = free_port()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Runtime)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}",
                   AWS_LAMBDA_FUNCTION_NAME=os.path.basename(binary),
                   AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
                   AWS_LAMBDA_LOG_STREAM_NAME="bench", AWS_LAMBDA_LOG_GROUP_NAME="bench",
                   RUST_LOG="warn")
        start = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if not ready.wait(10):
            proc.kill()
            raise SystemExit(f"{binary} never asked for an invocation")
        times.append((time.perf_counter() - start) * 1000)
        rss = resident_kib(proc.pid)
        proc.kill()
        proc.wait()
        server.shutdown()
    return times, rss


def runner_start(binary, runs):
    times = []
    for _ in range(runs):
        port = free_port()
        env = dict(os.environ, LOCAL_ADDR=f"127.0.0.1:{port}", RUST_LOG="warn",
                   LOCAL_CONSUMER_OFF="true")
        start = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.0005)
        times.append((time.perf_counter() - start) * 1000)
        proc.kill()
        proc.wait()
    return times


def resident_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    directory = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    print("| binary | start to ready, median (ms) | p90 (ms) | RSS when ready (MiB) | size (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for name in FUNCTIONS:
        binary = os.path.join(directory, name)
        times, rss = lambda_start(binary, runs)
        size = os.path.getsize(binary) / 2**20
        print(f"| {name} | {statistics.median(times):.1f} | "
              f"{statistics.quantiles(times, n=10)[-1]:.1f} | {rss / 1024:.1f} | {size:.1f} |")
    binary = os.path.join(directory, "market-data-local")
    times = runner_start(binary, runs)
    size = os.path.getsize(binary) / 2**20
    print(f"| market-data-local (to /health) | {statistics.median(times):.1f} | "
          f"{statistics.quantiles(times, n=10)[-1]:.1f} | | {size:.1f} |")


if __name__ == "__main__":
    main()
