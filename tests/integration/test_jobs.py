#!/usr/bin/env python3
"""Background jobs: POST /export/playlists/{id} and its e-mail, retries, leases, `staccato worker`, schedules.

Black-box over real sockets and a real SMTP peer on loopback (Debian's python3-aiosmtpd, run as a child process
that stores every accepted message as a file), against a private PostgreSQL + Redis (deps/services.sh,
SERVICES_EPHEMERAL=1). The tests that run job workers of their own (a second server, `staccato worker`) get a
database of their own, so that no other process claims their jobs.

Jobs are made fast for the tests: leases of one second, retries after 200 ms. A slow job is the debug kind
`debug-sleep` (enabled with STACCATO_DEBUG_ROUTES=on) or an SMTP peer that delays its answer to MAIL FROM.
"""

import datetime
import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SVC = None       # harness.Services
SRV = None       # the main server (jobs inline)
SMTP = None      # the main SMTP peer
PY_SMTPD = None  # a Python interpreter that has aiosmtpd
PASSWORD = "correct horse battery staple"
MAIL_FROM = "staccato@example.com"
DONE_MESSAGE = "Permintaan Anda sedang kami proses"
WAIT_S = 20.0

FIXTURE = harness.ModuleFixture("staccato-jobs-")
_SCRUB = dict(harness.SCRUB, **{k: None for k in ("SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD",
                                                  "MAIL_FROM")})

# ---------------------------------------------------------------------------
# The SMTP peer: aiosmtpd in a child process. Every accepted message becomes <dir>/<n>.eml with the envelope in
# <n>.json; every MAIL command is a line in <dir>/events. With DELAY and COUNT, the first COUNT MAIL commands are
# answered only after DELAY seconds (a slow server, to catch a worker mid-job).
# ---------------------------------------------------------------------------

SMTP_PEER = r'''
import asyncio, json, os, signal, socket, sys, threading
from aiosmtpd.smtp import SMTP

port, outdir, delay, count = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
lock = threading.Lock()
state = {"n": 0, "delays": count}

def event(line):
    with lock, open(os.path.join(outdir, "events"), "a") as f:
        f.write(line + "\n")

class Handler:
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        event("MAIL " + address)
        with lock:
            slow = state["delays"] > 0
            state["delays"] -= 1
        if slow:
            await asyncio.sleep(delay)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # Mailboxes whose names say how to answer: for good (5xx) or for now (4xx).
        if address.startswith("refuse5-"):
            return "550 5.1.1 No such mailbox"
        if address.startswith("defer4-"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with lock:
            state["n"] += 1
            n = state["n"]
        base = os.path.join(outdir, "%06d" % n)
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".json.tmp", base + ".json")
        os.rename(base + ".eml.tmp", base + ".eml")
        event("DATA %d" % n)
        return "250 Message accepted for delivery"

# Bound here (port 0: the kernel picks one), so no other process can take the port between choosing and listening.
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", port))
sock.listen(128)
loop = asyncio.new_event_loop()
handler = Handler()
loop.run_until_complete(loop.create_server(lambda: SMTP(handler), sock=sock))
loop.add_signal_handler(signal.SIGTERM, lambda: os._exit(0))
print("ready %d" % sock.getsockname()[1], flush=True)
loop.run_forever()
'''


def find_smtpd_python():
    for py in (sys.executable, "/usr/bin/python3"):
        if py and os.path.exists(py) and subprocess.call([py, "-c", "import aiosmtpd"], stdout=subprocess.DEVNULL,
                                                         stderr=subprocess.DEVNULL) == 0:
            return py
    return None


class SmtpPeer:
    def __init__(self, start=True, delay=0.0, count=0):
        self.port = 0  # chosen by the peer's first start, or reserved below when it starts later
        self.dir = tempfile.mkdtemp(prefix="staccato-smtp-")
        self.proc = None
        self.parsed = {}  # file name -> (envelope, message): files never change once renamed into place
        if start:
            self.start(delay, count)
        else:
            # A port for a peer that starts later: taken now (bound, not listening, so connections are refused) and
            # handed over when the peer starts.
            self.reserved = socket.socket()
            self.reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.reserved.bind(("127.0.0.1", 0))
            self.port = self.reserved.getsockname()[1]

    def start(self, delay=0.0, count=0):
        if getattr(self, "reserved", None) is not None:
            self.reserved.close()
            self.reserved = None
        with open(os.path.join(self.dir, "stderr.log"), "ab") as errlog:
            self.proc = subprocess.Popen([PY_SMTPD, "-c", SMTP_PEER, str(self.port), self.dir, str(delay),
                                          str(count)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=errlog)
        deadline = time.monotonic() + 15
        ready = []

        def read():
            ready.append(self.proc.stdout.readline())
        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(max(0.1, deadline - time.monotonic()))
        words = ready[0].split() if ready else []
        if len(words) != 2 or words[0] != b"ready":
            self.stop()
            raise AssertionError("SMTP peer did not start on port %d" % self.port)
        self.port = int(words[1])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc:
            self.proc.stdout.close()
        self.proc = None

    def destroy(self):
        self.stop()
        if getattr(self, "reserved", None) is not None:
            self.reserved.close()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def events(self):
        try:
            with open(os.path.join(self.dir, "events")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def messages(self, to=None):
        """[(envelope dict, email.message.EmailMessage)] in order of arrival, optionally only those for `to`."""
        out = []
        for name in sorted(os.listdir(self.dir)):
            if not name.endswith(".eml") or name.startswith("stderr"):
                continue
            if name not in self.parsed:
                base = os.path.join(self.dir, name[:-4])
                with open(base + ".json") as f:
                    env = json.load(f)
                with open(base + ".eml", "rb") as f:
                    self.parsed[name] = (env, email.message_from_bytes(f.read(), policy=email.policy.default))
            env, msg = self.parsed[name]
            if to is None or to in env["rcpt_tos"]:
                out.append((env, msg))
        return out

    def wait_messages(self, to, n=1, timeout=WAIT_S):
        msgs = harness.wait_until(lambda: len(self.messages(to)) >= n and self.messages(to), timeout)
        if not msgs:
            raise AssertionError("%d message(s) for %s did not arrive within %.0fs (have %d)"
                                 % (n, to, timeout, len(self.messages(to))))
        return msgs


def attachments(msg):
    return [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in msg.iter_attachments()]


# ---------------------------------------------------------------------------
# processes and databases
# ---------------------------------------------------------------------------

def server_env(db_url, smtp_port, **extra):
    env = dict(_SCRUB, DATABASE_URL=db_url, REDIS_URL=SVC.redis_url,
               ACCESS_TOKEN_KEY="jobs-tests-access-key-0123456789-abcdefghijklmn",
               REFRESH_TOKEN_KEY="jobs-tests-refresh-key-9876543210-zyxwvutsrqpo",
               STACCATO_ARGON2_M_KIB="1024", STACCATO_ARGON2_T="1",
               SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), MAIL_FROM=MAIL_FROM,
               STACCATO_JOB_LEASE_MS="1000", STACCATO_JOB_RETRY_BASE_MS="200", STACCATO_JOB_RETRY_MAX_MS="1000",
               STACCATO_JOB_POLL_MS="5000", STACCATO_SMTP_TIMEOUT_MS="60000")
    env.update({k: str(v) for k, v in extra.items()})
    return env


migrate = harness.migrate


def fresh_database():
    """A new, migrated database of the shared PostgreSQL: (name, url)."""
    name = "jobs_" + uuid.uuid4().hex[:10]
    url = SVC.create_database(name)
    migrate(url)
    return name, url


class Worker:
    """A `staccato worker` process (no listener): started when its workers log that they run."""

    def __init__(self, env):
        self.tmp = tempfile.mkdtemp(prefix="staccato-worker-")
        self.proc = subprocess.Popen([harness.server_bin(), "worker"], env=harness.clean_env(env), cwd=self.tmp,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = harness._LineCollector(self.proc.stdout, "worker-stdout")
        self.err = harness._LineCollector(self.proc.stderr, "worker-stderr")
        self.out.start()
        self.err.start()
        if self.err.wait_for(lambda ln: "job workers started" in ln, 15) is None:
            self.kill()
            raise AssertionError("staccato worker did not start:\n" + "\n".join(self.err.snapshot()[-20:]))

    def log(self):
        return "\n".join(self.err.snapshot())

    def stop(self, timeout=harness.STOP_DEADLINE_S):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self._finish()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._finish()

    def _finish(self):
        self.out.wait_done(2)
        self.err.wait_done(2)
        self.proc.stdout.close()
        self.proc.stderr.close()
        if os.path.isdir(self.tmp):
            os.rmdir(self.tmp)


def setUpModule():
    global SVC, SRV, SMTP, PY_SMTPD
    PY_SMTPD = find_smtpd_python()
    if PY_SMTPD is None:
        raise unittest.SkipTest("python3-aiosmtpd is not installed (deps/install.sh test)")
    with FIXTURE.setting_up():
        SVC = FIXTURE.start_services()
        SMTP = SmtpPeer()
        FIXTURE.add_cleanup(SMTP.destroy)
        SRV = FIXTURE.server("main", server_env(SVC.database_url, SMTP.port))


tearDownModule = FIXTURE.tear_down


# ---------------------------------------------------------------------------
# HTTP helpers
# ---------------------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body, raw):
        self.status, self.headers, self.json, self.raw = status, headers, body, raw

    def __repr__(self):
        return "<%d %r>" % (self.status, self.raw[:300])


def call(srv, method, path, body=None, token=None):
    hdrs = []
    if token is not None:
        hdrs.append(("Authorization", "Bearer " + token))
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.append(("Content-Type", "application/json"))
    elif isinstance(body, str):
        body = body.encode()
        hdrs.append(("Content-Type", "application/json"))
    c = srv.connect()
    try:
        r = c.request(method, path, headers=hdrs, body=body)
    finally:
        c.close()
    try:
        j = json.loads(r.body.decode("utf-8")) if r.body else None
    except ValueError:
        j = None
    return Resp(r.status, harness.Headers(r.headers), j, r.body)


def q(s):
    return "'" + s.replace("'", "''") + "'"


def sql(query, db=None):
    return SVC.psql(query, dbname=db)


class User:
    def __init__(self, srv, prefix="u"):
        self.srv = srv
        self.username = "%s_%s" % (prefix, uuid.uuid4().hex[:10])
        self.id = harness.register(srv.port, self.username, PASSWORD, "Test")
        self.token, _ = harness.login(srv.port, self.username, PASSWORD)

    def playlist(self, name="Road trip"):
        r = call(self.srv, "POST", "/playlists", {"name": name}, self.token)
        assert r.status == 201, r
        return r.json["data"]["playlistId"]

    def add_song(self, pid, sid):
        r = call(self.srv, "POST", "/playlists/%s/songs" % pid, {"songId": sid}, self.token)
        assert r.status == 201, r

    def export(self, pid, target):
        return call(self.srv, "POST", "/export/playlists/%s" % pid, {"targetEmail": target}, self.token)


def new_song(title, performer, owner_id=None, db=None, created_at=None):
    sid = "song-" + uuid.uuid4().hex[:16]
    sql("INSERT INTO songs (id, title, year, performer, genre, owner_id, created_at) VALUES (%s, %s, 2021, %s, "
        "'Pop', %s, %s)" % (q(sid), q(title), q(performer), q(owner_id) if owner_id else "NULL",
                            created_at or "now()"), db)
    return sid


def target():
    return "x%s@example.com" % uuid.uuid4().hex[:12]


def job_row(job_filter, db=None):
    """(state, attempts, last_error or '') of the one job matching the SQL condition."""
    out = sql("SELECT state || '|' || attempts || '|' || coalesce(last_error, '') FROM jobs WHERE %s" % job_filter, db)
    if not out:
        return None
    state, attempts, last_error = out.splitlines()[0].split("|", 2)
    return state, int(attempts), last_error


def export_filter(to):
    return "kind = 'export-playlist' AND payload->>'targetEmail' = %s" % q(to)


def wait_job(job_filter, pred, db=None, timeout=WAIT_S):
    row = harness.wait_until(lambda: (lambda r: r if r and pred(r) else None)(job_row(job_filter, db)), timeout)
    if not row:
        raise AssertionError("job %s never reached the expected state; now %r" % (job_filter, job_row(job_filter,
                                                                                                       db)))
    return row


class JobsCase(unittest.TestCase):
    def assertFail(self, r, status):
        self.assertEqual(r.status, status, r)
        ct = (r.headers.get("content-type") or "").replace(" ", "").lower()
        self.assertEqual(ct, "application/json;charset=utf-8", r)
        self.assertEqual(set(r.json), {"status", "message"}, r)
        self.assertEqual(r.json["status"], "fail", r)
        self.assertTrue(r.json["message"], r)

    def assertAccepted(self, r):
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json, {"status": "success", "message": DONE_MESSAGE}, r)

    def stop_ok(self, proc):
        rc = proc.stop()
        self.assertEqual(rc, 0, "exit code %r after SIGTERM:\n%s" % (
            rc, "\n".join((proc.err.snapshot() if hasattr(proc, "err") else [])[-20:])))


# ---------------------------------------------------------------------------
# POST /export/playlists/{playlistId}
# ---------------------------------------------------------------------------

class Export(JobsCase):
    def test_export_arrives_with_json_attachment(self):
        owner = User(SRV, "owner")
        pid = owner.playlist("Favourites \"2024\"")
        s1 = new_song("Bohemian Rhapsody", "Queen")
        s2 = new_song("Lagu \u00dcntuk Kamu", "Tulus")
        owner.add_song(pid, s1)
        owner.add_song(pid, s2)
        to = target()
        self.assertAccepted(owner.export(pid, to))
        (env, msg), = SMTP.wait_messages(to)
        self.assertEqual(env["mail_from"], MAIL_FROM)
        self.assertEqual(env["rcpt_tos"], [to])
        self.assertIn(MAIL_FROM, msg["From"])
        self.assertIn(to, msg["To"])
        self.assertTrue(msg["Message-ID"])
        files = attachments(msg)
        self.assertEqual(len(files), 1, files)
        name, ctype, data = files[0]
        self.assertEqual((name, ctype), ("playlist.json", "application/json"))
        self.assertEqual(json.loads(data.decode("utf-8")), {"playlist": {
            "id": pid, "name": "Favourites \"2024\"", "songs": [
                {"id": s1, "title": "Bohemian Rhapsody", "performer": "Queen"},
                {"id": s2, "title": "Lagu \u00dcntuk Kamu", "performer": "Tulus"}]}})
        # The message names its job, so that a repeat delivery is recognisable.
        job_id = sql("SELECT id FROM jobs WHERE " + export_filter(to))
        self.assertIn("staccato-job-%s" % job_id, msg.get_body(("plain",)).get_content())
        # ... and so does its Message-ID, the same on every attempt: a repeat is the same message to a mail client.
        self.assertEqual(msg["Message-ID"], "<staccato-job-%s@example.com>" % job_id)
        self.assertEqual(wait_job(export_filter(to), lambda r: r[0] == "done"), ("done", 1, ""))

    def test_smtp_refusal_for_good_is_not_retried(self):
        """Regression: a 5xx refusal of the SMTP server was retried like a 4xx one."""
        owner = User(SRV, "refused")
        to = "refuse5-" + target()
        self.assertAccepted(owner.export(owner.playlist(), to))
        state = wait_job(export_filter(to), lambda r: r[0] == "dead")
        self.assertEqual(state[:2], ("dead", 1))
        self.assertIn("refused the message for good", state[2])
        self.assertEqual(SMTP.messages(to), [])

    def test_smtp_refusal_for_now_is_retried(self):
        owner = User(SRV, "deferred")
        to = "defer4-" + target()
        self.assertAccepted(owner.export(owner.playlist(), to))
        # Retried until the attempts run out (5 by default, 200 ms doubling to 1 s between them here).
        state = wait_job(export_filter(to), lambda r: r[0] == "dead")
        self.assertEqual(state[:2], ("dead", 5))
        self.assertIn("answered unusably", state[2])

    def test_empty_playlist_exports_empty_song_list(self):
        owner = User(SRV, "empty")
        pid = owner.playlist("Nothing yet")
        to = target()
        self.assertAccepted(owner.export(pid, to))
        (_, msg), = SMTP.wait_messages(to)
        self.assertEqual(json.loads(attachments(msg)[0][2]),
                         {"playlist": {"id": pid, "name": "Nothing yet", "songs": []}})

    def test_order_of_checks(self):
        owner, other = User(SRV, "own"), User(SRV, "other")
        pid = owner.playlist()
        path = "/export/playlists/%s" % pid
        # 401 before anything else, even with a bad body or an unknown playlist
        self.assertFail(call(SRV, "POST", path, {"targetEmail": "nope"}), 401)
        self.assertFail(call(SRV, "POST", "/export/playlists/playlist-nope", {"targetEmail": "a@example.com"}),
                        401)
        self.assertFail(call(SRV, "POST", path, {"targetEmail": "a@example.com"}, token="not-a-token"), 401)
        # 400 before 404 and 403
        for body in ({}, {"targetEmail": 42}, {"targetEmail": None}, "[]", "not json", {"targetEmail": ""},
                     {"targetEmail": "plainaddress"}, {"targetEmail": "a@b"}, {"targetEmail": "a b@example.com"},
                     {"targetEmail": "a@example.com\r\nBcc: victim@example.com"},
                     {"targetEmail": "a..b@example.com"}, {"targetEmail": "@example.com"},
                     {"targetEmail": "a@-example.com"}, {"targetEmail": "a@example.c0m"},
                     {"targetEmail": "<a@example.com>"}):
            self.assertFail(call(SRV, "POST", "/export/playlists/playlist-nope", body, owner.token), 400)
            self.assertFail(call(SRV, "POST", path, body, other.token), 400)
        # 404 before 403
        self.assertFail(other.export("playlist-nope", "a@example.com"), 404)
        self.assertFail(other.export("playlist-%00x", "a@example.com"), 404)
        self.assertFail(other.export(pid, "a@example.com"), 403)
        self.assertEqual(sql("SELECT count(*) FROM jobs WHERE payload->>'playlistId' = %s" % q(pid)), "0")
        # valid addresses of several shapes
        for addr in ("first.last+tag@example.co.id", "o'brien@sub.example.org", "X_Y-z@EXAMPLE.COM"):
            self.assertAccepted(owner.export(pid, addr))

    def test_collaborator_may_not_export(self):
        owner, collab = User(SRV, "own"), User(SRV, "col")
        pid = owner.playlist()
        r = call(SRV, "POST", "/collaborations", {"playlistId": pid, "userId": collab.id}, owner.token)
        self.assertEqual(r.status, 201, r)
        self.assertFail(collab.export(pid, target()), 403)

    def test_rate_limit_counts_the_last_hour_of_jobs(self):
        owner = User(SRV, "busy")
        pid = owner.playlist()
        sql("INSERT INTO jobs (kind, payload, state, created_at) SELECT 'export-playlist', "
            "jsonb_build_object('playlistId', %s, 'userId', %s, 'targetEmail', 'old@example.com'), 'done', "
            "now() - interval '30 minutes' FROM generate_series(1, 10)" % (q(pid), q(owner.id)))
        r = owner.export(pid, target())
        self.assertFail(r, 429)
        retry_after = int(r.headers.get("retry-after"))
        self.assertTrue(1700 <= retry_after <= 1800, retry_after)
        # only the last hour counts
        sql("UPDATE jobs SET created_at = now() - interval '61 minutes' WHERE payload->>'userId' = %s" % q(owner.id))
        self.assertAccepted(owner.export(pid, target()))

    def test_rate_limit_is_exact_under_concurrent_requests(self):
        owner = User(SRV, "burst")
        pid = owner.playlist()
        statuses = []
        lock = threading.Lock()

        def one():
            r = owner.export(pid, "burst-%s@example.com" % uuid.uuid4().hex[:8])
            with lock:
                statuses.append(r.status)
        threads = [threading.Thread(target=one) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(sorted(statuses), [201] * 10 + [429] * 6)
        self.assertEqual(sql("SELECT count(*) FROM jobs WHERE kind = 'export-playlist' AND payload->>'userId' = %s"
                             % q(owner.id)), "10")

    def test_many_exports_in_parallel_while_health_answers(self):
        users = [User(SRV, "many") for _ in range(8)]  # 8 exports each: within the hourly limit
        playlists = [(u, u.playlist()) for u in users]
        for u, pid in playlists:
            u.add_song(pid, new_song("Song of " + u.username, "Band"))
        addresses, statuses, health = [], [], []
        lock = threading.Lock()
        stop = threading.Event()

        def exporter(u, pid):
            for _ in range(8):
                to = target()
                r = u.export(pid, to)
                with lock:
                    statuses.append(r.status)
                    addresses.append(to)

        def prober():
            while not stop.is_set():
                t0 = time.monotonic()
                r = call(SRV, "GET", "/health")
                with lock:
                    health.append((r.status, time.monotonic() - t0))
        probe = threading.Thread(target=prober)
        probe.start()
        try:
            threads = [threading.Thread(target=exporter, args=p) for p in playlists]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            for to in addresses:
                SMTP.wait_messages(to)
        finally:
            stop.set()
            probe.join(10)
        self.assertEqual(statuses, [201] * 64)
        self.assertTrue(health, "no /health probe ran")
        self.assertTrue(all(s == 200 for s, _ in health), health)

    def test_export_of_a_deleted_playlist_ends_dead(self):
        owner = User(SRV, "gone")
        pid = owner.playlist()
        sql("INSERT INTO jobs (kind, payload) VALUES ('export-playlist', jsonb_build_object('playlistId', %s, "
            "'userId', %s, 'targetEmail', 'gone@example.com')); NOTIFY staccato_jobs" % (q(pid + "x"), q(owner.id)))
        state = wait_job("payload->>'playlistId' = %s" % q(pid + "x"), lambda r: r[0] == "dead")
        self.assertEqual(state, ("dead", 1, "the playlist no longer exists"))


# ---------------------------------------------------------------------------
# the queue: failures, retries, leases, shutdown
# ---------------------------------------------------------------------------

def debug_job(payload, max_attempts=5, db=None):
    return sql("INSERT INTO jobs (kind, payload, max_attempts) VALUES ('debug-sleep', %s, %d) RETURNING id; "
               "NOTIFY staccato_jobs" % (q(json.dumps(payload)), max_attempts), db).splitlines()[0]


class Queue(JobsCase):
    def test_job_failing_max_attempts_times_ends_dead_with_last_error(self):
        jid = debug_job({"ms": 0, "fail": "boom %s" % uuid.uuid4().hex[:6]}, max_attempts=3)
        state = wait_job("id = %s" % jid, lambda r: r[0] == "dead")
        self.assertEqual(state[:2], ("dead", 3))
        self.assertTrue(state[2].startswith("boom "), state)
        self.assertEqual(sql("SELECT locked_until IS NULL FROM jobs WHERE id = %s" % jid), "t")

    def test_smtp_down_job_retried_with_backoff_then_delivered(self):
        name, url = fresh_database()
        peer = SmtpPeer(start=False)
        # enough attempts to outlast a slow start of the peer (each is at most a second apart)
        srv = harness.Server(env=server_env(url, peer.port, STACCATO_JOB_MAX_ATTEMPTS=60))
        try:
            owner = User(srv, "down")
            pid = owner.playlist()
            to = target()
            self.assertAccepted(owner.export(pid, to))
            # Each failure puts the next attempt further off: 200 ms after the first, then 400, 800, capped at
            # 1000, each plus up to a fifth of jitter (the delay is run_at - updated_at of the queued row).
            seen = {}

            def delays():
                out = sql("SELECT attempts || '|' || round(extract(epoch FROM run_at - updated_at) * 1000) FROM jobs "
                          "WHERE state = 'queued' AND " + export_filter(to), name)
                if out:
                    attempts, ms = out.split("|")
                    seen[int(attempts)] = int(ms)
                return len(seen) >= 2 and max(seen) >= 3
            self.assertTrue(harness.wait_until(delays, WAIT_S, interval=0.02), seen)
            for attempts, ms in seen.items():
                expected = min(200 * 2 ** (attempts - 1), 1000)
                self.assertTrue(expected <= ms <= expected * 1.2 + 1, (attempts, ms, seen))
            state = job_row(export_filter(to), name)
            self.assertIn("SMTP 127.0.0.1:%d" % peer.port, state[2])
            peer.start()
            (env, msg), = peer.wait_messages(to)
            done = wait_job(export_filter(to), lambda r: r[0] == "done", db=name)
            self.assertGreaterEqual(done[1], 2)
            self.assertEqual(len(peer.messages(to)), 1)
        finally:
            rc = srv.stop()
            srv.cleanup_tmp()
            peer.destroy()
        self.assertEqual(rc, 0, "\n".join(srv.err.snapshot()[-20:]))

    def test_worker_killed_mid_job_completes_once_after_restart(self):
        name, url = fresh_database()
        peer = SmtpPeer(delay=60, count=1)  # the first MAIL FROM hangs: the worker is mid-job
        env = server_env(url, peer.port)
        srv = harness.Server(env=dict(env, STACCATO_JOBS="off"))
        workers = []
        try:
            owner = User(srv, "kill")
            pid = owner.playlist()
            to = target()
            self.assertAccepted(owner.export(pid, to))
            workers.append(Worker(env))
            self.assertTrue(harness.wait_until(lambda: any(e.startswith("MAIL") for e in peer.events()), WAIT_S),
                            "the worker never reached the SMTP server:\n" + workers[0].log())
            self.assertEqual(job_row(export_filter(to), name)[:2], ("running", 1))
            workers[0].kill()
            workers.append(Worker(env))
            (env_, msg), = peer.wait_messages(to)
            state = wait_job(export_filter(to), lambda r: r[0] == "done", db=name)
            self.assertEqual(state[:2], ("done", 2))
            self.assertIn("lease expired", state[2])
            self.assertEqual(len(peer.messages(to)), 1)
            self.stop_ok(workers[1])
            self.assertIn("(export-playlist) done", workers[1].log())
        finally:
            for w in workers:
                w.kill()
            rc = srv.stop()
            srv.cleanup_tmp()
            peer.destroy()
        self.assertEqual(rc, 0, "\n".join(srv.err.snapshot()[-20:]))

    def test_worker_alone_processes_jobs_of_a_server_with_jobs_off(self):
        name, url = fresh_database()
        env = server_env(url, SMTP.port)
        srv = harness.Server(env=dict(env, STACCATO_JOBS="off"))
        worker = None
        try:
            self.assertFalse(any("job workers started" in ln for ln in srv.stderr_lines()))
            owner = User(srv, "split")
            pid = owner.playlist()
            to = target()
            self.assertAccepted(owner.export(pid, to))
            self.assertEqual(job_row(export_filter(to), name), ("queued", 0, ""))
            worker = Worker(env)
            SMTP.wait_messages(to)
            wait_job(export_filter(to), lambda r: r[0] == "done", db=name)
            self.stop_ok(worker)
            self.assertIn("(export-playlist) done", worker.log())
            self.assertIn("job workers stopped", worker.log())
        finally:
            if worker:
                worker.kill()
            rc = srv.stop()
            srv.cleanup_tmp()
        self.assertEqual(rc, 0, "\n".join(srv.err.snapshot()[-20:]))

    def test_sigterm_finishes_short_jobs_and_gives_back_long_ones(self):
        name, url = fresh_database()
        env = server_env(url, SMTP.port, STACCATO_DRAIN_TIMEOUT_MS=5000, STACCATO_LOG_LEVEL="debug")
        worker = Worker(env)
        try:
            short = debug_job({"ms": 2500}, db=name)
            slow = debug_job({"ms": 60000}, db=name)
            for jid in (short, slow):
                self.assertIsNotNone(worker.err.wait_for(lambda ln: "job %s (debug-sleep) started" % jid in ln,
                                                         WAIT_S), worker.log())
            self.stop_ok(worker)
            self.assertIn("stopping job workers: 2 running jobs", worker.log())
            self.assertEqual(job_row("id = %s" % short, name), ("done", 1, ""))
            self.assertEqual(job_row("id = %s" % slow, name), ("queued", 0, ""))
            self.assertIn("job %s (debug-sleep) given back" % slow, worker.log())
            # another worker takes the job that was given back
            sql("UPDATE jobs SET payload = '{\"ms\": 0}' WHERE id = %s" % slow, name)
            worker = Worker(env)
            self.assertEqual(wait_job("id = %s" % slow, lambda r: r[0] == "done", db=name), ("done", 1, ""))
            self.stop_ok(worker)
        finally:
            worker.kill()

    def test_unknown_kinds_are_left_for_workers_that_know_them(self):
        name, url = fresh_database()
        env = server_env(url, SMTP.port)
        # no debug routes: this worker does not run debug-sleep jobs and must not claim them
        worker = Worker(dict(env, STACCATO_DEBUG_ROUTES="off"))
        try:
            jid = debug_job({"ms": 0}, db=name)
            # a job it knows, enqueued after: once that one is done, the worker has looked at both
            to = target()
            sql("INSERT INTO jobs (kind, payload) VALUES ('export-playlist', jsonb_build_object('playlistId', 'p', "
                "'userId', 'u', 'targetEmail', %s)); NOTIFY staccato_jobs" % q(to), name)
            wait_job(export_filter(to), lambda r: r[0] == "dead", db=name)
            self.assertEqual(job_row("id = %s" % jid, name), ("queued", 0, ""))
            self.stop_ok(worker)
            worker = Worker(env)
            self.assertEqual(wait_job("id = %s" % jid, lambda r: r[0] == "done", db=name), ("done", 1, ""))
            self.stop_ok(worker)
        finally:
            worker.kill()


# ---------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------

class Schedules(JobsCase):
    def test_two_servers_enqueue_one_report_per_period(self):
        name, url = fresh_database()
        report_to = "reports-%s@example.com" % uuid.uuid4().hex[:8]
        # an artist with two songs: plays, likes and ratings last month, and some this month that do not count
        artist = "artist-" + uuid.uuid4().hex[:8]
        fan = "fan-" + uuid.uuid4().hex[:8]
        sql("INSERT INTO users (id, username, password_hash, fullname, role) VALUES (%s, 'Zed =Artist', 'x', 'Z', "
            "'artist'), (%s, 'fan', 'x', 'F', 'user')" % (q(artist), q(fan)), name)
        last_month = "date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '3 days'"
        this_month = "date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 minute'"
        hit = new_song("Hit, \"the\" one", "Zed", artist, db=name)
        quiet = new_song("=SUM(A1)", "Zed", artist, db=name)
        new_song("Nobody's", "Anon", None, db=name)
        sql("INSERT INTO plays (song_id, user_id, played_at) SELECT %s, %s, %s FROM generate_series(1, 3); "
            "INSERT INTO plays (song_id, played_at) VALUES (%s, %s); "
            "INSERT INTO song_likes (user_id, song_id, created_at) VALUES (%s, %s, %s); "
            "INSERT INTO ratings (user_id, song_id, rating, updated_at) VALUES (%s, %s, 4, %s)"
            % (q(hit), q(fan), last_month, q(hit), this_month, q(fan), q(hit), last_month, q(fan), q(hit),
               last_month), name)
        env = server_env(url, SMTP.port, STACCATO_SCHEDULES="monthly-artist-report@monthly, daily-digest@daily",
                         STACCATO_REPORT_EMAIL=report_to)
        servers, errors = [], []

        def start():
            try:
                s = harness.Server(env=env)
                servers.append(s)
            except BaseException as e:  # noqa: B902
                errors.append(e)
        threads = [threading.Thread(target=start) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        try:
            self.assertEqual(errors, [])
            self.assertEqual(len(servers), 2)
            now = datetime.datetime.now(datetime.timezone.utc)
            month = now.strftime("%Y-%m")
            day = now.strftime("%Y-%m-%d")
            prev_month = (now.replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
            SMTP.wait_messages(report_to, 2)
            for kind in ("monthly-artist-report", "daily-digest"):
                wait_job("kind = %s" % q(kind), lambda r: r[0] == "done", db=name)
            keys = sql("SELECT dedupe_key || '|' || count(*) FROM jobs GROUP BY dedupe_key ORDER BY 1", name)
            self.assertEqual(keys.splitlines(), ["daily-digest:%s|1" % day, "monthly-artist-report:%s|1" % month])
            msgs = SMTP.messages(report_to)
            self.assertEqual(len(msgs), 2)
            by_subject = {m["Subject"]: m for _, m in msgs}
            report = by_subject["Staccato artist report %s" % prev_month]
            (fname, ctype, data), = attachments(report)
            self.assertEqual((fname, ctype), ("artist-report-%s.csv" % prev_month, "text/csv"))
            lines = data.decode("utf-8").split("\r\n")
            self.assertEqual(lines[0], "artist_id,artist,song_id,title,plays,likes,ratings,average_rating")
            self.assertEqual(lines[1:], [
                '"%s","Zed =Artist","%s","\'=SUM(A1)",0,0,0,' % (artist, quiet),
                '"%s","Zed =Artist","%s","Hit, ""the"" one",3,1,1,4.00' % (artist, hit),
                ""])
            self.assertIn("Staccato daily digest %s" % (now - datetime.timedelta(days=1)).strftime("%Y-%m-%d"),
                          by_subject)
            (fname, ctype, data), = attachments(by_subject["Staccato daily digest %s"
                                                           % (now - datetime.timedelta(days=1)).strftime("%Y-%m-%d")])
            self.assertEqual(data.decode("utf-8").split("\r\n")[0], "list,rank,song_id,title,performer,likes")
            # a restart in the same period enqueues nothing new
            for s in servers:
                self.stop_ok_server(s)
            servers = [harness.Server(env=dict(env, STACCATO_LOG_LEVEL="debug"))]
            self.assertTrue(harness.wait_until(
                lambda: sum("was already enqueued" in ln for ln in servers[0].stderr_lines()) == 2, WAIT_S),
                "\n".join(servers[0].stderr_lines()[-20:]))
            self.assertEqual(sql("SELECT count(*) FROM jobs", name), "2")
        finally:
            for s in servers:
                if s.alive():
                    self.stop_ok_server(s)

    def stop_ok_server(self, s):
        rc = s.stop()
        s.cleanup_tmp()
        self.assertEqual(rc, 0, "\n".join(s.err.snapshot()[-20:]))

    def test_daily_digest_lists_new_and_most_liked_songs(self):
        name, url = fresh_database()
        report_to = "digest-%s@example.com" % uuid.uuid4().hex[:8]
        fan, fan2 = "fan-" + uuid.uuid4().hex[:8], "fan-" + uuid.uuid4().hex[:8]
        sql("INSERT INTO users (id, username, password_hash, fullname) VALUES (%s, 'fan', 'x', 'F'), "
            "(%s, 'fan2', 'x', 'F')" % (q(fan), q(fan2)), name)
        yesterday = "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '12 hours'"
        fresh = new_song("Fresh", "New Band", db=name, created_at=yesterday)
        old = new_song("Classic", "Old Band", db=name, created_at="now() - interval '30 days'")
        new_song("Today", "Now Band", db=name)
        sql("INSERT INTO song_likes (user_id, song_id, created_at) VALUES (%s, %s, %s), (%s, %s, %s), (%s, %s, %s)"
            % (q(fan), q(fresh), yesterday, q(fan), q(old), yesterday, q(fan2), q(old), yesterday), name)
        srv = harness.Server(env=server_env(url, SMTP.port, STACCATO_SCHEDULES="daily-digest@daily",
                                            STACCATO_REPORT_EMAIL=report_to))
        try:
            (_, msg), = SMTP.wait_messages(report_to)
            (fname, ctype, data), = attachments(msg)
            lines = data.decode("utf-8").split("\r\n")
            self.assertEqual(lines, [
                "list,rank,song_id,title,performer,likes",
                'new,1,"%s","Fresh","New Band",1' % fresh,
                'top_liked,1,"%s","Classic","Old Band",2' % old,
                'top_liked,2,"%s","Fresh","New Band",1' % fresh,
                ""])
        finally:
            rc = srv.stop()
            srv.cleanup_tmp()
        self.assertEqual(rc, 0, "\n".join(srv.err.snapshot()[-20:]))

    def test_bad_schedule_settings_are_refused(self):
        for env, fragment in (
                ({"STACCATO_SCHEDULES": "nope@daily", "STACCATO_REPORT_EMAIL": "a@example.com"}, "nope"),
                ({"STACCATO_SCHEDULES": "daily-digest@yearly", "STACCATO_REPORT_EMAIL": "a@example.com"}, "yearly"),
                ({"STACCATO_SCHEDULES": "daily-digest@daily,daily-digest@monthly",
                  "STACCATO_REPORT_EMAIL": "a@example.com"}, "twice"),
                ({"STACCATO_SCHEDULES": "daily-digest@daily"}, "STACCATO_REPORT_EMAIL"),
                ({"STACCATO_SCHEDULES": "debug-sleep@daily", "STACCATO_REPORT_EMAIL": "a@example.com"},
                 "debug-sleep"),
                ({"STACCATO_REPORT_EMAIL": "not an address"}, "STACCATO_REPORT_EMAIL"),
                ({"STACCATO_JOBS": "sometimes"}, "STACCATO_JOBS")):
            rc, out, err = harness.run_cli(["worker"], env_overrides=dict(_SCRUB, **env))
            self.assertEqual(rc, 2, (env, out, err))
            self.assertIn(fragment, err, env)
            self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_help_lists_the_job_settings_and_the_worker_command(self):
        rc, out, _ = harness.run_cli(["--help"])
        self.assertEqual(rc, 0)
        for name in ("STACCATO_JOBS", "STACCATO_JOB_CONCURRENCY", "STACCATO_JOB_LEASE_MS", "STACCATO_JOB_POLL_MS",
                     "STACCATO_JOB_RETRY_BASE_MS", "STACCATO_JOB_RETRY_MAX_MS", "STACCATO_JOB_MAX_ATTEMPTS",
                     "STACCATO_EXPORT_MAX_PER_HOUR", "SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD",
                     "MAIL_FROM", "STACCATO_SMTP_REQUIRE_TLS", "STACCATO_SMTP_TIMEOUT_MS", "STACCATO_SCHEDULES",
                     "STACCATO_REPORT_EMAIL", "  worker "):
            self.assertIn(name, out)


if __name__ == "__main__":
    harness.main()
