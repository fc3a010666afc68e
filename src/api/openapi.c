/* The OpenAPI document, generated from the route table and the descriptions beside each resource (api/openapi.h).
 */
#include "api/openapi.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "core/buf.h"
#include "http/method.h"
#include "http/range.h"

/* What is wrong with the parts, gathered so that one build names every problem. */
typedef struct report {
    char *err;
    size_t errlen, used;
    int count;
} report;

static void problem(report *r, const char *fmt, ...)
{
    r->count++;
    if (!r->err || r->errlen == 0 || r->used + 1 >= r->errlen)
        return;
    if (r->used) {
        int w = snprintf(r->err + r->used, r->errlen - r->used, "; ");
        r->used += w > 0 ? (size_t)w : 0;
        if (r->used >= r->errlen) {
            r->used = r->errlen - 1;
            return;
        }
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(r->err + r->used, r->errlen - r->used, fmt, ap);
    va_end(ap);
    r->used += w > 0 ? (size_t)w : 0;
    if (r->used >= r->errlen)
        r->used = r->errlen - 1;
}

static json_t *ref(const char *kind, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "#/components/%s/%s", kind, name);
    return json_pack("{s:s}", "$ref", path);
}

/* "song_audio_upload" (+ "PUT" for a row of several methods) -> "songAudioUploadPut". */
static void operation_id(const char *name, const char *method, char *out, size_t outlen)
{
    size_t o = 0;
    bool up = false;
    for (const char *p = name; *p && o + 1 < outlen; p++) {
        if (*p == '_') {
            up = true;
            continue;
        }
        out[o++] = up ? (char)toupper((unsigned char)*p) : *p;
        up = false;
    }
    for (const char *p = method; p && *p && o + 1 < outlen; p++)
        out[o++] = p == method ? *p : (char)tolower((unsigned char)*p);
    out[o] = '\0';
}

static bool lists_param(json_t *params, const char *name, size_t len)
{
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p)
    {
        const char *in = json_string_value(json_object_get(p, "in"));
        const char *n = json_string_value(json_object_get(p, "name"));
        if (in && n && strcmp(in, "path") == 0 && strlen(n) == len && memcmp(n, name, len) == 0)
            return true;
    }
    return false;
}

/* Adds a required string parameter for each {name} of the pattern the description does not list. */
static void add_path_params(json_t *op, const char *pattern)
{
    json_t *params = json_object_get(op, "parameters");
    if (!params) {
        params = json_array();
        json_object_set_new(op, "parameters", params);
    }
    size_t at = 0;
    for (const char *p = strchr(pattern, '{'); p; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        if (!end)
            break;
        size_t len = (size_t)(end - p - 1);
        if (!lists_param(params, p + 1, len)) {
            json_t *param = json_pack("{s:s%,s:s,s:b,s:{s:s}}", "name", p + 1, len, "in", "path", "required", 1,
                                      "schema", "type", "string");
            json_array_insert_new(params, at++, param);
        }
    }
    if (json_array_size(params) == 0)
        json_object_del(op, "parameters");
}

static void add_response(json_t *responses, const char *status, const char *name)
{
    if (!json_object_get(responses, status))
        json_object_set_new(responses, status, ref("responses", name));
}

/* The responses in order of their status codes. */
static json_t *sorted_responses(json_t *responses)
{
    const char *keys[64];
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(responses, key, v)
    {
        if (n < sizeof(keys) / sizeof(keys[0]))
            keys[n++] = key;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *t = keys[j - 1];
            keys[j - 1] = keys[j];
            keys[j] = t;
        }
    json_t *out = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set(out, keys[i], json_object_get(responses, keys[i]));
    return out;
}

static json_t *security_for(sc_gate gate)
{
    json_t *sec = json_array();
    if (gate == SC_API_OPTIONAL)
        json_array_append_new(sec, json_object());
    json_array_append_new(sec, json_pack("{s:[]}", "bearerAuth"));
    json_array_append_new(sec, json_pack("{s:[]}", "sessionCookie"));
    return sec;
}

/* The operation of one method of a route: a copy of its description with what the row says added. */
static json_t *operation(const sc_route *r, const char *method, bool several, json_t *desc, report *rep)
{
    json_t *op = json_deep_copy(desc);
    char id[128];
    operation_id(r->name, several ? method : NULL, id, sizeof(id));
    json_object_set_new(op, "operationId", json_string(id));
    if (!json_is_string(json_object_get(op, "summary")))
        problem(rep, "%s %s (%s) has no summary", method, r->pattern, r->name);
    if (!json_is_array(json_object_get(op, "tags")))
        problem(rep, "%s %s (%s) has no tags", method, r->pattern, r->name);
    add_path_params(op, r->pattern);

    bool gated = r->gate == SC_API_OPTIONAL || r->gate == SC_API_USER || r->gate == SC_API_ADMIN;
    /* A public row says so with an empty list: no credentials needed (what lints expect of every operation). */
    if (!json_object_get(op, "security"))
        json_object_set_new(op, "security", gated ? security_for(r->gate) : json_array());

    json_t *responses = json_object_get(op, "responses");
    if (!json_is_object(responses)) {
        problem(rep, "%s %s (%s) has no responses", method, r->pattern, r->name);
        responses = json_object();
        json_object_set_new(op, "responses", responses);
    }
    /* Every gate answers 401; 403 is the admin gate's for anyone else, and the others' for an unsafe request
     * authenticated by the cookie from a foreign origin. */
    if (gated)
        add_response(responses, "401", "Unauthorized");
    if (r->gate == SC_API_ADMIN || (gated && strcmp(method, "GET") != 0))
        add_response(responses, "403", "Forbidden");
    if (strchr(r->pattern, '{'))
        add_response(responses, "404", "NotFound");
    if ((r->flags & SC_ROUTE_JSON_BODY) && json_object_get(op, "requestBody")) {
        add_response(responses, "400", "BadRequest");
        add_response(responses, "415", "UnsupportedMediaType");
    }
    /* What the HTTP layer answers before any route runs, for any request: a malformed or ambiguous one (400, 501
     * for a transfer coding other than chunked, 505), limits (413 body, 414 target, 431 headers), a body or
     * headers too slow (408), an Expect it does not know (417). */
    add_response(responses, "400", "MalformedRequest");
    add_response(responses, "408", "RequestTimeout");
    add_response(responses, "413", "PayloadTooLarge");
    add_response(responses, "414", "URITooLong");
    add_response(responses, "417", "ExpectationFailed");
    add_response(responses, "431", "HeadersTooLarge");
    add_response(responses, "501", "NotImplemented");
    add_response(responses, "505", "VersionNotSupported");
    add_response(responses, "500", "InternalError");
    add_response(responses, "503", "ServiceUnavailable");
    add_response(responses, "504", "GatewayTimeout");
    json_object_set_new(op, "responses", sorted_responses(responses));
    return op;
}

/* "GET" -> "get": a method as OpenAPI's path items and our description keys spell it. */
static void lower_method(const char *method, char out[16])
{
    size_t i = 0;
    for (; method[i] && i + 1 < 16; i++)
        out[i] = (char)tolower((unsigned char)method[i]);
    out[i] = '\0';
}

/* The description of a row's method: "<name>.<method>" first, then "<name>". Marks what it used. */
static json_t *find_desc(json_t *descs, json_t *used, const char *name, const char *method)
{
    char key[160], lower[16];
    lower_method(method, lower);
    snprintf(key, sizeof(key), "%s.%s", name, lower);
    json_t *d = json_object_get(descs, key);
    if (!d) {
        snprintf(key, sizeof(key), "%s", name);
        d = json_object_get(descs, key);
    }
    if (d)
        json_object_set_new(used, key, json_true());
    return d;
}

static json_t *load(const char *file, const char *text, report *rep)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (!j || !json_is_object(j)) {
        problem(rep, "%s: %s (line %d)", file, j ? "not a JSON object" : e.text, e.line);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Adds a part's own components (schemas, responses, ...) to the document's; a name may be defined once. */
static void merge_components(json_t *doc, json_t *add, const char *file, report *rep)
{
    json_t *into = json_object_get(doc, "components");
    const char *kind;
    json_t *defs;
    json_object_foreach(add, kind, defs)
    {
        json_t *have = json_object_get(into, kind);
        if (!have) {
            have = json_object();
            json_object_set_new(into, kind, have);
        }
        const char *name;
        json_t *def;
        json_object_foreach(defs, name, def)
        {
            if (json_object_get(have, name))
                problem(rep, "%s: components/%s/%s is defined twice", file, kind, name);
            else
                json_object_set(have, name, def);
        }
    }
}

/* Every description of every part in one object, keyed by name; the parts' components go into the document. */
static json_t *all_descriptions(json_t *doc, report *rep)
{
    json_t *descs = json_object();
    for (size_t i = 0; i < sc_openapi_parts_count; i++) {
        json_t *part = load(sc_openapi_parts[i].file, sc_openapi_parts[i].json, rep);
        const char *key;
        json_t *v;
        json_object_foreach(part, key, v)
        {
            if (strcmp(key, "components") == 0) {
                if (doc)
                    merge_components(doc, v, sc_openapi_parts[i].file, rep);
            } else if (json_object_get(descs, key))
                problem(rep, "%s: %s is described twice", sc_openapi_parts[i].file, key);
            else if (!json_is_object(v))
                problem(rep, "%s: %s is not an object", sc_openapi_parts[i].file, key);
            else
                json_object_set(descs, key, v);
        }
        json_decref(part);
    }
    return descs;
}

/* Whether a description is of a debug route (tagged "debug"), which tables without the debug routes lack. */
static bool is_debug(json_t *desc)
{
    size_t i;
    json_t *tag;
    json_array_foreach(json_object_get(desc, "tags"), i, tag)
    {
        if (json_is_string(tag) && strcmp(json_string_value(tag), "debug") == 0)
            return true;
    }
    return false;
}

char *sc_api_openapi_build(const sc_route *routes, size_t n, bool with_debug, size_t *len, char *err,
                           size_t errlen)
{
    report rep = {err, errlen, 0, 0};
    if (err && errlen)
        err[0] = '\0';
    json_t *doc = load("openapi.base.json", sc_openapi_base, &rep);
    json_t *descs = all_descriptions(doc, &rep), *used = json_object(), *paths = json_object();
    for (size_t i = 0; i < n; i++) {
        const sc_route *r = &routes[i];
        if (!r->name) {
            problem(&rep, "route %s has no name", r->pattern);
            continue;
        }
        json_t *item = json_object_get(paths, r->pattern);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, r->pattern, item);
        }
        int methods = 0;
        for (unsigned bit = 1; bit <= SC_M_OPTIONS; bit <<= 1)
            methods += (r->methods & bit) != 0;
        for (unsigned bit = 1; bit <= SC_M_OPTIONS; bit <<= 1) {
            if (!(r->methods & bit) || bit == SC_M_HEAD)
                continue;
            const char *m = sc_method_name(bit);
            json_t *desc = find_desc(descs, used, r->name, m);
            if (!desc) {
                problem(&rep, "route %s %s has no description (%s in src/api/*.openapi.json)", m, r->pattern,
                        r->name);
                continue;
            }
            char lower[16];
            lower_method(m, lower);
            json_object_set_new(item, lower, operation(r, m, methods > 1, desc, &rep));
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(descs, key, v)
    {
        if (!json_object_get(used, key) && (with_debug || !is_debug(v)))
            problem(&rep, "%s is described but no route has it", key);
    }
    char *out = NULL;
    if (doc && rep.count == 0) {
        json_object_set(doc, "paths", paths);
        json_object_set_new(json_object_get(doc, "info"), "version", json_string(STACCATO_VERSION));
        out = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (out && len)
            *len = strlen(out);
    }
    json_decref(paths);
    json_decref(used);
    json_decref(descs);
    json_decref(doc);
    return out;
}

int sc_api_openapi_json(sc_req *req)
{
    const sc_app *app = sc_api_app(req);
    if (!app->openapi)
        return sc_res_error(req, 500, "the API description is not available");
    sc_slice etag = sc_slice_cstr(app->openapi_etag);
    sc_res_header(req, "ETag", etag);
    sc_res_header(req, "Cache-Control", SC_SLICE_LIT("no-cache"));
    sc_slice inm = sc_req_header(req, "if-none-match");
    if (inm.ptr && sc_etag_match(inm, etag, false))
        return 304;
    req->res.content_type = "application/json; charset=utf-8";
    sc_buf_append(req->res.body, app->openapi, app->openapi_len);
    return 200;
}
