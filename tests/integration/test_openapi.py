#!/usr/bin/env python3
"""GET /openapi.json: the OpenAPI 3.1 document the route table generates.

The served document is the one `staccato openapi` prints for the same settings; it is a valid OpenAPI 3.1 document;
its operations are exactly the server's routes (as /_debug/routes lists them: a route without a description, or a
description without a route, fails here and in the unit test); it is revalidated with its ETag; HEAD works."""

import json
import subprocess
import unittest

import harness

try:
    from openapi_spec_validator import validate as validate_spec
except ImportError:  # pragma: no cover - the image has it
    validate_spec = None


class OpenAPIDocument(harness.SharedServerCase):
    def fetch(self, headers=None, method="GET"):
        c = self.conn()
        return c.request(method, "/openapi.json", headers=headers)

    def test_served_document_is_the_printed_one(self):
        r = self.fetch()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/json; charset=utf-8")
        served = r.json()
        out = subprocess.run([harness.server_bin(), "openapi"], env=harness.clean_env(), capture_output=True,
                             timeout=10, check=True)
        self.assertEqual(json.loads(out.stdout), served)
        self.assertEqual(served["openapi"], "3.1.0")
        self.assertTrue(served["info"]["version"])

    def test_valid_openapi_31(self):
        if validate_spec is None:
            self.skipTest("openapi_spec_validator is not installed")
        validate_spec(self.fetch().json())

    def test_operations_are_the_routes(self):
        doc = self.fetch().json()
        c = self.conn()
        r = c.request("GET", "/_debug/routes")
        self.assertEqual(r.status, 200)
        routes = {(x["method"].lower(), x["pattern"]) for x in r.json()["data"]["routes"] if x["method"] != "HEAD"}
        documented = {(m, p) for p, item in doc["paths"].items() for m in item
                      if m in ("get", "put", "post", "delete", "patch", "options")}
        self.assertEqual(documented - routes, set(), "documented but not routed")
        self.assertEqual(routes - documented, set(), "routed but not documented")
        ids = [op["operationId"] for item in doc["paths"].values() for m, op in item.items() if m != "parameters"]
        self.assertEqual(len(ids), len(set(ids)))

    def test_access_levels_become_security(self):
        doc = self.fetch().json()
        c = self.conn()
        access = {(x["method"].lower(), x["pattern"]): x["access"]
                  for x in c.request("GET", "/_debug/routes").json()["data"]["routes"]}
        for (m, p), level in access.items():
            if m == "head":
                continue
            op = doc["paths"][p][m]
            with self.subTest(method=m, path=p):
                if level in ("user", "admin"):
                    self.assertNotIn({}, op["security"])
                    self.assertIn("401", op["responses"])
                if level == "admin" or (level in ("user", "optional") and m != "get"):
                    self.assertIn("403", op["responses"])
                elif level == "optional":
                    self.assertIn({}, op["security"])
                for status in ("500", "503"):
                    self.assertIn(status, op["responses"])

    def test_etag_revalidation_and_head(self):
        r = self.fetch()
        etag = r.header("etag")
        self.assertTrue(etag and etag.startswith('"'))
        self.assertEqual(r.header("cache-control"), "no-cache")
        r2 = self.fetch(headers=[("If-None-Match", etag)])
        self.assertEqual(r2.status, 304)
        self.assertEqual(r2.body, b"")
        self.assertEqual(r2.header("etag"), etag)
        self.assertEqual(self.fetch(headers=[("If-None-Match", '"other"')]).status, 200)
        h = self.fetch(method="HEAD")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.body, b"")
        self.assertEqual(int(h.header("content-length")), len(r.body))


class WithoutDebugRoutes(harness.SharedServerCase):
    ENV = {"STACCATO_DEBUG_ROUTES": "0"}

    def test_debug_routes_are_not_described(self):
        c = self.conn()
        doc = c.request("GET", "/openapi.json").json()
        self.assertFalse([p for p in doc["paths"] if p.startswith("/_debug")])
        self.assertIn("/health", doc["paths"])


if __name__ == "__main__":
    harness.main()
