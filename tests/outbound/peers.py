#!/usr/bin/env python3
"""Throw-away HTTP and SMTP peers for tests/outbound/test_outbound.c, on free loopback ports.

Started by the test itself: prints "READY http=PORT smtp=PORT" on stdout once both listen, and exits when its
stdin reaches end of file (the test closes it, or dies), on SIGTERM, or after --max-seconds.

HTTP routes (HTTP/1.1 with keep-alive, one thread per connection):
  /json?i=N[&delay=MS]        {"i": N} after an optional delay; counts requests in flight
  /slow?ms=N                  answers after N ms
  /large?bytes=N[&chunked=1]  N bytes of "x", with Content-Length or chunked
  /status?code=N              an empty answer with that status
  /echo                       any method: {"method", "path", "headers" (lower-case names), "body"}
  /close                      closes the connection without answering
  /stats[?reset=1]            {"connections": accepted so far, "max_inflight": most /json at once}

SMTP (aiosmtpd): no STARTTLS; AUTH PLAIN/LOGIN accepted without TLS for user "user", password "secret"
(authentication is optional); a recipient whose local part starts with "reject" gets 550, one starting with
"defer" 451, one starting with "slow" is answered after 3 seconds. Each accepted message
is written to MAILDIR/<recipient>.eml and summarised, as parsed by Python's email package, in
MAILDIR/<recipient>.json.
"""
import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

try:
    from aiosmtpd.smtp import SMTP, AuthResult
except ImportError:  # Debian's python3-aiosmtpd, seen from another interpreter (pyenv, a venv)
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from aiosmtpd.smtp import SMTP, AuthResult
    except ImportError:
        SMTP = None

stats_lock = threading.Lock()
stats = {"connections": 0, "inflight": 0, "max_inflight": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with stats_lock:
            stats["connections"] += 1

    def log_message(self, fmt, *args):
        pass

    def send_body(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def dispatch(self):
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.read_body()
        if url.path == "/json":
            with stats_lock:
                stats["inflight"] += 1
                stats["max_inflight"] = max(stats["max_inflight"], stats["inflight"])
            try:
                time.sleep(int(q.get("delay", "0")) / 1000)
                self.send_body(200, json.dumps({"i": int(q.get("i", "0"))}).encode())
            finally:
                with stats_lock:
                    stats["inflight"] -= 1
        elif url.path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000)
            self.send_body(200, b'{"slow": true}')
        elif url.path == "/large":
            n = int(q.get("bytes", "0"))
            if q.get("chunked") == "1":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                left = n
                while left > 0:
                    k = min(left, 8192)
                    self.wfile.write(b"%x\r\n%s\r\n" % (k, b"x" * k))
                    left -= k
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_body(200, b"x" * n, "text/plain")
        elif url.path == "/status":
            self.send_body(int(q.get("code", "200")), b"", "text/plain")
        elif url.path == "/echo":
            out = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            self.send_body(200, json.dumps(out).encode())
        elif url.path == "/close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif url.path == "/stats":
            with stats_lock:
                out = {"connections": stats["connections"], "max_inflight": stats["max_inflight"]}
                if q.get("reset") == "1":
                    stats["max_inflight"] = 0
            self.send_body(200, json.dumps(out).encode())
        else:
            self.send_body(404, b'{"error": "no such route"}')

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = dispatch


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass  # clients that give up (timeouts, cancellations) reset their connections: expected here


def summarise(raw: bytes, envelope, session) -> dict:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    attachments, text = [], None
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_content_disposition() == "attachment":
            attachments.append({
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "data_hex": part.get_payload(decode=True).hex(),
            })
        elif part.get_content_type() == "text/plain" and text is None:
            text = part.get_content().replace("\r\n", "\n")
    lines = raw.split(b"\r\n")
    auth = session.auth_data
    return {
        "envelope_from": envelope.mail_from,
        "envelope_rcpt": envelope.rcpt_tos,
        "auth_login": auth.login.decode() if session.authenticated and auth is not None else None,
        "from": str(msg["from"]),
        "to": str(msg["to"]),
        "subject": str(msg["subject"]),
        "has_date": msg["date"] is not None and msg["date"].datetime is not None,
        "message_id": str(msg["message-id"]),
        "mime_version": str(msg["mime-version"]),
        "content_type": msg.get_content_type(),
        "text": text,
        "attachments": attachments,
        "max_line_len": max(len(line) for line in lines),
        "bare_lf": b"\n" in raw.replace(b"\r\n", b""),
    }


class MailHandler:
    def __init__(self, maildir):
        self.maildir = maildir

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].startswith("reject"):
            return "550 5.1.1 Recipient rejected"
        if address.split("@")[0].startswith("defer"):
            return "451 4.3.0 Try again later"
        if address.split("@")[0].startswith("slow"):
            await asyncio.sleep(3)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        name = re.sub(r"[^A-Za-z0-9@._-]", "_", envelope.rcpt_tos[0])
        base = os.path.join(self.maildir, name)
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        summary = summarise(raw, envelope, session)
        with open(base + ".json.tmp", "w") as f:
            json.dump(summary, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 Message accepted"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"user" and auth_data.password == b"secret"
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)  # aiosmtpd answers 535


def start_smtp(maildir):
    """Runs the SMTP peer on its own asyncio loop in a thread; returns the port."""
    ready = threading.Event()
    box = {}

    def run():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        handler = MailHandler(maildir)

        def factory():
            return SMTP(handler, hostname="peer.test", authenticator=authenticator, auth_require_tls=False,
                        loop=loop)

        server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
        box["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    if not ready.wait(10):
        raise RuntimeError("SMTP peer did not start")
    return box["port"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--max-seconds", type=float, default=300)
    args = ap.parse_args()

    logging.getLogger("mail.log").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    httpd = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    smtp_port = start_smtp(args.maildir) if SMTP is not None else 0
    print(f"READY http={httpd.server_address[1]} smtp={smtp_port}", flush=True)

    # Exit when the test closes our stdin (or dies), or after the time limit.
    threading.Timer(args.max_seconds, lambda: os._exit(2)).start()
    sys.stdin.buffer.read()
    os._exit(0)


if __name__ == "__main__":
    main()
