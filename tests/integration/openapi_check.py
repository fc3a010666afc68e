"""Checks HTTP responses against the server's OpenAPI 3.1 document.

The integration harness (harness.py) runs every response it reads to a request whose method and target it knows
(Conn.request, Server.get, request(), pipeline_all, and anything sent as build_request() bytes through Conn.send and
read back with read_response/read_final_response) through Checker.check, which raises Mismatch (an
AssertionError) when the response is not as documented:

  route     the path (without the query) matches a path template of the document ({x} is one non-empty segment;
            a literal segment wins over a template in the same place) and the method is an operation there (HEAD
            is checked against GET, headers only). A path or method the document does not have is only checked
            for being an error response: 4xx/5xx with a JSON body {"status": "fail" (4xx) or "error" (5xx),
            "message": "..."}; OPTIONS on a documented path may also get the router's 204.
  redirect  the server's redirect to HTTPS (301/302/307/308 with a Location of https://...) comes before any
            route: it is right for any request, unless the operation documents that status itself.
  status    the status code is documented for the operation (exact code, then "4XX"-style ranges, then "default").
  content   when that response documents content, the Content-Type media type (parameters ignored) is one of its
            keys ("audio/*" and "*/*" keys match by range); a non-empty body for a response documented without
            content fails.
  schema    an application/json (or +json) body validates against the schema of its media type with OpenAPI 3.1
            semantics (JSON Schema 2020-12; $ref resolves into the whole document, e.g. #/components/schemas/X).
  headers   every response header the document marks required: true is present.

Streaming and binary bodies (audio/*, image/*, multipart/byteranges, text/event-stream, anything not JSON) are
checked for status, media type and headers only. Interim (1xx) responses are not checked.

The harness loads the document once per test process with `$STACCATO_BIN openapi` (STACCATO_DEBUG_ROUTES=1, so
that the /_debug/* routes are in it; for a server started with them off, the document printed with them off). A
binary that does not know that command (non-zero exit) turns the checks off; one that prints the document turns
them on, always.

SC_OPENAPI_CHECK=0 in the environment turns the checks off. For debugging only: the suite is meant to run with
them on. SC_OPENAPI_STATS=1 prints, when a test process exits, how many responses were checked and how many
answered requests the harness did not know (raw bytes).

Compiled validators are cached per (path template, method, status key, media type), what the document says of a
status per operation, path matches per path, and small bodies once found valid, so that a response costs a few dict
look-ups plus the schema validation of a body not seen before.
"""

import json
import re

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_REDIRECTS = (301, 302, 307, 308)
DOC_URI = "urn:staccato:openapi"
EXCERPT = 300

_MISSING = object()


class Mismatch(AssertionError):
    """A response that is not as the OpenAPI document says."""


class _NotInlinable(Exception):
    pass


def _escape_pointer(token):
    return token.replace("~", "~0").replace("/", "~1")


def _media_type(value):
    return value.split(";", 1)[0].strip().lower()


def _is_json_media(mt):
    return mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))


def _excerpt(body):
    if not body:
        return "(empty body)"
    text = body[:EXCERPT]
    more = " ... (%d bytes)" % len(body) if len(body) > EXCERPT else ""
    return "body: %r%s" % (text, more)


def _header(headers, name, default=None):
    n = name.lower()
    for k, v in headers:
        if k.lower() == n:
            return v
    return default


def path_of(target):
    """The path of a request target: origin-form up to '?' or '#', absolute-form's path; None for '*' and
    anything else that names no path."""
    if target.startswith("/"):
        end = len(target)
        for ch in "?#":
            i = target.find(ch)
            if 0 <= i < end:
                end = i
        return target[:end]
    m = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*([^?#]*)", target)
    if m:
        return m.group(1) or "/"
    return None


def split_path(path):
    """Segments like the server's router: "/" has none, "/a/b" has ["a", "b"], "/a/" has ["a", ""]."""
    if path.startswith("/"):
        path = path[1:]
    if not path:
        return []
    return path.split("/")


class _Node:
    __slots__ = ("literal", "param", "patterns", "template")

    def __init__(self):
        self.literal = {}     # segment -> _Node
        self.param = None     # _Node for a whole-segment {x}
        self.patterns = []    # (compiled regex, _Node) for segments mixing text and {x}
        self.template = None  # the path template ending here


class _Operation:
    __slots__ = ("template", "method", "responses", "pointer", "plans")

    def __init__(self, template, method, responses, pointer):
        self.template = template
        self.method = method
        self.responses = responses
        self.pointer = pointer
        self.plans = {}       # status -> _Plan, or why that status is not documented


class _Plan:
    """What the document says of one status of an operation."""
    __slots__ = ("status_key", "required", "content", "all_json", "media")


class Checker:
    """Checks responses against one OpenAPI 3.1 document (a parsed JSON object)."""

    PATH_CACHE_MAX = 8192
    VALID_CACHE_MAX = 16384   # bodies already found valid, per (operation, status key, media type)
    VALID_BODY_MAX = 4096

    def __init__(self, document):
        if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
            raise ValueError("not an OpenAPI document: no 'paths' object")
        self.doc = document
        self._root = _Node()
        self._ops = {}            # template -> {METHOD: _Operation}
        self._path_cache = {}     # request path -> template or None
        self._validators = {}     # (template, method, status key, media key) -> validator
        self._valid = set()       # (template, method, status key, media key, body) found valid
        self._registry = None
        self._validator_cls = None
        for template, item in document["paths"].items():
            item = self.deref(item)
            if not isinstance(item, dict):
                continue
            ops = {}
            for m in HTTP_METHODS:
                op = item.get(m)
                if isinstance(op, dict):
                    op = self.deref(op)
                    responses = op.get("responses")
                    pointer = "#/paths/%s/%s" % (_escape_pointer(template), m)
                    ops[m.upper()] = _Operation(template, m.upper(), responses if isinstance(responses, dict)
                                                else {}, pointer)
            self._ops[template] = ops
            self._add_template(template)

    # -- the document ------------------------------------------------------
    def deref(self, obj, depth=0):
        """obj, or what its {"$ref": "#/..."} points to inside the document (followed repeatedly)."""
        while isinstance(obj, dict) and isinstance(obj.get("$ref"), str) and depth < 32:
            obj = self.resolve_pointer(obj["$ref"])
            depth += 1
        return obj

    def resolve_pointer(self, ref):
        if not ref.startswith("#"):
            raise ValueError("only references into the document itself are supported: %r" % ref)
        node = self.doc
        frag = ref[1:]
        if not frag:
            return node
        for token in frag.lstrip("/").split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list):
                node = node[int(token)]
            else:
                node = node[token]
        return node

    # -- path templates ------------------------------------------------------
    def _add_template(self, template):
        node = self._root
        for seg in split_path(template):
            if re.fullmatch(r"\{[^{}/]+\}", seg):
                if node.param is None:
                    node.param = _Node()
                node = node.param
            elif "{" in seg:
                parts = re.split(r"\{[^{}/]+\}", seg)
                rx = re.compile("^" + "[^/]+".join(re.escape(p) for p in parts) + "$")
                for prx, child in node.patterns:
                    if prx.pattern == rx.pattern:
                        node = child
                        break
                else:
                    child = _Node()
                    node.patterns.append((rx, child))
                    node = child
            else:
                node = node.literal.setdefault(seg, _Node())
        node.template = template

    def match_path(self, path):
        """The path template matching path (literal segments first, like the router), or None."""
        found = self.match_all(path)
        return found[0] if found else None

    def match_all(self, path):
        """Every path template matching path, the preferred first (literal segments before templated ones,
        segment by segment from the left)."""
        hit = self._path_cache.get(path)
        if hit is None:
            hit = []
            self._match(self._root, split_path(path), 0, hit)
            hit = tuple(hit)
            if len(self._path_cache) >= self.PATH_CACHE_MAX:
                self._path_cache.clear()
            self._path_cache[path] = hit
        return hit

    def _match(self, node, segs, i, out):
        if i == len(segs):
            if node.template is not None:
                out.append(node.template)
            return
        seg = segs[i]
        child = node.literal.get(seg)
        if child is not None:
            self._match(child, segs, i + 1, out)
        if not seg:
            return
        for rx, child in node.patterns:
            if rx.match(seg):
                self._match(child, segs, i + 1, out)
        if node.param is not None:
            self._match(node.param, segs, i + 1, out)

    def operation(self, method, template):
        ops = self._ops.get(template) or {}
        method = method.upper()
        op = ops.get(method)
        if op is None and method == "HEAD":
            op = ops.get("GET")
        return op

    def find(self, method, path):
        """(template, operation) for method and path: the preferred template that has the method (like a router
        that goes on to the next match when the method does not fit), else (the preferred template, None), else
        (None, None)."""
        templates = self.match_all(path)
        for t in templates:
            op = self.operation(method, t)
            if op is not None:
                return t, op
        return (templates[0] if templates else None), None

    # -- schemas ---------------------------------------------------------------
    def _validator(self, op, status_key, media_key):
        key = (op.template, op.method, status_key, media_key)
        v = self._validators.get(key)
        if v is None:
            if self._registry is None:
                self._setup_schemas()
            ref = self._schema_ref(op, status_key, media_key)
            try:
                v = self._validator_cls(self._inline(self.resolve_pointer(ref[len(DOC_URI):]), ()))
            except _NotInlinable:
                v = self._validator_cls({"$ref": ref}, registry=self._registry)
            self._validators[key] = v
        return v

    # Keywords whose values are data, not schemas: never searched for $ref.
    _DATA_KEYWORDS = frozenset(("const", "enum", "default", "example", "examples"))
    _ID_KEYWORDS = frozenset(("$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef"))

    def _inline(self, node, stack):
        """A copy of a schema with every "#/..." $ref replaced by what it points to (a $ref beside other keywords
        becomes one more allOf entry, the same in-place application), so that validating needs no reference
        look-ups, about twice as fast. _NotInlinable for a recursive schema or one with its own identifiers."""
        if isinstance(node, list):
            return [self._inline(x, stack) for x in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for k, v in node.items():
            if k in self._ID_KEYWORDS:
                raise _NotInlinable()
            if k == "$ref":
                continue
            out[k] = v if k in self._DATA_KEYWORDS else self._inline(v, stack)
        ref = node.get("$ref")
        if ref is None:
            return out
        if not isinstance(ref, str) or not ref.startswith("#") or ref in stack:
            raise _NotInlinable()
        target = self._inline(self.resolve_pointer(ref), stack + (ref,))
        if not out:
            return target
        out["allOf"] = list(out.get("allOf", [])) + [target]
        return out

    def _schema_ref(self, op, status_key, media_key):
        """The URI of the schema: under the operation's own pointer, unless the response or media type object is a
        $ref into components (then the pointer goes through what the reference names)."""
        resp = op.responses.get(status_key)
        base = "%s/responses/%s" % (op.pointer, _escape_pointer(status_key))
        while isinstance(resp, dict) and isinstance(resp.get("$ref"), str):
            base = resp["$ref"]
            resp = self.resolve_pointer(base)
        media = (resp.get("content") or {}).get(media_key)
        base = "%s/content/%s" % (base, _escape_pointer(media_key))
        while isinstance(media, dict) and isinstance(media.get("$ref"), str):
            base = media["$ref"]
            media = self.resolve_pointer(base)
        return DOC_URI + base + "/schema"

    def _setup_schemas(self):
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012
        try:
            from openapi_schema_validator import OAS31Validator as cls
        except ImportError:  # the plain 2020-12 validator: the same semantics for what a response body may be
            from jsonschema import Draft202012Validator as cls
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self._registry = Registry().with_resource(DOC_URI, resource)
        self._validator_cls = cls

    # -- the checks ------------------------------------------------------------
    def check(self, method, target, status, headers, body):
        """Raises Mismatch when the response (status, headers as (name, value) pairs, body bytes) to
        method target is not as documented. 1xx responses and targets without a path are not checked."""
        if 100 <= status < 200:
            return
        path = path_of(target)
        if path is None:
            return
        method = method.upper()
        head = method == "HEAD"
        template, op = self.find(method, path)
        if status in _REDIRECTS and (op is None or str(status) not in op.responses):
            loc = _header(headers, "location")
            if loc and loc.lower().startswith("https://"):
                return
        if op is None:
            if method == "OPTIONS" and template is not None and status == 204 and not body:
                return  # the router answers OPTIONS for every documented path
            why = ("no path template of the document matches %r" % _short(path, 160) if template is None else
                   "%s is not an operation of %s" % (method, template))
            self._check_plain_error(method, target, status, headers, body, head, why)
            return

        def fail(check, detail):
            raise Mismatch("OpenAPI mismatch [%s] %s %s -> %d (operation %s %s): %s\n%s"
                           % (check, method, _short(target, 160), status, op.method, op.template, detail,
                              _excerpt(body)))

        plan = op.plans.get(status, _MISSING)
        if plan is _MISSING:
            plan = op.plans[status] = self._plan(op, status)
        if isinstance(plan, str):
            fail("status", plan)

        # (5) required headers
        if plan.required:
            present = {k.lower() for k, _ in headers}
            for name in plan.required:
                if name.lower() not in present:
                    fail("headers", "required response header %r is missing (headers: %s)"
                         % (name, ", ".join(k for k, _ in headers)))

        # (3) the media type
        content = plan.content
        ctype = _header(headers, "content-type")
        if not content:
            if body and not head:
                fail("content", "status %s is documented without content, but the response has a %d-byte body "
                     "(Content-Type %r)" % (plan.status_key, len(body), ctype))
            return
        if ctype is None:
            if body and not head:
                fail("content", "the response has a %d-byte body but no Content-Type (documented: %s)"
                     % (len(body), ", ".join(content)))
            if head or not plan.all_json:
                return
            fail("content", "the response has no body and no Content-Type; documented: %s" % ", ".join(content))
        media = plan.media.get(ctype)
        if media is None:
            mt = _media_type(ctype)
            media_key = self._media_key(content, mt)
            has_schema = False
            if media_key is not None:
                mobj = self.deref(content[media_key])
                has_schema = isinstance(mobj, dict) and "schema" in mobj
            media = plan.media[ctype] = (media_key, mt, _is_json_media(mt), has_schema)
        media_key, mt, is_json, has_schema = media
        if media_key is None:
            fail("content", "Content-Type %r is not documented for status %s (documented: %s)"
                 % (ctype, plan.status_key, ", ".join(content)))
        if head or not is_json:
            return

        # (4) the JSON body
        seen = (op.template, op.method, plan.status_key, media_key, body)
        if seen in self._valid:
            return
        try:
            instance = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            fail("schema", "the %s body is not JSON (%s)" % (mt, e))
        if not has_schema:
            return
        v = self._validator(op, plan.status_key, media_key)
        err = next(v.iter_errors(instance), None)
        if err is not None:
            from jsonschema.exceptions import best_match
            err = best_match(v.iter_errors(instance)) or err
            fail("schema", "the body does not match the schema of %s %s: at %s: %s (schema path: %s)"
                 % (plan.status_key, media_key, err.json_path, _short(err.message),
                    "/".join(str(p) for p in err.schema_path)))
        if len(body) <= self.VALID_BODY_MAX:
            if len(self._valid) >= self.VALID_CACHE_MAX:
                self._valid.clear()
            self._valid.add(seen)

    def _plan(self, op, status):
        """What the document says of status for op, worked out once: a _Plan, or the message (a str) of why the
        status is not documented."""
        status_key, resp = self._response_for(op, status)
        if resp is None:
            return "status %d is not documented (documented: %s)" % (status, ", ".join(sorted(op.responses))
                                                                   or "none")
        if not isinstance(resp, dict):
            return "the documented response %r is not an object" % status_key
        plan = _Plan()
        plan.status_key = status_key
        plan.required = []
        for name, hobj in (resp.get("headers") or {}).items():
            hobj = self.deref(hobj)
            if name.lower() != "content-type" and isinstance(hobj, dict) and hobj.get("required") is True:
                plan.required.append(name)
        content = resp.get("content")
        plan.content = content if isinstance(content, dict) and content else None
        plan.all_json = bool(plan.content) and all(_is_json_media(_media_type(k)) for k in plan.content)
        plan.media = {}
        return plan

    def _response_for(self, op, status):
        """(key, documented response object) for a status: the exact code, then its range ("4XX"), then
        "default"; (None, None) when none is documented."""
        r = op.responses
        for key in (str(status), "%dXX" % (status // 100), "%dxx" % (status // 100), "default"):
            if key in r:
                return key, self.deref(r[key])
        return None, None

    @staticmethod
    def _media_key(content, mt):
        """The key of content that media type mt falls under: exact, then "type/*", then "*/*"."""
        lowered = {}
        for k in content:
            lowered.setdefault(_media_type(k), k)
        for cand in (mt, mt.split("/", 1)[0] + "/*", "*/*"):
            if cand in lowered:
                return lowered[cand]
        return None

    def _check_plain_error(self, method, target, status, headers, body, head, why):
        """A request the document does not describe: only an error response is right for it."""
        def fail(detail):
            raise Mismatch("OpenAPI mismatch [route] %s %s -> %d: %s, so only an error response is right, but %s\n%s"
                           % (method, _short(target, 160), status, why, detail, _excerpt(body)))

        if not 400 <= status < 600:
            fail("the status is %d" % status)
        if head:
            return
        ctype = _header(headers, "content-type")
        if ctype is None or not _is_json_media(_media_type(ctype)):
            fail("its Content-Type is %r, not JSON" % ctype)
        try:
            j = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            fail("its body is not JSON (%s)" % e)
        want = "fail" if status < 500 else "error"
        if not isinstance(j, dict) or j.get("status") != want:
            fail('its body is not {"status": "%s", ...}' % want)
        if not isinstance(j.get("message"), str) or not j["message"]:
            fail("its body has no message")


def _short(text, n=240):
    return text if len(text) <= n else text[:n] + "..."


def load(text):
    """A Checker for a document given as JSON text (ValueError when it is not one)."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ValueError("the OpenAPI document is not JSON: %s" % e)
    return Checker(doc)
