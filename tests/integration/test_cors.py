#!/usr/bin/env python3
"""CORS: browser pages on other origins calling the API (STACCATO_CORS_ORIGINS, BACKEND_CORS_ORIGINS,
STACCATO_CORS_MAX_AGE, STACCATO_COOKIE_SAMESITE).

Over sockets: the preflight of every route of the table (GET /_debug/routes) names exactly the methods of its
path; unknown paths are 404; a preflight from an origin not in the list is a plain OPTIONS answer without CORS
headers; JSON answers, errors, 304, a 206 of a stream and upload answers carry the CORS headers for an allowed
origin and none for another; "*" allows any origin without credentials; the cookie origin check trusts the CORS
origins (and nobody more for "*"); BACKEND_CORS_ORIGINS stands in for STACCATO_CORS_ORIGINS; bad origins stop the
start with status 2; STACCATO_COOKIE_SAMESITE=none sets SameSite=None; without origins, no CORS header at all.

In Chromium (tests/web/cors_browser.js, playwright-core): a page served on a second local port calls the API with
fetch(..., {credentials: 'include'}): a JSON call, a Range request on a stream and an upload work; a page on a
third port, not in the list, has its fetch refused by the browser. Skipped when Chromium is not installed.
"""

import base64
import functools
import http.server
import itertools
import json
import os
import random
import re
import string
import struct
import subprocess
import threading
import unittest

import harness
from harness import request

ACCESS_KEY = "cors-access-key-0123456789abcdefghijklmnop"
REFRESH_KEY = "cors-refresh-key-0123456789abcdefghijklmnop"
CHEAP_HASH = {"STACCATO_ARGON2_M_KIB": "1024", "STACCATO_ARGON2_T": "1"}
APP = "https://app.example"
EVIL = "https://evil.example"
BACKEND_APP = "http://front.example:8080"
EXPOSED = {"x-total-count", "x-data-source", "retry-after", "content-range", "accept-ranges", "etag",
           "content-length"}
ALLOWED_HEADERS = {"Authorization", "Content-Type", "Range", "If-Range", "If-None-Match"}
CHROMIUM = os.environ.get("SC_CHROMIUM", "/usr/bin/chromium")
BROWSER_SCRIPT = os.path.join(harness.REPO_ROOT, "tests", "web", "cors_browser.js")
PLAYWRIGHT = os.path.join(harness.REPO_ROOT, "tests", "web", "node_modules", "playwright-core")

FIXTURE = harness.ModuleFixture("staccato-cors-", check_sanitizers=True)
SRV = {}    # main (explicit origins), star ("*"), backend (BACKEND_CORS_ORIGINS, SameSite=None), off (none)
PAGES = {}  # allowed, denied -> http.server on a local port
U = {}      # artist -> {"id", "token"}
SONG = None  # a song with audio

_seq = itertools.count(1)


def uniq(prefix):
    return "%s%d%s" % (prefix, next(_seq), "".join(random.choice(string.ascii_lowercase) for _ in range(6)))


def wav():
    n = 4000
    return (b"RIFF" + struct.pack("<I", 36 + n) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000,
                                                                                    1, 8)
            + b"data" + struct.pack("<I", n) + random.Random(next(_seq)).randbytes(n))


class _Page(http.server.BaseHTTPRequestHandler):
    """The front end of another origin: one empty HTML page."""

    def do_GET(self):
        body = b"<!doctype html><title>front end</title><p>front end</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def page_server():
    srv = http.server.ThreadingHTTPServer((harness.LOOPBACK, 0), _Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    FIXTURE.add_cleanup(srv.server_close)
    FIXTURE.add_cleanup(srv.shutdown)
    return srv


def page_origin(name):
    return "http://127.0.0.1:%d" % PAGES[name].server_address[1]


def setUpModule():
    global SONG
    with FIXTURE.setting_up():
        media = os.path.join(FIXTURE.tempdir("staccato-cors-media-"), "m")
        svc = FIXTURE.start_services()
        PAGES["allowed"] = page_server()
        PAGES["denied"] = page_server()
        base = dict(ACCESS_TOKEN_KEY=ACCESS_KEY, REFRESH_TOKEN_KEY=REFRESH_KEY, STACCATO_MEDIA_DIR=media,
                    STACCATO_JOBS="off", **CHEAP_HASH)
        SRV["main"] = FIXTURE.server("main", FIXTURE.env(
            STACCATO_CORS_ORIGINS="%s, %s" % (APP, page_origin("allowed")), **base))
        SRV["star"] = FIXTURE.server("star", FIXTURE.env(STACCATO_CORS_ORIGINS="*", STACCATO_CORS_MAX_AGE="60",
                                                         **base))
        SRV["backend"] = FIXTURE.server("backend", FIXTURE.env(BACKEND_CORS_ORIGINS=BACKEND_APP,
                                                               STACCATO_COOKIE_SAMESITE="none", **base))
        SRV["off"] = FIXTURE.server("off", FIXTURE.env(**base))
        U["artist"] = harness.account(SRV["main"].port, uniq("cors_artist_"), "secret-password-1", "Cors Artist",
                                      "artist", svc)
        SONG = new_song()
        st, _, j = call("PUT", "/songs/%s/audio" % SONG, wav(), {"Content-Type": "audio/wav"})
        if st != 201:
            raise AssertionError("uploading audio: %d %r" % (st, j))


tearDownModule = FIXTURE.tear_down


def auth():
    return harness.bearer(U["artist"]["token"])


def call(method, path, body=None, headers=None, server="main", origin=None):
    h = dict(auth())
    if origin:
        h["Origin"] = origin
    h.update(headers or {})
    return request(SRV[server].port, method, path, body, headers=h)


def new_song():
    st, _, j = call("POST", "/songs", {"title": uniq("Song "), "year": 2020, "performer": "P", "genre": "Pop"})
    if st != 201:
        raise AssertionError("creating a song: %d %r" % (st, j))
    return j["data"]["songId"]


def preflight(path, method, origin=APP, request_headers=None, server="main"):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if request_headers:
        h["Access-Control-Request-Headers"] = request_headers
    return request(SRV[server].port, "OPTIONS", path, headers=h)


def methods(value):
    return {m.strip() for m in (value or "").split(",") if m.strip()}


def cors_headers(headers):
    return [k for k, _ in headers if k.lower().startswith("access-control-")]


def pattern_matches(pattern, path):
    p, q = pattern.strip("/").split("/"), path.strip("/").split("/")
    if pattern == "/" or path == "/":
        return pattern == path
    return len(p) == len(q) and all((a.startswith("{") and b) or a == b for a, b in zip(p, q))


class CorsTestCase(harness.ServerTestCase):

    def assertCors(self, headers, origin=APP, credentials=True):
        self.assertEqual(headers.get("Access-Control-Allow-Origin"), origin, headers)
        if credentials:
            self.assertEqual(headers.get("Access-Control-Allow-Credentials"), "true", headers)
            self.assertIn("Origin", [v.strip() for v in ",".join(headers.get_all("Vary")).split(",")], headers)
        else:
            self.assertIsNone(headers.get("Access-Control-Allow-Credentials"), headers)
        self.assertEqual({h.strip().lower() for h in headers.get("Access-Control-Expose-Headers", "").split(",")},
                         EXPOSED, headers)

    def assertNoCors(self, headers):
        self.assertEqual(cors_headers(headers), [], headers)


class Preflight(CorsTestCase):

    def test_every_route_names_exactly_its_methods(self):
        st, _, j = request(SRV["main"].port, "GET", "/_debug/routes")
        self.assertEqual(st, 200, j)
        routes = [(r["method"], r["pattern"]) for r in j["data"]["routes"]]
        self.assertGreater(len(routes), 40)
        for pattern in sorted({p for _, p in routes}):
            path = re.sub(r"\{[^}]+\}", "x1", pattern)
            want = {m for m, p in routes if pattern_matches(p, path)}
            if "GET" in want:
                want.add("HEAD")
            for method in sorted(want):
                with self.subTest(path=path, method=method):
                    st, h, _ = preflight(path, method, request_headers="authorization")
                    self.assertEqual(st, 204, h)
                    self.assertEqual(methods(h.get("Access-Control-Allow-Methods")), want, h)
                    self.assertEqual(methods(h.get("Allow")), want | {"OPTIONS"}, h)
                    self.assertEqual(h.get("Access-Control-Max-Age"), "600", h)
                    self.assertCors(h)

    def test_requested_headers_are_filtered(self):
        st, h, _ = preflight("/songs", "POST", request_headers="content-type, X-Custom,AUTHORIZATION, range, "
                                                               "if-range,If-None-Match, cookie")
        self.assertEqual(st, 204, h)
        self.assertEqual(methods(h.get("Access-Control-Allow-Headers")), ALLOWED_HEADERS, h)

    def test_no_allowed_header_requested(self):
        st, h, _ = preflight("/songs", "POST", request_headers="x-custom")
        self.assertEqual(st, 204, h)
        self.assertIsNone(h.get("Access-Control-Allow-Headers"), h)

    def test_unknown_path_is_404(self):
        r = harness.Conn(SRV["main"].port)
        try:
            resp = r.request("OPTIONS", "/no/such/route", headers=[("Origin", APP),
                                                                  ("Access-Control-Request-Method", "GET")])
        finally:
            r.close()
        self.assertJsonError(resp, 404, "route not found")

    def test_method_the_route_lacks_is_left_out(self):
        st, h, _ = preflight("/genres", "DELETE")
        self.assertEqual(st, 204, h)
        self.assertEqual(methods(h.get("Access-Control-Allow-Methods")), {"GET", "HEAD", "POST"}, h)

    def test_disallowed_origin_gets_a_plain_options_answer(self):
        for origin in (EVIL, "null", APP + ":443", "http://app.example"):
            with self.subTest(origin=origin):
                st, h, _ = preflight("/songs", "POST", origin=origin, request_headers="content-type")
                self.assertEqual(st, 204, h)
                self.assertNoCors(h)
                self.assertEqual(methods(h.get("Allow")), {"GET", "HEAD", "POST", "OPTIONS"}, h)

    def test_options_without_request_method_keeps_its_answer(self):
        st, h, _ = request(SRV["main"].port, "OPTIONS", "/songs", headers={"Origin": APP})
        self.assertEqual(st, 204, h)
        self.assertEqual(methods(h.get("Allow")), {"GET", "HEAD", "POST", "OPTIONS"}, h)
        self.assertIsNone(h.get("Access-Control-Allow-Methods"), h)
        self.assertIsNone(h.get("Access-Control-Max-Age"), h)


class Responses(CorsTestCase):

    def test_json(self):
        st, h, j = call("GET", "/songs?limit=1", origin=APP)
        self.assertEqual(st, 200, j)
        self.assertIsNotNone(h.get("X-Total-Count"))
        self.assertCors(h)

    def test_origin_case_is_ignored(self):
        st, h, _ = call("GET", "/songs?limit=1", origin="HTTPS://APP.example")
        self.assertEqual(st, 200)
        self.assertCors(h, origin="HTTPS://APP.example")

    def test_errors(self):
        st, h, j = call("GET", "/songs/nothing-here", origin=APP)
        self.assertEqual(st, 404, j)
        self.assertCors(h)
        st, h, j = request(SRV["main"].port, "DELETE", "/songs", headers={"Origin": APP})
        self.assertEqual(st, 405, j)
        self.assertCors(h)
        st, h, j = request(SRV["main"].port, "POST", "/songs", {"title": "x"}, headers={"Origin": APP})
        self.assertEqual(st, 401, j)
        self.assertCors(h)

    def test_not_modified(self):
        st, h, _ = request(SRV["main"].port, "GET", "/openapi.json", headers={"Origin": APP})
        self.assertEqual(st, 200)
        etag = h.get("ETag")
        self.assertTrue(etag)
        st, h, _ = request(SRV["main"].port, "GET", "/openapi.json",
                           headers={"Origin": APP, "If-None-Match": etag})
        self.assertEqual(st, 304)
        self.assertCors(h)

    def test_stream_range(self):
        st, h, _ = call("GET", "/songs/%s/stream" % SONG, headers={"Range": "bytes=0-9"}, origin=APP)
        self.assertEqual(st, 206, h)
        self.assertTrue(h.get("Content-Range", "").startswith("bytes 0-9/"), h)
        self.assertCors(h)

    def test_upload(self):
        song = new_song()
        st, h, j = call("PUT", "/songs/%s/audio" % song, wav(), {"Content-Type": "audio/wav"}, origin=APP)
        self.assertEqual(st, 201, j)
        self.assertCors(h)
        # Turned away by the gate before the body is read.
        st, h, j = request(SRV["main"].port, "PUT", "/songs/%s/audio" % song, wav(),
                           headers={"Content-Type": "audio/wav", "Origin": APP})
        self.assertEqual(st, 401, j)
        self.assertCors(h)

    def test_disallowed_origin_gets_none(self):
        for origin in (EVIL, BACKEND_APP):
            with self.subTest(origin=origin):
                st, h, _ = call("GET", "/songs?limit=1", origin=origin)
                self.assertEqual(st, 200)
                self.assertNoCors(h)
                self.assertIn("Origin", h.get("Vary", ""))
        st, h, _ = call("GET", "/songs?limit=1")
        self.assertNoCors(h)


class Cookies(CorsTestCase):

    def cookie_login(self, server="main", origin=APP):
        st, h, j = request(SRV[server].port, "POST", "/authentications?cookie=1",
                           {"username": U["artist"]["username"], "password": "secret-password-1"},
                           headers={"Origin": origin})
        return st, h, j

    def test_cookie_request_from_an_allowed_origin_passes_the_origin_check(self):
        st, h, j = self.cookie_login()
        self.assertEqual(st, 201, j)
        self.assertCors(h)
        cookie = "staccato_access=" + j["data"]["accessToken"]
        for c in h.get_all("Set-Cookie"):
            self.assertIn("SameSite=Lax", c)
        st, h, j = request(SRV["main"].port, "POST", "/playlists", {"name": uniq("Pl ")},
                           headers={"Cookie": cookie, "Origin": APP})
        self.assertEqual(st, 201, j)
        self.assertCors(h)
        st, h, j = request(SRV["main"].port, "POST", "/playlists", {"name": uniq("Pl ")},
                           headers={"Cookie": cookie, "Origin": EVIL})
        self.assertEqual(st, 403, j)
        self.assertNoCors(h)

    def test_cookie_login_from_a_disallowed_origin_is_refused(self):
        st, _, j = self.cookie_login(origin=EVIL)
        self.assertEqual(st, 403, j)

    def test_star_trusts_no_origin_with_cookies(self):
        st, _, j = self.cookie_login(server="star", origin=EVIL)
        self.assertEqual(st, 403, j)

    def test_backend_fallback_and_samesite_none(self):
        st, h, j = self.cookie_login(server="backend", origin=BACKEND_APP)
        self.assertEqual(st, 201, j)
        self.assertCors(h, origin=BACKEND_APP)
        cookies = h.get_all("Set-Cookie")
        self.assertEqual(len(cookies), 2, h)
        for c in cookies:
            self.assertIn("; Secure", c)
            self.assertIn("SameSite=None", c)
        st, h, _ = preflight("/songs", "POST", origin=BACKEND_APP, server="backend")
        self.assertEqual(st, 204)
        self.assertEqual(methods(h.get("Access-Control-Allow-Methods")), {"GET", "HEAD", "POST"}, h)
        st, h, _ = call("GET", "/songs?limit=1", server="backend", origin=APP)
        self.assertNoCors(h)


class Star(CorsTestCase):

    def test_any_origin_without_credentials(self):
        for origin in (EVIL, APP):
            with self.subTest(origin=origin):
                st, h, _ = call("GET", "/songs?limit=1", server="star", origin=origin)
                self.assertEqual(st, 200)
                self.assertCors(h, origin="*", credentials=False)
        st, h, _ = preflight("/songs", "POST", origin=EVIL, server="star", request_headers="content-type")
        self.assertEqual(st, 204)
        self.assertEqual(h.get("Access-Control-Allow-Origin"), "*")
        self.assertIsNone(h.get("Access-Control-Allow-Credentials"))
        self.assertEqual(h.get("Access-Control-Max-Age"), "60")
        self.assertEqual(h.get("Access-Control-Allow-Headers"), "Content-Type")


class Off(CorsTestCase):

    def test_no_origins_no_cors_headers(self):
        st, h, _ = call("GET", "/songs?limit=1", server="off", origin=APP)
        self.assertEqual(st, 200)
        self.assertNoCors(h)
        self.assertIsNone(h.get("Vary"), h)
        st, h, _ = preflight("/songs", "POST", server="off", request_headers="content-type")
        self.assertEqual(st, 204)
        self.assertNoCors(h)
        self.assertEqual(methods(h.get("Allow")), {"GET", "HEAD", "POST", "OPTIONS"}, h)


class Settings(unittest.TestCase):

    def test_bad_origins_exit_2_with_one_line(self):
        for name, value in (("STACCATO_CORS_ORIGINS", "https://app.example/"),
                            ("STACCATO_CORS_ORIGINS", "app.example"),
                            ("STACCATO_CORS_ORIGINS", "https://app.example/path"),
                            ("STACCATO_CORS_ORIGINS", "https://app.example:99999"),
                            ("STACCATO_CORS_ORIGINS", "*, https://app.example"),
                            ("BACKEND_CORS_ORIGINS", "https://"),
                            ("STACCATO_COOKIE_ORIGINS", "*")):
            with self.subTest(name=name, value=value):
                rc, out, err = harness.run_cli([], env_overrides=dict(harness.SCRUB, **{name: value}))
                self.assertEqual(rc, 2, err)
                lines = err.strip().splitlines()
                self.assertEqual(len(lines), 1, err)
                self.assertIn(name, lines[0])

    def test_samesite_none_needs_explicit_origins(self):
        for origins in ("", "*"):
            with self.subTest(origins=origins):
                rc, _, err = harness.run_cli([], env_overrides=dict(harness.SCRUB, STACCATO_COOKIE_SAMESITE="none",
                                                                    STACCATO_CORS_ORIGINS=origins))
                self.assertEqual(rc, 2, err)
                self.assertIn("STACCATO_COOKIE_SAMESITE", err)

    def test_help_says_star_has_no_credentials(self):
        rc, out, _ = harness.run_cli(["--help"])
        self.assertEqual(rc, 0)
        self.assertIn("STACCATO_CORS_ORIGINS", out)
        self.assertIn("without credentials", out)


class Browser(CorsTestCase):

    @unittest.skipUnless(os.path.exists(CHROMIUM), "Chromium is not installed (deps/install.sh test installs it)")
    def test_pages_on_other_origins(self):
        self.assertTrue(os.path.isdir(PLAYWRIGHT), "playwright-core is not installed in tests/web/node_modules: "
                                                   "run deps/install.sh test")
        srv = SRV["main"]
        api = ("https://127.0.0.1:%d" % srv.tls_port) if srv.tls else ("http://127.0.0.1:%d" % srv.http_port)
        config = {"api": api, "allowed": page_origin("allowed") + "/", "denied": page_origin("denied") + "/",
                  "token": U["artist"]["token"], "song": SONG, "upload_song": new_song(),
                  "wav_base64": base64.b64encode(wav()).decode(), "chromium": CHROMIUM, "timeout_ms": 60000}
        p = subprocess.run(["node", BROWSER_SCRIPT, json.dumps(config)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, "cors_browser.js failed:\n%s\n%s" % (err, p.stdout[-2000:]))
        result = json.loads(p.stdout.decode("utf-8").strip().splitlines()[-1])
        allowed = result["allowed"]
        self.assertEqual(allowed["json"]["status"], 200, result)
        self.assertEqual(allowed["json"]["body"]["status"], "success", result)
        self.assertIsNotNone(allowed["json"]["total"], "X-Total-Count is not readable: %r" % result)
        self.assertEqual(allowed["range"]["status"], 206, result)
        self.assertEqual(allowed["range"]["length"], 10, result)
        self.assertTrue((allowed["range"]["contentRange"] or "").startswith("bytes 0-9/"), result)
        self.assertEqual(allowed["range"]["acceptRanges"], "bytes", result)
        self.assertEqual(allowed["upload"]["status"], 201, result)
        self.assertEqual(result["denied"]["json"]["rejected"], True, result)


if __name__ == "__main__":
    harness.main()
