#!/usr/bin/env python3
"""Data layer: migrations, the pipelined PostgreSQL pool under concurrency, the
database restarted or crashing under load, Redis going away, clients leaving
mid-query, query timeouts, a full queue and an unreachable database.

The file runs its own PostgreSQL + Redis (deps/services.sh, SERVICES_EPHEMERAL=1)
in a temp directory, so stopping them cannot disturb tests running in parallel.
Servers get DATABASE_URL/REDIS_URL from `deps/services.sh env`.
"""

import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import build_request  # noqa: E402

SVC = None                      # harness.Services, set by setUpModule
MIGRATIONS_DIR = os.path.join(harness.REPO_ROOT, "db", "migrations")
DB_DOWN_MSG = "the database is unavailable"
SUMMARY_RE = re.compile(r"schema at version (\d+) \((\d+) migrations? applied\)")

FIXTURE = harness.ModuleFixture("staccato-dl-")
_SCRUB = harness.SCRUB


def migrations():
    """[(version, name)] of the embedded migrations, from db/migrations/NNNN_name.sql."""
    out = []
    for f in sorted(os.listdir(MIGRATIONS_DIR)):
        m = re.match(r"^(\d+)_.*\.sql$", f)
        if m:
            out.append((int(m.group(1)), f[:-4]))
    if not out:
        raise AssertionError("no migrations found in %s" % MIGRATIONS_DIR)
    return out


def setUpModule():
    global SVC
    with FIXTURE.setting_up():
        SVC = FIXTURE.start_services()


tearDownModule = FIXTURE.tear_down


def run_migrate(url, timeout=60.0):
    env = dict(_SCRUB, DATABASE_URL=url)
    return harness.run_cli(["migrate"], env_overrides=env, timeout=timeout)


def db_env(**extra):
    # No job workers: their LISTEN connection and claims would add to the connections and queries counted here.
    env = FIXTURE.env(STACCATO_JOBS="off")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def closed_port():
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    s = socket.socket()
    try:
        s.bind((harness.LOOPBACK, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def db_path(tag, sleep_ms=0):
    return "/_debug/db?tag=%s&sleep_ms=%d" % (tag, sleep_ms)


def check_db_response(r, tag, allowed=(200,)):
    """None when r is a well-formed answer of /_debug/db for tag with a status in
    allowed, else a description of what is wrong. 200 must echo the tag; an error
    must be the JSON error envelope (503: the database-unavailable message)."""
    if r.status not in allowed:
        return "status %d (allowed %r): %r" % (r.status, allowed, r.body[:200])
    ct = (r.header("content-type") or "").replace(" ", "").lower()
    if ct != "application/json;charset=utf-8":
        return "Content-Type %r on %d" % (ct, r.status)
    try:
        j = json.loads(r.body.decode("utf-8"))
    except Exception:
        return "body not JSON: %r" % r.body[:200]
    if r.status == 200:
        if j != {"status": "success", "data": {"tag": tag}}:
            return "200 for tag %r answered %r" % (tag, j)
        return None
    want = "fail" if r.status < 500 else "error"
    if not isinstance(j, dict) or j.get("status") != want or not isinstance(j.get("message"), str):
        return "%d body is not the error envelope: %r" % (r.status, j)
    if r.status == 503 and j["message"] != DB_DOWN_MSG:
        return "503 message %r (expected %r)" % (j["message"], DB_DOWN_MSG)
    return None


def server_complaints(srv, limit=3000):
    """The server's stderr without info/debug lines (for failure messages)."""
    lines = [ln for ln in srv.stderr_lines() if " info " not in ln and " debug " not in ln]
    return "server warnings/errors:\n" + "\n".join(lines)[-limit:]


def backend_count():
    """Client connections of the application role to its database, other than
    the psql session asking and the notification connections of the media cache
    and the token versions (not part of the pool)."""
    return int(SVC.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'staccato' AND datname = 'staccato' "
        "AND backend_type = 'client backend' AND state IS NOT NULL AND pid <> pg_backend_pid() "
        "AND application_name NOT IN ('staccato-media-cache', 'staccato-token-versions')"))


def concurrent_requests(srv, targets, timeout=15.0):
    """One connection per target, all requests sent together (a barrier), then
    every response read. Returns a list of (target, Response or exception)."""
    results = [None] * len(targets)
    barrier = threading.Barrier(len(targets), timeout=timeout)

    def one(i, target):
        c = None
        try:
            c = srv.connect(timeout=timeout)
            data = build_request("GET", target)
            barrier.wait()
            c.send(data)
            results[i] = c.read_response(timeout=timeout)
        except BaseException as e:  # noqa: B902 - reported by the caller
            try:
                barrier.abort()
            except Exception:
                pass
            results[i] = e
        finally:
            if c is not None:
                c.close()

    threads = [threading.Thread(target=one, args=(i, t), daemon=True) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return list(zip(targets, results))


class Loader:
    """Threads looping on /_debug/db over keep-alive connections until stopped
    (or a hard deadline). Records (start, end, tag, status, problem) per request,
    where problem is None or a description (transport error, bad answer)."""

    def __init__(self, srv, threads=3, sleep_ms=5, allowed=(200, 503), sock_timeout=5.0,
                 deadline_s=60.0, pause_s=0.005):
        self.srv = srv
        self.allowed = allowed
        self.sleep_ms = sleep_ms
        self.sock_timeout = sock_timeout
        self.pause_s = pause_s
        self.deadline = time.monotonic() + deadline_s
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.records = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self, i):
        conn = None
        n = 0
        while not self.stop_ev.is_set() and time.monotonic() < self.deadline:
            tag = "load%d-%d" % (i, n)
            n += 1
            t0 = time.monotonic()
            status, problem = None, None
            try:
                if conn is None:
                    conn = self.srv.connect(timeout=self.sock_timeout)
                r = conn.request("GET", db_path(tag, self.sleep_ms))
                status = r.status
                problem = check_db_response(r, tag, self.allowed)
                if "close" in r.connection_tokens():
                    conn.close()
                    conn = None
            except (AssertionError, OSError) as e:
                problem = "no answer: %r" % (e,)
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.records.append((t0, time.monotonic(), tag, status, problem))
            time.sleep(self.pause_s)
        if conn is not None:
            conn.close()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(self.sock_timeout + 5)
        return self.snapshot()

    def snapshot(self):
        with self.lock:
            return list(self.records)

    def count(self, status, started_after=0.0):
        return sum(1 for r in self.snapshot() if r[3] == status and r[0] > started_after)

    def problems(self):
        return [r for r in self.snapshot() if r[4] is not None]


class DataCase(harness.ServerTestCase):
    def db_server(self, **env):
        return self.start_server(env=db_env(**env))

    def assertDbAnswer(self, r, tag, allowed=(200,)):
        problem = check_db_response(r, tag, allowed)
        self.assertIsNone(problem, problem)

    def get_db(self, srv, tag, sleep_ms=0, timeout=5.0):
        c = srv.connect(timeout=timeout)
        try:
            return c.request("GET", db_path(tag, sleep_ms), timeout=timeout)
        finally:
            c.close()

    def ready(self, srv, timeout=5.0):
        r = srv.get("/ready", timeout=timeout)
        self.assertIn(r.status, (200, 503), r)
        return r.status, r.json()

    def wait_backends(self, n, timeout=10.0):
        """Waits until the application has exactly n connections to the database."""
        seen = []

        def pred():
            seen.append(backend_count())
            return seen[-1] == n

        harness.wait_until(pred, timeout, interval=0.1)
        self.assertEqual(seen[-1], n, "database connections of user staccato: %r (last of %d polls), "
                         "expected %d" % (seen[-1], len(seen), n))

    def assertNoProblems(self, loader_records, what, srv=None):
        bad = [r for r in loader_records if r[4] is not None]
        if bad:
            msg = "%s: %d of %d requests went wrong, e.g.:\n%s" % (
                what, len(bad), len(loader_records), "\n".join("  %s: %s" % (r[2], r[4]) for r in bad[:10]))
            if srv is not None:
                msg += "\n" + server_complaints(srv)
            self.fail(msg)


# ---------------------------------------------------------------------------
# 1. migrations
# ---------------------------------------------------------------------------

class Migrations(DataCase):
    def summary(self, out, err):
        m = SUMMARY_RE.search(out + err)
        self.assertIsNotNone(m, "no 'schema at version N (M migrations applied)' line in:\n%s%s" % (out, err))
        return int(m.group(1)), int(m.group(2))

    def applied_names(self, out, err):
        return re.findall(r"^applied (\S+)\s*$", out + "\n" + err, re.M)

    def assertSchemaRows(self, dbname):
        rows = SVC.psql("SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version",
                        dbname=dbname)
        got = [tuple(int(x) for x in ln.split("|")) for ln in rows.splitlines() if ln]
        self.assertEqual(got, [(v, 1) for v, _ in migrations()],
                         "schema_migrations rows (version, count) in %s" % dbname)
        self.assertEqual(SVC.psql("SELECT to_regclass('public.users') IS NOT NULL", dbname=dbname), "t",
                         "table users missing after migrate in %s" % dbname)

    def test_fresh_database_then_rerun(self):
        url = SVC.create_database("mig_fresh")
        latest = migrations()[-1][0]
        rc, out, err = run_migrate(url)
        self.assertEqual(rc, 0, "first migrate: rc=%r\n%s%s" % (rc, out, err))
        self.assertEqual(self.applied_names(out, err), [n for _, n in migrations()], out + err)
        self.assertEqual(self.summary(out, err), (latest, len(migrations())))
        self.assertSchemaRows("mig_fresh")

        rc, out, err = run_migrate(url)
        self.assertEqual(rc, 0, "second migrate: rc=%r\n%s%s" % (rc, out, err))
        self.assertEqual(self.applied_names(out, err), [], "re-run applied something:\n" + out + err)
        self.assertEqual(self.summary(out, err), (latest, 0))
        self.assertSchemaRows("mig_fresh")

    def test_concurrent_migrate_applies_each_migration_once(self):
        url = SVC.create_database("mig_race")
        latest = migrations()[-1][0]
        env = harness.clean_env(dict(_SCRUB, DATABASE_URL=url))
        procs = []
        try:
            for _ in range(4):
                procs.append(subprocess.Popen([harness.server_bin(), "migrate"], env=env, cwd=SVC.dir,
                                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE))
            results = []
            deadline = time.monotonic() + 60
            for p in procs:
                out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
                results.append((p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)
        total_applied = []
        for rc, out, err in results:
            self.assertEqual(rc, 0, "a concurrent migrate failed: rc=%r\n%s%s" % (rc, out, err))
            version, n = self.summary(out, err)
            self.assertEqual(version, latest, out + err)
            total_applied += self.applied_names(out, err)
        self.assertEqual(sorted(total_applied), sorted(n for _, n in migrations()),
                         "across the 4 runs every migration must be applied exactly once:\n%s"
                         % "\n---\n".join(o + e for _, o, e in results))
        self.assertSchemaRows("mig_race")

    def test_serve_refuses_newer_schema(self):
        url = SVC.create_database("mig_newer")
        rc, out, err = run_migrate(url)
        self.assertEqual(rc, 0, out + err)
        SVC.psql("INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')",
                 dbname="mig_newer")
        rc, out, err = harness.run_cli(["serve"], env_overrides=dict(_SCRUB, DATABASE_URL=url), timeout=15)
        self.assertEqual(rc, 1, "serve against a schema at version 9999: rc=%r (None: still running)\n"
                         "stderr:\n%s" % (rc, err))
        self.assertIn("newer", err.lower(), "stderr should say the schema is newer:\n" + err)
        self.assertNotIn("listening on", err, "refused server still listened:\n" + err)
        # migrate must not pretend to succeed on it either, nor touch it.
        rc, out, err = run_migrate(url)
        self.assertNotEqual(rc, 0, "migrate on a newer schema exited 0:\n%s%s" % (out, err))
        self.assertEqual(SVC.psql("SELECT max(version) FROM schema_migrations", dbname="mig_newer"), "9999")


# ---------------------------------------------------------------------------
# 2. concurrency / pipelining
# ---------------------------------------------------------------------------

class Concurrency(DataCase):
    def test_500_requests_over_50_keepalive_connections_pool_2(self):
        srv = self.db_server(STACCATO_DB_POOL_SIZE=2)
        nconn, per = 50, 10
        problems = []
        counts = [0] * nconn
        lock = threading.Lock()
        barrier = threading.Barrier(nconn, timeout=20)

        def worker(i):
            c = None
            try:
                c = srv.connect(timeout=20)
                barrier.wait()
                for k in range(per):
                    tag = "c%d-r%d" % (i, k)
                    r = c.request("GET", db_path(tag))
                    p = check_db_response(r, tag)
                    if p is None and "close" in r.connection_tokens():
                        p = "keep-alive connection closed by the server: %r" % r
                    if p:
                        with lock:
                            problems.append("%s: %s" % (tag, p))
                        return
                    counts[i] += 1
            except BaseException as e:  # noqa: B902
                with lock:
                    problems.append("conn %d: %r" % (i, e))
            finally:
                if c is not None:
                    c.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(nconn)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "client threads still running")
        if problems:
            self.fail("%d problems, e.g.:\n%s" % (len(problems), "\n".join(problems[:10])))
        self.assertEqual(sum(counts), nconn * per)
        # The pool never grows beyond its size.
        self.wait_backends(2)

    def test_failing_queries_do_not_fail_others_pipelined_with_them(self):
        """Regression: a query that failed in the pipeline took the queries sent behind it (up to the next Sync)
        down with it."""
        # A tag that is not UTF-8 makes PostgreSQL reject the query (a 500). In pipeline mode an error aborts
        # what was sent after it up to the next sync: those queries never ran and must still be answered
        # properly. One connection, so the good and bad queries share its pipeline.
        srv = self.db_server(STACCATO_DB_POOL_SIZE=1)
        problems = []
        for rnd in range(3):
            targets = []
            for i in range(40):
                if i % 2:
                    targets.append(db_path("bad%%FF-%d-%d" % (rnd, i), 20))
                else:
                    targets.append(db_path("good-%d-%d" % (rnd, i), 20))
            for target, r in concurrent_requests(srv, targets, timeout=15):
                tag = re.search(r"tag=([^&]*)", target).group(1)
                if isinstance(r, BaseException):
                    problems.append("%s: no answer: %r" % (tag, r))
                elif tag.startswith("good"):
                    p = check_db_response(r, tag)
                    if p:
                        problems.append("%s: %s" % (tag, p))
                else:
                    p = check_db_response(r, None, allowed=(500,))
                    if p:
                        problems.append("%s: %s" % (tag, p))
        if problems:
            self.fail("%d of 120 requests answered wrongly (expected: good tags 200 with the tag, bad tags 500 "
                      "JSON), e.g.:\n%s" % (len(problems), "\n".join(problems[:10])))
        r = self.get_db(srv, "after")
        self.assertDbAnswer(r, "after")
        self.wait_backends(1)


# ---------------------------------------------------------------------------
# 3. the database restarted (or crashing) under load
# ---------------------------------------------------------------------------

class DatabaseRestart(DataCase):
    POOL = 3

    def restart_under_load(self, stop_mode):
        # A query timeout far above the socket timeouts used here: a request that waited for the database
        # instead of failing fast would show up as a missing answer.
        srv = self.db_server(STACCATO_DB_POOL_SIZE=self.POOL, STACCATO_DB_QUERY_TIMEOUT_MS=20000)
        self.wait_backends(self.POOL)
        loader = Loader(srv, threads=4, sleep_ms=5, allowed=(200, 503), sock_timeout=4.0,
                        deadline_s=45).start()
        self.addCleanup(loader.stop)
        self.assertTrue(harness.wait_until(lambda: loader.count(200) >= 20, 10),
                        "no load got through before the restart: %r" % loader.snapshot()[-5:])

        if stop_mode == "immediate":
            # The ephemeral instance commits asynchronously (synchronous_commit=off), so a crash may lose the
            # last commits, such as the migrations applied a moment ago. A synchronous commit writes out all
            # the WAL before it, as a normally configured database would have done for every commit.
            SVC.psql("SET synchronous_commit = on; CREATE TEMP TABLE flush_wal (x int)")
        SVC.run("stop-pg", extra_env={"SERVICES_PG_STOP_MODE": stop_mode}, timeout=60)
        t_down = time.monotonic()
        try:
            self.assertTrue(harness.wait_until(lambda: loader.count(503, t_down) >= 5, 10),
                            "no 503 while the database is down; recent: %r" % loader.snapshot()[-5:])
            self.assertTrue(srv.alive(), "server died when the database went away")
            self.assertEqual(srv.get("/health").status, 200)
            for k in range(5):
                st, j = self.ready(srv, timeout=4)
                self.assertEqual(st, 503, j)
                self.assertEqual(j.get("status"), "error", j)
                self.assertEqual(j.get("message"), DB_DOWN_MSG, j)
                self.assertEqual(j.get("data", {}).get("database"), "down", j)
                tag = "down%d" % k
                # Fails fast: the query timeout is 20 s, the socket timeout 3 s.
                r = self.get_db(srv, tag, timeout=3)
                self.assertDbAnswer(r, tag, allowed=(503,))
                time.sleep(0.2)
            ok_while_down = loader.count(200, t_down + 0.5)
            self.assertEqual(ok_while_down, 0, "requests answered 200 while the database was stopped")
        finally:
            SVC.run("start-pg", timeout=60)
        t_up = time.monotonic()
        self.assertEqual(SVC.env().get("DATABASE_URL"), SVC.database_url,
                         "PostgreSQL came back on another port; cannot test reconnection")

        def ready_again():
            st, _ = self.ready(srv, timeout=4)
            return st == 200
        self.assertTrue(harness.wait_until(ready_again, 15, interval=0.2),
                        "/ready still not 200 15 s after the database came back: %r\n%s"
                        % (self.ready(srv), server_complaints(srv)))
        self.assertDbAnswer(self.get_db(srv, "back"), "back")
        self.assertTrue(harness.wait_until(lambda: loader.count(200, t_up) >= 10, 10),
                        "the load did not recover: %r" % loader.snapshot()[-5:])
        records = loader.stop()
        self.assertNoProblems(records, "requests across the restart (only 200 with the tag or 503 JSON allowed)",
                              srv)
        self.assertTrue(srv.alive())
        # Every pool connection came back, and none leaked.
        self.wait_backends(self.POOL)
        time.sleep(0.3)
        self.assertEqual(backend_count(), self.POOL)
        srv.stop_ok(self)
        self.wait_backends(0)

    def test_database_stopped_and_started_under_load(self):
        self.restart_under_load("fast")

    def test_database_crash_and_recovery_under_load(self):
        self.restart_under_load("immediate")


# ---------------------------------------------------------------------------
# 4. Redis stopped and started
# ---------------------------------------------------------------------------

class RedisRestart(DataCase):
    def redis_state(self, srv):
        st, j = self.ready(srv)
        self.assertEqual(st, 200, "/ready with the database up: %r" % j)
        self.assertEqual(j.get("status"), "success", j)
        self.assertEqual(j.get("data", {}).get("database"), "up", j)
        return j.get("data", {}).get("redis")

    def test_redis_down_and_up_database_unaffected(self):
        srv = self.db_server()
        self.assertTrue(harness.wait_until(lambda: self.redis_state(srv) == "up", 10),
                        "/ready never reported redis up: %r" % (self.ready(srv),))
        loader = Loader(srv, threads=2, sleep_ms=2, allowed=(200,), deadline_s=45).start()
        self.addCleanup(loader.stop)
        self.assertTrue(harness.wait_until(lambda: loader.count(200) >= 5, 10))
        SVC.run("stop-redis", timeout=60)
        try:
            self.assertTrue(harness.wait_until(lambda: self.redis_state(srv) == "down", 10, interval=0.1),
                            "/ready never reported redis down: %r" % (self.ready(srv),))
            t_down = time.monotonic()
            self.assertTrue(harness.wait_until(lambda: loader.count(200, t_down) >= 5, 10),
                            "database requests stalled while Redis was down")
        finally:
            SVC.run("start-redis", timeout=60)
        self.assertEqual(SVC.env().get("REDIS_URL"), SVC.redis_url,
                         "Redis came back on another port; cannot test reconnection")
        self.assertTrue(harness.wait_until(lambda: self.redis_state(srv) == "up", 15, interval=0.2),
                        "/ready still reports redis down 15 s after it came back: %r" % (self.ready(srv),))
        t_up = time.monotonic()
        self.assertTrue(harness.wait_until(lambda: loader.count(200, t_up) >= 5, 10))
        records = loader.stop()
        self.assertNoProblems(records, "/_debug/db while Redis went down and up (all must be 200)", srv)
        self.assertTrue(srv.alive())


# ---------------------------------------------------------------------------
# 5. clients that leave mid-query
# ---------------------------------------------------------------------------

class ClientDisconnects(DataCase):
    POOL = 4

    def test_clients_disconnect_mid_query(self):
        srv = self.db_server(STACCATO_DB_POOL_SIZE=self.POOL)
        self.wait_backends(self.POOL)
        conns = []
        try:
            # 50 clients send a slow query and close at once (FIN).
            for i in range(50):
                c = srv.connect()
                conns.append(c)
                c.send(build_request("GET", db_path("gone%d" % i, 300)))
                c.close()
            # 10 clients wait until their query is running, then reset the connection.
            rst = []
            for i in range(10):
                c = srv.connect()
                conns.append(c)
                c.send(build_request("GET", db_path("rst%d" % i, 300)))
                rst.append(c)
            time.sleep(0.1)
            for c in rst:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
            # 5 clients pipeline several queries and leave.
            for i in range(5):
                c = srv.connect()
                conns.append(c)
                c.send(b"".join(build_request("GET", db_path("pipe%d-%d" % (i, k), 50)) for k in range(4)))
                c.close()
        finally:
            for c in conns:
                c.close()

        # The server still answers, at once for routes without the database.
        self.assertTrue(srv.alive(), "server died after clients left mid-query")
        self.assertEqual(srv.get("/health").status, 200)
        # The pool still works (the abandoned queries may still occupy it for a while).
        r = self.get_db(srv, "after", timeout=30)
        self.assertDbAnswer(r, "after")
        # Every abandoned query ends; the pool keeps exactly its connections.
        busy = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'staccato' AND state = 'active' " \
               "AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
        self.assertTrue(harness.wait_until(lambda: SVC.psql(busy) == "0", 20, interval=0.2),
                        "abandoned queries still running")
        self.wait_backends(self.POOL)
        results = concurrent_requests(srv, [db_path("fresh%d" % i, 10) for i in range(20)])
        bad = []
        for target, r in results:
            tag = re.search(r"tag=([^&]*)", target).group(1)
            p = ("no answer: %r" % r) if isinstance(r, BaseException) else check_db_response(r, tag)
            if p:
                bad.append("%s: %s" % (tag, p))
        self.assertFalse(bad, "\n".join(bad[:10]))
        self.wait_backends(self.POOL)
        srv.stop_ok(self)  # exit 0 (under ASan also: nothing leaked)


# ---------------------------------------------------------------------------
# 6. query timeout
# ---------------------------------------------------------------------------

class QueryTimeout(DataCase):
    def test_slow_query_gets_504_and_the_connection_stays_usable(self):
        # One connection, so the next query runs on the very connection whose query timed out.
        srv = self.db_server(STACCATO_DB_POOL_SIZE=1, STACCATO_DB_QUERY_TIMEOUT_MS=200)
        self.wait_backends(1)
        c = srv.connect(timeout=5)
        self.addCleanup(c.close)
        # 10 s of sleep against a 200 ms deadline: the answer must come long before the socket timeout.
        r = c.request("GET", db_path("slow", 10000), timeout=5)
        self.assertJsonError(r, 504)
        r = c.request("GET", db_path("next"), timeout=5)
        self.assertDbAnswer(r, "next")
        # Several at once, then normal queries again.
        results = concurrent_requests(srv, [db_path("slow%d" % i, 10000) for i in range(3)], timeout=8)
        for target, r in results:
            self.assertNotIsInstance(r, BaseException, "%s: %r" % (target, r))
            self.assertJsonError(r, 504)
        # Queries already sent down the pipeline run until the statement_timeout ends them, so a query sent
        # right behind them may time out too; the connection must come back to normal soon after.
        def works():
            return self.get_db(srv, "probe").status == 200
        self.assertTrue(harness.wait_until(works, 5, interval=0.1),
                        "queries still fail 5 s after the timed-out ones:\n" + server_complaints(srv))
        for k in range(5):
            r = c.request("GET", db_path("again%d" % k), timeout=5)
            self.assertDbAnswer(r, "again%d" % k)
        self.wait_backends(1)


# ---------------------------------------------------------------------------
# queue limit
# ---------------------------------------------------------------------------

class QueueLimit(DataCase):
    def test_full_queue_answers_503_at_once(self):
        pool, depth, queue = 1, 1, 2
        srv = self.db_server(STACCATO_DB_POOL_SIZE=pool, STACCATO_DB_PIPELINE_DEPTH=depth,
                             STACCATO_DB_QUEUE_MAX=queue, STACCATO_DB_QUERY_TIMEOUT_MS=20000)
        self.wait_backends(pool)
        results = concurrent_requests(srv, [db_path("q%d" % i, 400) for i in range(10)], timeout=10)
        statuses = []
        for target, r in results:
            tag = re.search(r"tag=([^&]*)", target).group(1)
            self.assertNotIsInstance(r, BaseException, "%s: %r" % (target, r))
            self.assertDbAnswer(r, tag, allowed=(200, 503))
            statuses.append(r.status)
        self.assertGreaterEqual(statuses.count(503), 1, "no request was refused: %r" % statuses)
        self.assertGreaterEqual(statuses.count(200), 1, statuses)
        self.assertLessEqual(statuses.count(200), pool * depth + queue,
                             "more requests served than in flight + queued: %r" % statuses)
        # Refusals leave nothing behind: later requests are served.
        for k in range(3):
            self.assertDbAnswer(self.get_db(srv, "later%d" % k), "later%d" % k)


# ---------------------------------------------------------------------------
# 7. database unreachable at startup
# ---------------------------------------------------------------------------

class FreezingProxy:
    """A TCP relay to PostgreSQL whose connections can be made to go silent: freeze() drops every byte of the
    connections relayed so far, both ways, and keeps their sockets open, as a failover or a NAT that forgot the
    flow would. Connections made afterwards are relayed as usual."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []  # (client, upstream, frozen)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
                u = socket.create_connection(self.target, timeout=5)
                u.settimeout(None)
            except OSError:
                return
            frozen = threading.Event()
            with self.lock:
                self.conns.append((c, u, frozen))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b, frozen), daemon=True).start()

    @staticmethod
    def _pipe(a, b, frozen):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if not frozen.is_set():
                    b.sendall(data)
        except OSError:
            pass
        if not frozen.is_set():
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def freeze(self):
        with self.lock:
            for _, _, frozen in self.conns:
                frozen.set()

    def close(self):
        self.ls.close()
        with self.lock:
            for c, u, _ in self.conns:
                c.close()
                u.close()


class SilentDatabaseConnection(DataCase):
    def test_notification_connection_gone_silent_is_replaced(self):
        """Regression: a LISTEN connection that died without a word was trusted, so the media cache kept
        answering from rows that had changed since."""
        # The media cache trusts its entries only while its LISTEN connection hears of changes. A connection that
        # dies without a word is found by the heartbeat (a SELECT 1 every STACCATO_DB_LISTEN_HEARTBEAT_MS that must
        # be answered within the connect timeout), dropped (and the cache with it) and made again.
        m = re.match(r"^(postgresql://[^@]+@)([^:/]+):(\d+)(/.*)$", SVC.database_url)
        self.assertIsNotNone(m, SVC.database_url)
        proxy = FreezingProxy(m.group(2), int(m.group(3)))
        self.addCleanup(proxy.close)
        url = "%s127.0.0.1:%d%s" % (m.group(1), proxy.port, m.group(4))
        srv = self.db_server(DATABASE_URL=url, STACCATO_DB_LISTEN_HEARTBEAT_MS=200,
                             STACCATO_DB_CONNECT_TIMEOUT_MS=1000)

        def listening():
            return int(SVC.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                "'staccato-media-cache' AND query = 'SELECT 1'")) >= 1
        # Heartbeats pass through the relay while it relays.
        self.assertTrue(harness.wait_until(listening, 10), server_complaints(srv))
        self.assertIsNone(srv.err.wait_for(lambda ln: "media cache notification connection lost" in ln, 1.0),
                          "the connection was given up while it answered")
        proxy.freeze()
        lost = srv.err.wait_for(lambda ln: "media cache notification connection lost" in ln, 10)
        self.assertIsNotNone(lost, server_complaints(srv))
        self.assertIn("no answer to a heartbeat within 1000 ms", lost)
        back = srv.err.wait_for(lambda ln: "media cache notification connection back" in ln, 10)
        self.assertIsNotNone(back, server_complaints(srv))
        self.assertTrue(srv.alive())


class UnreachableDatabase(DataCase):
    def test_server_starts_without_database(self):
        port = closed_port()
        srv = self.start_server(env=dict(
            _SCRUB, DATABASE_URL="postgresql://staccato@127.0.0.1:%d/staccato" % port,
            REDIS_URL=SVC.redis_url, STACCATO_DB_QUERY_TIMEOUT_MS=20000))
        self.assertEqual(srv.get("/health").status, 200)
        for k in range(6):
            r = srv.get("/ready", timeout=3)
            j = self.assertJsonError(r, 503, DB_DOWN_MSG)
            self.assertEqual(j.get("data", {}).get("database"), "down", j)
            tag = "nodb%d" % k
            # The query timeout is 20 s: only a fast failure answers within the 3 s socket timeout.
            self.assertDbAnswer(self.get_db(srv, tag, timeout=3), tag, allowed=(503,))
            time.sleep(0.25)
        self.assertTrue(srv.alive())


if __name__ == "__main__":
    harness.main()
