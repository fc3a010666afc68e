#!/usr/bin/env python3
"""The API documentation pages: GET /docs (Swagger UI) and GET /redoc (Redoc), both over GET /openapi.json, and
their assets at GET /docs/assets/{name} (src/api/docs.c).

Over sockets: the pages (HTML, their Content-Security-Policy, no-cache) link each asset with its version; the
assets have the right Content-Type, the bytes of the installed file, ETag and Last-Modified, a year of caching
for the version the page links and an hour otherwise; If-None-Match and If-Modified-Since give 304, a failing
If-Match 412; HEAD has GET's headers. Names off the list and path tricks (.., encoded slashes, a file of the
packages that is not listed) are 404 JSON and never a file. With STACCATO_DOCS_ASSETS naming an empty directory
the pages and their files are 503 JSON that say how to install them, while /openapi.json still answers.

In a real browser (Debian's Chromium driven by playwright-core, tests/web/docs_browser.js): Swagger UI renders
the GET /health operation, "Try it out" and "Execute" show status 200 and the body; Redoc renders the heading of
GET /health; neither page breaks its Content-Security-Policy, except for the one image Redoc loads from its
vendor's site, which the policy blocks on purpose (Redoc hides it) so that the page makes no third-party request.
The browser part is skipped when Chromium is not installed (deps/install.sh test installs it).

SC_SAVE_SCREENSHOT=1 saves the Swagger UI page after the request as docs/images/docs.png (the README's
picture); otherwise the screenshot goes to a temp directory.

The assets are the ones deps/install.sh docs installed (deps/web/node_modules, or SC_DOCS_ASSETS). The servers
need no database: none of these routes touches it.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ASSETS = os.path.abspath(os.environ.get("SC_DOCS_ASSETS")
                         or os.path.join(harness.REPO_ROOT, "deps", "web", "node_modules"))
BROWSER_SCRIPT = os.path.join(harness.REPO_ROOT, "tests", "web", "docs_browser.js")
PLAYWRIGHT = os.path.join(harness.REPO_ROOT, "tests", "web", "node_modules", "playwright-core")
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = os.path.join(harness.REPO_ROOT, "docs", "images", "docs.png")
BROWSER_TIMEOUT_S = 180

JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
MAP = "application/json; charset=utf-8"
PNG = "image/png"
HTML = "text/html; charset=utf-8"
VERSIONED_CACHE = "public, max-age=31536000, immutable"
UNVERSIONED_CACHE = "public, max-age=3600"

# name -> (file under the assets directory, Content-Type); the list of src/api/docs.c.
FILES = {
    "swagger-ui-bundle.js": ("swagger-ui-dist/swagger-ui-bundle.js", JS),
    "swagger-ui-bundle.js.map": ("swagger-ui-dist/swagger-ui-bundle.js.map", MAP),
    "swagger-ui.css": ("swagger-ui-dist/swagger-ui.css", CSS),
    "swagger-ui.css.map": ("swagger-ui-dist/swagger-ui.css.map", MAP),
    "favicon-16x16.png": ("swagger-ui-dist/favicon-16x16.png", PNG),
    "favicon-32x32.png": ("swagger-ui-dist/favicon-32x32.png", PNG),
    "redoc.standalone.js": ("redoc/bundles/redoc.standalone.js", JS),
    "redoc.standalone.js.map": ("redoc/bundles/redoc.standalone.js.map", MAP),
}
BUILT_IN = "swagger-init.js"

# The one CSP violation allowed: Redoc's vendor logo from its CDN, blocked on purpose.
ALLOWED_VIOLATION = re.compile(r"^redoc: img-src https://cdn\.redoc\.ly/")


def links(html):
    """The asset links of a page: name -> version."""
    return dict(re.findall(r'(?:href|src)="docs/assets/([A-Za-z0-9._-]+)\?v=([0-9a-f-]+)"', html))


class DocsTest(harness.SharedServerCase):
    ENV = {"STACCATO_DOCS_ASSETS": ASSETS}

    @classmethod
    def setUpClass(cls):
        missing = [rel for rel, _ in FILES.values() if not os.path.isfile(os.path.join(ASSETS, rel))]
        if missing:
            raise AssertionError("documentation assets missing under %s (%s): run deps/install.sh docs"
                                 % (ASSETS, ", ".join(missing)))
        super().setUpClass()

    def get(self, path, headers=None, method="GET"):
        c = self.conn()
        return c.request(method, path, headers=headers)

    def page(self, path):
        r = self.get(path)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-type"), HTML)
        self.assertEqual(r.header("cache-control"), "no-cache")
        self.assertEqual(r.header("x-content-type-options"), "nosniff")
        csp = r.header("content-security-policy", "")
        directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
        self.assertEqual(directives.get("default-src"), ["'none'"], csp)
        self.assertEqual(directives.get("script-src"), ["'self'"], "no inline or foreign script: %s" % csp)
        self.assertEqual(directives.get("connect-src"), ["'self'"], csp)
        self.assertEqual(directives.get("frame-ancestors"), ["'none'"], csp)
        return r.text()

    # -- pages ------------------------------------------------------------
    def test_swagger_page_links_each_asset_with_its_version(self):
        html = self.page("/docs")
        self.assertIn('<div id="swagger-ui"></div>', html)
        self.assertNotRegex(html, r"<script>|<script [^>]*>[^<]", "no inline script")
        found = links(html)
        self.assertEqual(set(found), {"swagger-ui.css", "favicon-32x32.png", "swagger-ui-bundle.js", BUILT_IN})
        for name, version in found.items():
            r = self.get("/docs/assets/%s?v=%s" % (name, version))
            self.assertEqual(r.status, 200, (name, r))
            self.assertEqual(r.header("etag"), '"%s"' % version, name)
            self.assertEqual(r.header("cache-control"), VERSIONED_CACHE, name)

    def test_redoc_page_links_its_bundle(self):
        html = self.page("/redoc")
        self.assertIn('<redoc spec-url="openapi.json"></redoc>', html)
        self.assertNotRegex(html, r"<script>|<script [^>]*>[^<]", "no inline script")
        found = links(html)
        self.assertEqual(set(found), {"redoc.standalone.js"})
        r = self.get("/docs/assets/redoc.standalone.js?v=" + found["redoc.standalone.js"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("cache-control"), VERSIONED_CACHE)

    def test_head_of_a_page(self):
        get, head = self.get("/redoc"), self.get("/redoc", method="HEAD")
        self.assertEqual(head.status, 200, head)
        self.assertEqual(head.body, b"")
        self.assertEqual(head.header("content-length"), get.header("content-length"))

    # -- assets -----------------------------------------------------------
    def test_each_asset_is_its_file_with_its_type(self):
        for name, (rel, ctype) in FILES.items():
            with self.subTest(name=name):
                with open(os.path.join(ASSETS, rel), "rb") as f:
                    data = f.read()
                r = self.get("/docs/assets/" + name)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header("content-type"), ctype)
                self.assertEqual(r.header("content-length"), str(len(data)))
                self.assertTrue(r.body == data, "the body is not the file's bytes")
                self.assertEqual(r.header("x-content-type-options"), "nosniff")
                self.assertRegex(r.header("etag", ""), r'^"[0-9a-f]+-[0-9a-f]+"$')
                self.assertRegex(r.header("last-modified", ""), r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
                                                                 r"\d\d:\d\d:\d\d GMT$")
                self.assertEqual(r.header("cache-control"), UNVERSIONED_CACHE, "no ?v=: an hour")
                if ctype == MAP:
                    self.assertIn("mappings", json.loads(data))

    def test_built_in_script(self):
        r = self.get("/docs/assets/" + BUILT_IN)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-type"), JS)
        self.assertIn(b"SwaggerUIBundle(", r.body)
        self.assertIn(b'url: "openapi.json"', r.body)
        again = self.get("/docs/assets/" + BUILT_IN, headers={"If-None-Match": r.header("etag")})
        self.assertEqual(again.status, 304, again)

    def test_second_request_with_if_none_match_is_304(self):
        first = self.get("/docs/assets/swagger-ui.css")
        etag = first.header("etag")
        r = self.get("/docs/assets/swagger-ui.css", headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("etag"), etag)
        self.assertEqual(r.header("cache-control"), UNVERSIONED_CACHE)
        self.assertEqual(self.get("/docs/assets/swagger-ui.css", headers={"If-None-Match": '"other"'}).status, 200)

    def test_if_modified_since_and_if_match(self):
        first = self.get("/docs/assets/favicon-16x16.png")
        r = self.get("/docs/assets/favicon-16x16.png",
                     headers={"If-Modified-Since": first.header("last-modified")})
        self.assertEqual(r.status, 304, r)
        r = self.get("/docs/assets/favicon-16x16.png", headers={"If-Match": '"other"'})
        self.assertJsonError(r, 412)
        r = self.get("/docs/assets/favicon-16x16.png", headers={"If-Match": first.header("etag")})
        self.assertEqual(r.status, 200, r)

    def test_a_version_that_is_not_current_is_cached_an_hour(self):
        r = self.get("/docs/assets/swagger-ui.css?v=1-1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("cache-control"), UNVERSIONED_CACHE)

    def test_head_of_an_asset(self):
        get = self.get("/docs/assets/swagger-ui.css")
        head = self.get("/docs/assets/swagger-ui.css", method="HEAD")
        self.assertEqual(head.status, 200, head)
        self.assertEqual(head.body, b"")
        for h in ("content-type", "content-length", "etag", "last-modified", "cache-control"):
            self.assertEqual(head.header(h), get.header(h), h)

    def test_unknown_asset_is_404_json(self):
        for name in ("nope.js", "index.html", "swagger-initializer.js", "package.json", "SWAGGER-UI.CSS",
                     "swagger-ui.css.", "%73wagger-ui.css", "swagger-ui.css%00", "x"):
            with self.subTest(name=name):
                self.assertJsonError(self.get("/docs/assets/" + name), 404, "asset not found")

    def test_path_tricks_do_not_escape(self):
        for target in ("/docs/assets/..", "/docs/assets/%2e%2e", "/docs/assets/..%2f..%2f..%2fetc%2fpasswd",
                       "/docs/assets/..%2fswagger-ui-dist%2fpackage.json",
                       "/docs/assets/swagger-ui-dist%2fswagger-ui.css", "/docs/assets/../../../etc/passwd",
                       "/docs/assets/x/../swagger-ui.css", "/docs/assets/./swagger-ui.css",
                       "/docs/assets//etc/passwd", "/docs/assets/swagger-ui.css/", "/docs/assets/",
                       "/docs/assets/%2fetc%2fpasswd", "/docs/../etc/passwd"):
            with self.subTest(target=target):
                r = self.get(target)
                self.assertJsonError(r, 404)
                self.assertNotIn(b"root:", r.body)

    # -- in a browser -----------------------------------------------------
    @unittest.skipUnless(os.path.exists(CHROMIUM), "Chromium is not installed (deps/install.sh test installs it)")
    def test_in_chromium(self):
        self.assertTrue(os.path.isdir(PLAYWRIGHT), "playwright-core is not installed in tests/web/node_modules: "
                                                   "run deps/install.sh test")
        r = self.get("/openapi.json")
        self.assertEqual(r.status, 200, r)
        health = r.json()["paths"]["/health"]["get"]
        title = health.get("summary") or health["operationId"]
        if os.environ.get("SC_SAVE_SCREENSHOT") == "1":
            screenshot = SCREENSHOT
            os.makedirs(os.path.dirname(screenshot), exist_ok=True)
        else:
            tmp = tempfile.mkdtemp(prefix="staccato-docs-")
            self.addCleanup(shutil.rmtree, tmp, True)
            screenshot = os.path.join(tmp, "docs.png")
        if self.srv.tls:
            base = "https://127.0.0.1:%d" % self.srv.tls_port
        else:
            base = "http://127.0.0.1:%d" % self.srv.http_port
        config = {"base": base, "chromium": CHROMIUM, "health_title": title, "screenshot": screenshot,
                  "timeout_ms": 60000}
        p = subprocess.run(["node", BROWSER_SCRIPT, json.dumps(config)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=BROWSER_TIMEOUT_S)
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, "docs_browser.js failed:\n%s\n%s" % (err, p.stdout[-2000:]))
        result = json.loads(p.stdout.decode("utf-8").strip().splitlines()[-1])

        self.assertEqual(result["swagger"]["status"], "200", result)
        self.assertEqual(json.loads(result["swagger"]["body"]),
                         {"status": "success", "data": {"status": "ok"}}, result)
        self.assertEqual(result["redoc"]["heading"], title, result)
        self.assertEqual(result["errors"], [], "uncaught errors in the pages")
        violations = [v for v in result["violations"] if not ALLOWED_VIOLATION.match(v)]
        self.assertEqual(violations, [], "the pages break their Content-Security-Policy")
        with open(screenshot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG")


class MissingAssetsTest(harness.ServerTestCase):
    """STACCATO_DOCS_ASSETS names an empty directory."""

    def test_pages_are_503_saying_how_to_install(self):
        empty = tempfile.mkdtemp(prefix="staccato-docs-empty-")
        self.addCleanup(shutil.rmtree, empty, True)
        srv = self.start_server(env={"STACCATO_DOCS_ASSETS": empty})
        for path in ("/docs", "/redoc", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/redoc.standalone.js"):
            with self.subTest(path=path):
                r = srv.get(path)
                j = self.assertJsonError(r, 503)
                self.assertIn("deps/install.sh", j["message"])
                self.assertEqual(r.header("cache-control"), "no-store")
        self.assertJsonError(srv.get("/docs/assets/nope.js"), 404, "asset not found")
        self.assertEqual(srv.get("/docs/assets/" + BUILT_IN).status, 200, "the built-in script needs no install")
        r = srv.get("/openapi.json")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["openapi"][:2], "3.")
        self.assertEqual(srv.get("/health").status, 200)


if __name__ == "__main__":
    harness.main()
