#!/usr/bin/env python3
"""Idle keep-alive connections benchmark for Staccato (Python stdlib only, loopback only).

Opens N keep-alive connections (default 10,000) to a Staccato server, each doing one
`GET /health` first so it is a real keep-alive connection, holds them, then reports the
server's VmRSS from /proc/PID/status, checks that /health still answers on a fresh
connection, probes a sample of the held connections with a second request, and closes all.

Either attach to a running server (--port and --pid, as bench/run.sh does) or let the script
start one (--bin; started with STACCATO_ACCESS_LOG=off, HOST=127.0.0.1, a free port,
STACCATO_MAX_CONNECTIONS >= N+16, no cap per address (STACCATO_MAX_CONNECTIONS_PER_ADDRESS=0)
and a 300 s keep-alive timeout, stopped with SIGTERM at the end).

Prints a final machine-readable line:
  IDLE conns=N open_s=.. baseline_rss_kib=.. rss_kib=.. rss_mib=.. hwm_kib=.. per_conn_bytes=..
       server_fds=.. fresh_health=ok|FAIL probes_ok=A/B limit_mib=64 result=PASS|FAIL
Exit status 0 on PASS, 1 on FAIL (RSS over the limit, a failed connection or check).
"""
import argparse
import errno
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

HEALTH_BODY = b'{"status":"success","data":{"status":"ok"}}'
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def log(msg):
    print(msg, flush=True)


def request(path, close=False):
    conn = "Connection: close\r\n" if close else ""
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: staccato-idle-bench\r\n"
            f"{conn}\r\n").encode()


def read_response(sock):
    """Reads one response with a Content-Length body. Returns (status, headers, body, extra)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response headers")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ConnectionError(f"bad status line: {lines[0]!r}")
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed in the middle of the body")
        rest += chunk
    return status, headers, rest[:n], rest[n:]


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return
        except (ValueError, OSError) as e:
            sys.exit(f"idle_conns: RLIMIT_NOFILE hard limit {hard} < {need} and cannot be raised: {e}")
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            m = re.match(r"(Vm\w+):\s+(\d+) kB", line)
            if m:
                out[m.group(1)] = int(m.group(2))
    return out


def count_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Connector:
    """Connects to host:port; spreads over source addresses 127.0.0.2.. when asked to, or
    automatically once the kernel runs out of ephemeral ports for 127.0.0.1 (EADDRNOTAVAIL)."""

    def __init__(self, host, port, sources, timeout):
        self.addr = (host, port)
        self.sources = sources
        self.timeout = timeout
        self.n = 0

    def connect(self):
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(self.timeout)
            try:
                if self.sources:
                    src = f"127.0.0.{2 + self.n % self.sources}"
                    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                    s.bind((src, 0))
                self.n += 1
                s.connect(self.addr)
                return s
            except OSError as e:
                s.close()
                if e.errno == errno.EADDRNOTAVAIL and self.sources < 200:
                    self.sources = max(8, self.sources * 2)
                    log(f"  ephemeral ports exhausted; spreading over {self.sources} source addresses 127.0.0.x")
                    continue
                raise


def check_fresh_health(host, port, timeout):
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(request("/health", close=True))
            status, _, body, _ = read_response(s)
            return status == 200 and body == HEALTH_BODY, f"{status} {body.decode(errors='replace')}"
    except OSError as e:
        return False, f"error: {e}"


def open_connections_metric(host, port, timeout):
    """staccato_http_open_connections from /metrics, or None."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(request("/metrics", close=True))
            status, _, body, _ = read_response(s)
        if status != 200:
            return None
        m = re.search(rb"^staccato_http_open_connections(?:\{[^}]*\})?\s+([0-9.eE+]+)", body, re.M)
        return int(float(m.group(1))) if m else None
    except (OSError, ValueError):
        return None


def start_server(binary, conns):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), STACCATO_ACCESS_LOG="off",
               STACCATO_WORKERS="1", STACCATO_MAX_CONNECTIONS=str(max(16384, conns + 16)),
               STACCATO_KEEPALIVE_TIMEOUT_MS="300000", STACCATO_MAX_CONNECTIONS_PER_ADDRESS="0")
    proc = subprocess.Popen([binary, "serve"], env=env, cwd="/tmp", stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"idle_conns: server exited with {proc.returncode} during startup")
        ok, _ = check_fresh_health("127.0.0.1", port, 1)
        if ok:
            return proc, port
        time.sleep(0.1)
    proc.kill()
    sys.exit("idle_conns: server did not answer /health within 10 s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--pid", type=int, help="server PID (for /proc/PID/status)")
    ap.add_argument("--bin", help="start this staccato binary instead of attaching to --port/--pid")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--rss-limit-mib", type=float, default=64)
    ap.add_argument("--batch", type=int, default=200, help="connections set up concurrently")
    ap.add_argument("--sources", type=int, default=0,
                    help="spread over this many source addresses 127.0.0.2.. (0: only when needed)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait before reading RSS")
    ap.add_argument("--probes", type=int, default=100, help="held connections re-used for a 2nd request")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()

    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        sys.exit("idle_conns: loopback addresses only")
    raise_nofile(args.conns + 256)

    proc = None
    if args.bin:
        proc, args.port = start_server(args.bin, args.conns)
        args.pid = proc.pid
    if not args.port or not args.pid:
        sys.exit("idle_conns: give --port and --pid, or --bin")

    socks = []
    failures = 0
    try:
        ok, info = check_fresh_health(args.host, args.port, args.timeout)
        if not ok:
            sys.exit(f"idle_conns: /health does not answer before the test: {info}")
        time.sleep(0.2)
        base = proc_status(args.pid)
        base_fds = count_fds(args.pid)
        log(f"  server pid {args.pid}: baseline VmRSS {base.get('VmRSS', 0)} kB, {base_fds} fds")

        connector = Connector(args.host, args.port, args.sources, args.timeout)
        req = request("/health")
        t0 = time.monotonic()
        while len(socks) < args.conns:
            batch = []
            for _ in range(min(args.batch, args.conns - len(socks))):
                batch.append(connector.connect())
            for s in batch:
                s.sendall(req)
            for s in batch:
                status, headers, body, extra = read_response(s)
                if status != 200 or body != HEALTH_BODY or extra or \
                        "close" in headers.get("connection", "").lower():
                    failures += 1
                    if failures <= 5:
                        log(f"  unexpected response on connection {len(socks)}: {status} "
                            f"{headers.get('connection', '')} {body[:100]!r}")
                socks.append(s)
            if len(socks) % 2000 == 0:
                log(f"  {len(socks)} connections open ({time.monotonic() - t0:.1f} s)")
        open_s = time.monotonic() - t0
        log(f"  {len(socks)} keep-alive connections open in {open_s:.1f} s; holding {args.settle:.1f} s")
        time.sleep(args.settle)

        st = proc_status(args.pid)
        fds = count_fds(args.pid)
        rss, hwm = st.get("VmRSS", 0), st.get("VmHWM", 0)
        metric = open_connections_metric(args.host, args.port, args.timeout)
        fresh_ok, fresh_info = check_fresh_health(args.host, args.port, args.timeout)

        # Are the held connections still alive and usable? Re-use a sample of them.
        step = max(1, len(socks) // max(1, args.probes))
        sample = socks[::step][:args.probes]
        probes_ok = 0
        for s in sample:
            try:
                s.sendall(req)
                status, _, body, _ = read_response(s)
                probes_ok += status == 200 and body == HEALTH_BODY
            except OSError:
                pass

        per_conn = (rss - base.get("VmRSS", 0)) * 1024 / max(1, len(socks))
        rss_mib = rss / 1024
        passed = (rss_mib < args.rss_limit_mib and fresh_ok and failures == 0
                  and probes_ok == len(sample))
        log(f"  server VmRSS {rss} kB = {rss_mib:.1f} MiB (VmHWM {hwm} kB), "
            f"~{per_conn:.0f} bytes per idle connection above baseline")
        log(f"  server fds: {fds}; staccato_http_open_connections: "
            f"{metric if metric is not None else 'n/a'}")
        log(f"  fresh /health: {'ok' if fresh_ok else 'FAIL ' + fresh_info}; "
            f"held-connection probes: {probes_ok}/{len(sample)} ok; bad first responses: {failures}")
        log(f"  target RSS < {args.rss_limit_mib:g} MiB: {'PASS' if passed else 'FAIL'}")
        log(f"IDLE conns={len(socks)} open_s={open_s:.2f} baseline_rss_kib={base.get('VmRSS', 0)} "
            f"rss_kib={rss} rss_mib={rss_mib:.1f} hwm_kib={hwm} per_conn_bytes={per_conn:.0f} "
            f"server_fds={fds} fresh_health={'ok' if fresh_ok else 'FAIL'} "
            f"probes_ok={probes_ok}/{len(sample)} limit_mib={args.rss_limit_mib:g} "
            f"result={'PASS' if passed else 'FAIL'}")
    except (OSError, ValueError) as e:
        log(f"  FAILED after {len(socks)} connections: {e!r}")
        log(f"IDLE conns={len(socks)} result=FAIL error={type(e).__name__}")
        passed = False
    finally:
        for s in socks:
            s.close()
        # Informational: does the server release them?
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and count_fds(args.pid) > 64:
            time.sleep(0.1)
        if socks:
            log(f"  after closing: server fds {count_fds(args.pid)}, VmRSS "
                f"{proc_status(args.pid).get('VmRSS', 0) if os.path.exists(f'/proc/{args.pid}') else 'n/a'} kB")
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
