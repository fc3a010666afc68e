"""The OpenAPI response checker (openapi_check.py) and its hook in the harness, without the server: a small inline
document, synthetic responses, and a loopback peer that answers with canned bytes. Each check is shown to pass a
good response and to catch a bad one, so that the checker cannot pass everything unnoticed."""

import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import openapi_check  # noqa: E402
from openapi_check import Mismatch  # noqa: E402

JSON = [("Content-Type", "application/json; charset=utf-8")]

ERROR = {"$ref": "#/components/responses/Error"}
DOC = {
    "openapi": "3.1.0",
    "info": {"title": "sample", "version": "1"},
    "paths": {
        "/health": {
            "get": {"responses": {
                "200": {"description": "up", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status"], "additionalProperties": False,
                    "properties": {"status": {"const": "ok"}}}}}},
                "4XX": ERROR,
                "429": {"description": "slow down", "headers": {
                    "Retry-After": {"required": True, "schema": {"type": "integer"}},
                    "X-Optional": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            }},
        },
        "/users": {
            "post": {"responses": {
                "201": {"description": "created", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status", "data"], "properties": {
                        "status": {"const": "success"},
                        "data": {"type": "object", "required": ["userId"],
                                 "properties": {"userId": {"$ref": "#/components/schemas/Id"}}}}}}}},
                "400": ERROR,
            }},
        },
        "/users/me": {"get": {"responses": {"200": {"description": "me", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/User"}}}}}}},
        "/users/{id}": {"get": {"responses": {"200": {"description": "a user", "content": {
            "application/json": {"schema": {"type": "object", "required": ["id"],
                                            "properties": {"id": {"$ref": "#/components/schemas/Id"}}}}}},
            "default": ERROR}},
            "delete": {"responses": {"204": {"description": "gone"}}}},
        "/songs/{id}/stream": {"get": {"responses": {
            "200": {"description": "audio", "content": {"audio/*": {}}},
            "206": {"description": "a range", "headers": {"Content-Range": {"required": True, "schema": {
                "type": "string"}}}, "content": {"audio/*": {}, "multipart/byteranges": {}}},
            "304": {"description": "not modified"},
        }}},
        "/tree": {"get": {"responses": {"200": {"description": "a recursive schema", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}},
        "/me-too": {"get": {"responses": {"200": {"description": "a $ref beside other keywords", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/User", "required": ["fullname"],
                                            "description": "a user with a name"}}}}}}},
        "/files/{name}.txt": {"get": {"responses": {"200": {"description": "text", "content": {
            "text/plain": {"schema": {"type": "string"}}}}}}},
    },
    "components": {
        "schemas": {
            "Id": {"type": "string", "minLength": 1},
            "User": {"type": "object", "required": ["id", "username"], "properties": {
                "id": {"$ref": "#/components/schemas/Id"}, "username": {"type": "string"},
                "fullname": {"type": ["string", "null"]}}},
            "Node": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}},
            "Error": {"type": "object", "required": ["status", "message"], "properties": {
                "status": {"enum": ["fail", "error"]}, "message": {"type": "string", "minLength": 1}}},
        },
        "responses": {
            "Error": {"description": "an error", "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Error"}}}},
        },
    },
}

ERR_BODY = b'{"status":"fail","message":"nope"}'


class CheckerCase(unittest.TestCase):
    def setUp(self):
        self.c = openapi_check.Checker(DOC)

    def ok(self, method, target, status, headers=(), body=b""):
        self.c.check(method, target, status, list(headers), body)

    def bad(self, check, method, target, status, headers=(), body=b"", contains=()):
        with self.assertRaises(Mismatch) as cm:
            self.c.check(method, target, status, list(headers), body)
        msg = str(cm.exception)
        self.assertIn("[%s]" % check, msg)
        self.assertIn("%s %s -> %d" % (method.upper(), target, status), msg)
        for part in contains:
            self.assertIn(part, msg)
        return msg


class RouteTests(CheckerCase):
    def test_path_matching(self):
        m = self.c.match_path
        self.assertEqual(m("/health"), "/health")
        self.assertEqual(m("/users/me"), "/users/me")        # the literal wins over /users/{id}
        self.assertEqual(m("/users/abc"), "/users/{id}")
        self.assertEqual(m("/users/me%20x"), "/users/{id}")
        self.assertIsNone(m("/users/"))                       # {x} is one non-empty segment
        self.assertIsNone(m("/users/a/b"))
        self.assertIsNone(m("/nowhere"))
        self.assertIsNone(m("/health/"))
        self.assertEqual(m("/songs/x/stream"), "/songs/{id}/stream")
        self.assertEqual(m("/files/a.txt"), "/files/{name}.txt")
        self.assertIsNone(m("/files/a.mp3"))
        self.assertEqual(openapi_check.path_of("/users/abc?x=1#f"), "/users/abc")
        with self.assertRaises(Mismatch) as cm:                  # a long target is cut in the message
            self.ok("GET", "/health?pad=" + "a" * 5000, 302)
        self.assertIn("[status] GET /health?pad=aaa", str(cm.exception))
        self.assertLess(len(str(cm.exception)), 1000)
        self.assertEqual(openapi_check.path_of("http://h:1/health?q"), "/health")
        self.assertIsNone(openapi_check.path_of("*"))

    def test_method_picks_the_template(self):
        self.assertEqual(self.c.find("DELETE", "/users/me")[0], "/users/{id}")   # /users/me has no DELETE
        self.assertEqual(self.c.find("GET", "/users/me")[0], "/users/me")
        self.assertEqual(self.c.find("HEAD", "/users/me")[0], "/users/me")
        self.assertEqual(self.c.find("PUT", "/users/me"), ("/users/me", None))
        self.assertEqual(self.c.find("GET", "/nowhere"), (None, None))
        self.ok("DELETE", "/users/me", 204)

    def test_query_is_not_part_of_the_path(self):
        self.ok("GET", "/health?verbose=1", 200, JSON, b'{"status":"ok"}')

    def test_unknown_path_must_be_an_error(self):
        self.ok("GET", "/nowhere", 404, JSON, ERR_BODY)
        self.ok("GET", "/users/", 404, JSON, ERR_BODY)
        self.ok("GET", "/nowhere", 503, JSON, b'{"status":"error","message":"busy"}')
        self.ok("HEAD", "/nowhere", 404, JSON)
        self.bad("route", "GET", "/nowhere", 200, JSON, b'{"status":"ok"}', ["no path template"])
        self.bad("route", "GET", "/nowhere", 404, [("Content-Type", "text/html")], b"<h1>no</h1>", ["not JSON"])
        self.bad("route", "GET", "/nowhere", 404, JSON, b'{"status":"error","message":"x"}', ['"fail"'])
        self.bad("route", "GET", "/nowhere", 404, JSON, b'{"status":"fail"}', ["no message"])
        self.bad("route", "GET", "/nowhere", 404, JSON, b"not json", ["not JSON"])
        self.bad("route", "HEAD", "/nowhere", 200)

    def test_unknown_method_must_be_an_error(self):
        self.ok("PATCH", "/health", 405, JSON + [("Allow", "GET, HEAD, OPTIONS")], ERR_BODY)
        self.bad("route", "POST", "/health", 200, JSON, b'{"status":"ok"}', ["POST is not an operation of /health"])
        self.ok("OPTIONS", "/health", 204, [("Allow", "GET, HEAD, OPTIONS")])
        self.bad("route", "OPTIONS", "/nowhere", 204)

    def test_head_is_checked_against_get(self):
        self.ok("HEAD", "/health", 200, JSON + [("Content-Length", "15")])
        self.ok("HEAD", "/health", 200)
        self.bad("status", "HEAD", "/health", 500, JSON, contains=["operation GET /health"])
        self.bad("content", "HEAD", "/health", 200, [("Content-Type", "text/plain")])
        self.bad("headers", "HEAD", "/health", 429, JSON, contains=["Retry-After"])

    def test_interim_and_pathless_targets_are_not_checked(self):
        self.ok("GET", "/nowhere", 100)
        self.ok("OPTIONS", "*", 200, [("Content-Type", "text/plain")], b"whatever")


class RedirectTests(CheckerCase):
    def test_https_redirect_is_right_for_any_request(self):
        loc = [("Location", "https://h:8443/x")]
        self.ok("GET", "/nowhere", 308, JSON + loc, b'{"status":"fail","message":"use HTTPS"}')
        self.ok("GET", "/users/abc", 308, JSON + loc, b'{"status":"fail","message":"use HTTPS"}')
        self.ok("POST", "/health", 301, loc)
        self.bad("route", "GET", "/nowhere", 308, JSON, ERR_BODY, ["the status is 308"])
        self.bad("route", "GET", "/nowhere", 308, JSON + [("Location", "http://h/x")], ERR_BODY)
        self.bad("status", "GET", "/health", 302, [("Location", "/elsewhere")])


class StatusTests(CheckerCase):
    def test_documented_codes_ranges_and_default(self):
        self.ok("GET", "/health", 200, JSON, b'{"status":"ok"}')
        self.ok("GET", "/health", 404, JSON, ERR_BODY)                     # "4XX"
        self.ok("GET", "/users/abc", 500, JSON, b'{"status":"error","message":"boom"}')   # "default"
        self.ok("DELETE", "/users/abc", 204)

    def test_undocumented_status(self):
        msg = self.bad("status", "GET", "/health", 503, JSON, b'{"status":"error","message":"x"}',
                       ["status 503 is not documented", "200, 429, 4XX"])
        self.assertIn("body: b'{\"status\":\"error\"", msg)
        self.bad("status", "POST", "/users", 409, JSON, ERR_BODY)
        self.bad("status", "DELETE", "/users/abc", 200)


class ContentTests(CheckerCase):
    def test_media_type_must_be_documented(self):
        self.ok("GET", "/health", 200, [("Content-Type", "Application/JSON ; charset=utf-8")], b'{"status":"ok"}')
        self.bad("content", "GET", "/health", 200, [("Content-Type", "text/plain")], b"ok",
                 ["'text/plain' is not documented", "application/json"])

    def test_media_ranges(self):
        self.ok("GET", "/songs/s1/stream", 200, [("Content-Type", "audio/mpeg")], b"\xff\xfb\x90\x00")
        self.ok("GET", "/songs/s1/stream", 206, [("Content-Type", "multipart/byteranges; boundary=x"),
                                                 ("Content-Range", "bytes 0-1/4")], b"--x\r\n...")
        self.bad("content", "GET", "/songs/s1/stream", 200, [("Content-Type", "image/png")], b"\x89PNG")

    def test_body_for_a_status_without_content(self):
        self.ok("GET", "/songs/s1/stream", 304, [("ETag", '"x"')])
        self.bad("content", "GET", "/songs/s1/stream", 304, JSON, ERR_BODY, ["documented without content"])
        self.bad("content", "DELETE", "/users/abc", 204, [], b"x")

    def test_body_without_content_type(self):
        self.bad("content", "GET", "/health", 200, [], b'{"status":"ok"}', ["no Content-Type"])
        self.bad("content", "GET", "/health", 200, [], b"", ["no body and no Content-Type"])

    def test_binary_bodies_are_not_validated(self):
        self.ok("GET", "/songs/s1/stream", 200, [("Content-Type", "audio/flac")], b"\x00\x01 not json at all")


class SchemaTests(CheckerCase):
    def test_inline_schema(self):
        self.ok("GET", "/health", 200, JSON, b'{"status":"ok"}')
        msg = self.bad("schema", "GET", "/health", 200, JSON, b'{"status":"down"}', ["$.status", "'ok' was expected"])
        self.assertIn("properties/status/const", msg)
        self.bad("schema", "GET", "/health", 200, JSON, b'{"status":"ok","extra":1}', ["extra"])

    def test_refs_into_components(self):
        self.ok("POST", "/users", 201, JSON, b'{"status":"success","data":{"userId":"u1"}}')
        self.bad("schema", "POST", "/users", 201, JSON, b'{"status":"success","data":{"userId":""}}',
                 ["$.data.userId", "minLength"])
        self.bad("schema", "POST", "/users", 201, JSON, b'{"status":"success","data":{"userId":7}}',
                 ["$.data.userId", "not of type 'string'"])
        self.ok("GET", "/users/me", 200, JSON, b'{"id":"u1","username":"a","fullname":null}')
        self.bad("schema", "GET", "/users/me", 200, JSON, b'{"id":"u1"}', ["'username' is a required property"])

    def test_response_refs(self):
        self.ok("POST", "/users", 400, JSON, ERR_BODY)
        self.bad("schema", "POST", "/users", 400, JSON, b'{"status":"oops","message":"x"}', ["$.status"])
        self.bad("schema", "POST", "/users", 400, JSON, b'{"status":"fail","message":""}', ["$.message"])

    def test_recursive_schema(self):
        self.ok("GET", "/tree", 200, JSON, b'{"name":"a","children":[{"name":"b","children":[{"name":"c"}]}]}')
        self.bad("schema", "GET", "/tree", 200, JSON, b'{"name":"a","children":[{"name":"b","children":[{}]}]}',
                 ["$.children[0].children[0]", "'name' is a required property"])

    def test_ref_beside_other_keywords(self):
        self.ok("GET", "/me-too", 200, JSON, b'{"id":"u1","username":"a","fullname":"A"}')
        self.bad("schema", "GET", "/me-too", 200, JSON, b'{"id":"u1","username":"a"}', ["'fullname'"])
        self.bad("schema", "GET", "/me-too", 200, JSON, b'{"id":"u1","fullname":"A"}', ["'username'"])

    def test_valid_bodies_are_remembered_and_bad_ones_never(self):
        body = b'{"status":"success","data":{"userId":"u1"}}'
        for _ in range(2):
            self.ok("POST", "/users", 201, JSON, body)
        self.assertEqual(len(self.c._valid), 1)
        for _ in range(2):
            self.bad("schema", "POST", "/users", 201, JSON, b'{"status":"success","data":{}}')

    def test_body_that_is_not_json(self):
        self.bad("schema", "GET", "/health", 200, JSON, b"{status: ok}", ["not JSON"])
        self.bad("schema", "GET", "/health", 200, JSON, b"\xff\xfe", ["not JSON"])

    def test_validators_are_compiled_once(self):
        for _ in range(3):
            self.ok("GET", "/users/me", 200, JSON, b'{"id":"u1","username":"a"}')
            self.ok("GET", "/users/other", 200, JSON, b'{"id":"u1"}')
        self.assertEqual(len(self.c._validators), 2)


class HeaderTests(CheckerCase):
    def test_required_headers(self):
        body = b'{"status":"fail","message":"slow down"}'
        self.ok("GET", "/health", 429, JSON + [("retry-after", "3")], body)
        self.bad("headers", "GET", "/health", 429, JSON + [("X-Optional", "y")], body,
                 ["required response header 'Retry-After' is missing"])
        self.ok("GET", "/songs/s1/stream", 206, [("Content-Type", "audio/mpeg"), ("Content-Range", "bytes 0-0/9")],
                b"\xff")
        self.bad("headers", "GET", "/songs/s1/stream", 206, [("Content-Type", "audio/mpeg")], b"\xff",
                 ["Content-Range"])


class Peer:
    """A loopback peer that answers every connection with the same canned bytes (whatever it is sent) and then
    reads until the client closes."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((harness.LOOPBACK, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with s:
                s.settimeout(5)
                try:
                    s.sendall(self.answer)
                    while s.recv(65536):
                        pass
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def response(status, body=b"", headers=(("Content-Type", "application/json"),)):
    head = "HTTP/1.1 %d X\r\n" % status + "".join("%s: %s\r\n" % h for h in headers)
    return head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body


OK = response(200, b'{"status":"ok"}')
WRONG = response(200, b'{"status":"down"}')
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HarnessHookTests(unittest.TestCase):
    """Which responses a Conn checks: the ones to requests it knows, in order, and no others."""

    def setUp(self):
        saved = (harness._CHECKER, harness._CHECKER_STATE, len(harness.MISMATCHES))
        harness._CHECKER, harness._CHECKER_STATE = openapi_check.Checker(DOC), "on"

        def restore():
            harness._CHECKER, harness._CHECKER_STATE = saved[0], saved[1]
            del harness.MISMATCHES[saved[2]:]
        self.addCleanup(restore)

    def conn(self, answer):
        peer = Peer(answer)
        self.addCleanup(peer.close)
        c = harness.Conn(peer.port, tls=False)
        self.addCleanup(c.close)
        return c

    def test_request_is_checked(self):
        self.assertEqual(self.conn(OK).request("GET", "/health").status, 200)
        with self.assertRaises(Mismatch) as cm:
            self.conn(WRONG).request("GET", "/health")
        self.assertIn("[schema] GET /health -> 200", str(cm.exception))
        self.assertEqual(len(harness.MISMATCHES), 1)

    def test_helpers_are_checked(self):
        peer = Peer(WRONG)
        self.addCleanup(peer.close)
        with self.assertRaises(Mismatch):
            harness.request(peer.port, "GET", "/health")
        c = self.conn(OK + WRONG)
        with self.assertRaises(Mismatch) as cm:
            harness.pipeline_all(c, [("GET", "/health"), ("HEAD", "/nowhere")])
        self.assertIn("[route] HEAD /nowhere -> 200", str(cm.exception))

    def test_pipelined_requests_are_matched_in_order(self):
        c = self.conn(OK + response(404, ERR_BODY) + response(201, b'{"status":"success","data":{"userId":"u"}}')
                      + OK)
        c.send(harness.build_request("GET", "/health") + harness.build_request("GET", "/nowhere")
               + harness.build_request("POST", "/users", body=b"{}"))
        self.assertEqual([c.read_response().status for _ in range(3)], [200, 404, 201])
        with self.assertRaises(Mismatch):      # the fourth: a 200 to POST /users is not documented
            c.request("POST", "/users", body=b"{}")

    def test_interim_responses_and_declared_bodies(self):
        c = self.conn(CONTINUE + WRONG)
        c.send(harness.build_request("GET", "/health", [("Content-Length", "4"), ("Expect", "100-continue")]))
        self.assertEqual(c.read_response().status, 100)
        c.send(b"ab")
        c.send(b"cd")                           # the declared body: still the same request
        with self.assertRaises(Mismatch):
            c.read_final_response()
        c = self.conn(WRONG)
        c.send(harness.build_request("POST", "/users", [("Transfer-Encoding", "chunked")])
               + harness.chunked([b"{}"]))
        with self.assertRaises(Mismatch):
            c.read_response()
        c = self.conn(WRONG)
        c.send_slowly(harness.build_request("GET", "/health"), step=7, delay=0)
        with self.assertRaises(Mismatch):
            c.read_response()

    def test_raw_bytes_are_not_known_requests(self):
        seen = len(harness.MISMATCHES)
        c = self.conn(WRONG + WRONG)
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)     # not checked: the harness did not build it
        c.send(harness.build_request("GET", "/health"))
        self.assertEqual(c.read_response().status, 200)     # nor anything after such bytes on the connection
        c = self.conn(WRONG + WRONG)
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + harness.build_request("GET", "/health"))
        c.read_response()
        c.read_response()
        c = self.conn(WRONG + WRONG)
        c.send(harness.build_request("GET", "/health") + b"GET /health HTTP/1.1\r\n\r\n")
        with self.assertRaises(Mismatch):       # the known one before the raw bytes is still checked
            c.read_response()
        c.read_response()
        c = self.conn(WRONG + WRONG)
        c.send(harness.build_request("GET", "/health", [("Content-Length", "2")]))
        c.send(b"abc")                          # more than the declared body: unknown bytes after the request
        with self.assertRaises(Mismatch):
            c.read_response()
        c.send(harness.build_request("GET", "/health"))
        c.read_response()                       # might answer the extra byte: not checked
        c = self.conn(WRONG)
        c.sock.sendall(c.wire(harness.build_request("GET", "/health")))
        c.read_response()
        c = self.conn(WRONG)
        c.send(harness.build_request("GET", "/he alth"))   # not a plain request line
        c.read_response()
        self.assertEqual(len(harness.MISMATCHES), seen + 2)     # only the known requests before raw bytes

    def test_bytes_read_raw_end_the_checks(self):
        c = self.conn(OK + WRONG + WRONG)
        c.send(harness.join_requests([harness.build_request("GET", "/health")] * 3))
        self.assertEqual(c.read_response().status, 200)
        got = b""
        while len(got) < 5:
            got += c.recv_some(5 - len(got))                # the start of the second response, read raw
        self.assertEqual(got, b"HTTP/")
        c.buf[:0] = got
        self.assertEqual(c.read_response().status, 200)     # not checked: which request it answers is unknown
        self.assertEqual(c.read_response().status, 200)

    def test_servers_without_debug_routes_get_their_own_document(self):
        on = harness._debug_routes_on
        self.assertTrue(on(harness.clean_env(), []))
        self.assertFalse(on(harness.clean_env({"STACCATO_DEBUG_ROUTES": None}), []))
        self.assertFalse(on(harness.clean_env({"STACCATO_DEBUG_ROUTES": "0"}), []))
        self.assertFalse(on(harness.clean_env(), ["--debug-routes=off"]))
        self.assertTrue(on(harness.clean_env({"STACCATO_DEBUG_ROUTES": "off"}), ["--debug-routes", "YES"]))
        saved = harness._CHECKER_NO_DEBUG
        no_debug = dict(DOC, paths={k: v for k, v in DOC["paths"].items() if k != "/health"})
        harness._CHECKER_NO_DEBUG = openapi_check.Checker(no_debug)
        peer = Peer(OK)
        self.addCleanup(peer.close)
        harness._NO_DEBUG_PORTS.add(peer.port)
        try:
            with self.assertRaises(Mismatch) as cm, harness.Conn(peer.port, tls=False) as c:
                c.request("GET", "/health")                 # that document has no /health
            self.assertIn("[route]", str(cm.exception))
        finally:
            harness._NO_DEBUG_PORTS.discard(peer.port)
            harness._CHECKER_NO_DEBUG = saved
        with harness.Conn(peer.port, tls=False) as c:
            self.assertEqual(c.request("GET", "/health").status, 200)

    def test_off(self):
        harness._CHECKER, harness._CHECKER_STATE = None, "off"
        self.assertEqual(self.conn(WRONG).request("GET", "/health").status, 200)

    def test_wire_arithmetic(self):
        a, b = harness.build_request("GET", "/a"), harness.build_request("HEAD", "/b")
        self.assertEqual([i[:3] for i in (a + b).items], [("req", "GET", "/a"), ("req", "HEAD", "/b")])
        self.assertEqual(len((a * 3).items), 3)
        self.assertEqual((b"x" + a).items[0], ("raw", 1))
        self.assertEqual(harness.join_requests([a, b]), bytes(a) + bytes(b))
        self.assertNotIsInstance(b"".join([a, b]), harness.Wire)


class LoaderTests(unittest.TestCase):
    def test_binary_without_the_command_turns_the_checks_off(self):
        saved = (harness._CHECKER, harness._CHECKER_STATE, os.environ.get("STACCATO_BIN"),
                 os.environ.pop("SC_OPENAPI_CHECK", None))
        d = harness.tempfile.mkdtemp(prefix="staccato-oa-")
        self.addCleanup(harness.shutil.rmtree, d, True)

        def restore():
            harness._CHECKER, harness._CHECKER_STATE = saved[0], saved[1]
            for name, value in (("STACCATO_BIN", saved[2]), ("SC_OPENAPI_CHECK", saved[3])):
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        self.addCleanup(restore)

        def with_binary(script):
            path = os.path.join(d, "bin%d" % len(os.listdir(d)))
            with open(path, "w") as f:
                f.write("#!/bin/sh\n" + script)
            os.chmod(path, 0o755)
            os.environ["STACCATO_BIN"] = path
            harness._CHECKER, harness._CHECKER_STATE = None, None
            return harness.openapi_checker()

        self.assertIsNone(with_binary('echo "staccato: unknown command \'$1\'" >&2; exit 2\n'))
        import json
        doc = os.path.join(d, "doc.json")
        with open(doc, "w") as f:
            json.dump(DOC, f)
        c = with_binary('[ "$1" = openapi ] && [ "$STACCATO_DEBUG_ROUTES" = 1 ] && exec cat "%s"; exit 3\n' % doc)
        self.assertIsInstance(c, openapi_check.Checker)
        with self.assertRaises(harness.ServerError):
            with_binary("echo not-json; exit 0\n")
        os.environ["SC_OPENAPI_CHECK"] = "0"
        self.assertIsNone(with_binary('exec cat "%s"\n' % doc))


if __name__ == "__main__":
    unittest.main(verbosity=2)
