/* CORS: origin lists, the headers of responses to other origins, and preflight answers (see cors.h). */
#include "http/cors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "http/host.h"
#include "http/method.h"
#include "http/router.h"

static bool scheme_char(char ch, bool first)
{
    bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
    return alpha || (!first && ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.'));
}

/* Whether s is scheme "://" host [":" port] and nothing more. */
static bool valid_origin(sc_slice s)
{
    size_t i = 0;
    while (i < s.len && scheme_char(s.ptr[i], i == 0))
        i++;
    if (i == 0 || s.len - i < 3 || memcmp(s.ptr + i, "://", 3) != 0)
        return false;
    sc_host host;
    return sc_host_parse((sc_slice){s.ptr + i + 3, s.len - i - 3}, &host) == 0;
}

int sc_origin_list_parse(const char *s, bool allow_any, const char *name, sc_origin_list *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof(*out));
    size_t len = strlen(s), n = 1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == ',';
    out->text = sc_alloc(len + 1);
    out->items = sc_calloc(n * sizeof(*out->items));
    memcpy(out->text, s, len + 1);
    sc_slice rest = {out->text, len};
    bool star = false;
    while (rest.len) {
        sc_slice item = sc_slice_next_item(&rest, ',');
        if (item.len == 0)
            continue;
        if (sc_slice_eq(item, SC_SLICE_LIT("*"))) {
            star = true;
            continue;
        }
        if (!valid_origin(item)) {
            snprintf(err, errlen, "%s: '%.*s' is not an origin (scheme://host[:port], no path)", name,
                     (int)(item.len > 300 ? 300 : item.len), item.ptr);
            sc_origin_list_free(out);
            return -1;
        }
        out->items[out->n++] = item;
    }
    if (star && (!allow_any || out->n)) {
        snprintf(err, errlen, "%s: '*' %s", name,
                 allow_any ? "must be alone (any origin, without credentials)" : "is not allowed here");
        sc_origin_list_free(out);
        return -1;
    }
    out->any = star;
    return 0;
}

void sc_origin_list_free(sc_origin_list *l)
{
    free(l->text);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

bool sc_origin_list_contains(const sc_origin_list *l, sc_slice origin)
{
    if (l->any)
        return true;
    for (size_t i = 0; i < l->n; i++)
        if (sc_slice_eq_nocase(l->items[i], origin))
            return true;
    return false;
}

static bool active(const sc_cors_policy *p) { return p && (p->origins.any || p->origins.n); }

/* The request's Origin when the policy allows it, else a NULL slice. */
static sc_slice allowed_origin(const sc_cors_policy *p, const sc_req *req)
{
    sc_slice origin = sc_req_header(req, "origin");
    return origin.ptr && sc_origin_list_contains(&p->origins, origin) ? origin : SC_SLICE_NULL;
}

static void header_line(sc_buf *out, const char *name, sc_slice value)
{
    sc_buf_append_str(out, name);
    sc_buf_append(out, ": ", 2);
    sc_buf_append_slice(out, value);
    sc_buf_append(out, "\r\n", 2);
}

void sc_cors_response_headers(const sc_cors_policy *p, const sc_req *req, sc_buf *out)
{
    if (!active(p))
        return;
    /* An answer that names one origin differs by Origin, also for the requests that got none: a shared cache
     * must not hand either to the other. */
    if (!p->origins.any)
        sc_buf_append_str(out, "Vary: Origin\r\n");
    sc_slice origin = allowed_origin(p, req);
    if (!origin.ptr)
        return;
    if (p->origins.any) {
        sc_buf_append_str(out, "Access-Control-Allow-Origin: *\r\n");
    } else {
        header_line(out, "Access-Control-Allow-Origin", origin); /* an exact list item: no CR or LF in it */
        sc_buf_append_str(out, "Access-Control-Allow-Credentials: true\r\n");
    }
    if (p->expose_headers && *p->expose_headers)
        header_line(out, "Access-Control-Expose-Headers", sc_slice_cstr(p->expose_headers));
}

/* The name in the policy's allowed list equal to name (any case), or a NULL slice. */
static sc_slice allowed_header(const char *list, sc_slice name)
{
    sc_slice rest = sc_slice_cstr(list);
    while (rest.len) {
        sc_slice item = sc_slice_next_item(&rest, ',');
        if (item.len && sc_slice_eq_nocase(item, name))
            return item;
    }
    return SC_SLICE_NULL;
}

void sc_cors_preflight(const sc_cors_policy *p, sc_req *req, unsigned methods)
{
    if (!active(p) || !sc_req_header(req, "access-control-request-method").ptr || !allowed_origin(p, req).ptr)
        return;
    char allow[96];
    sc_router_allow_header(methods & ~SC_M_OPTIONS, allow, sizeof(allow));
    sc_res_header(req, "Access-Control-Allow-Methods", sc_slice_cstr(allow));
    /* Access-Control-Request-Headers: "content-type,range" (lower case, as browsers send it). */
    sc_slice requested = sc_req_header(req, "access-control-request-headers");
    sc_buf names = {0};
    while (requested.len && p->allow_headers) {
        sc_slice item = sc_slice_next_item(&requested, ',');
        sc_slice known = item.len ? allowed_header(p->allow_headers, item) : SC_SLICE_NULL;
        if (!known.ptr)
            continue;
        if (names.len)
            sc_buf_append(&names, ", ", 2);
        sc_buf_append_slice(&names, known);
    }
    if (names.len)
        sc_res_header(req, "Access-Control-Allow-Headers", sc_buf_slice(&names));
    sc_buf_free(&names);
    char age[24];
    snprintf(age, sizeof(age), "%llu", (unsigned long long)p->max_age);
    sc_res_header(req, "Access-Control-Max-Age", sc_slice_cstr(age));
}
