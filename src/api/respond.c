/* The API's answers (api/respond.h): envelopes, request checks shared by every resource, and list paging. */
#include "api/respond.h"

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "http/host.h"

sc_jw *sc_api_begin(sc_req *req)
{
    sc_jw *w = sc_arena_alloc(req->arena, sizeof(*w));
    req->res.content_type = "application/json; charset=utf-8";
    req->res.body->len = 0;
    sc_jw_init(w, req->res.body);
    sc_jw_obj_begin(w);
    sc_jw_key(w, "status");
    sc_jw_cstr(w, "success");
    return w;
}

int sc_api_end(sc_jw *w, int status)
{
    sc_jw_obj_end(w);
    return status;
}

int sc_api_message(sc_req *req, int status, const char *msg)
{
    sc_jw *w = sc_api_begin(req);
    sc_jw_key(w, "message");
    sc_jw_cstr(w, msg);
    return sc_api_end(w, status);
}

int sc_api_data_str(sc_req *req, int status, const char *msg, const char *key, const char *value)
{
    sc_jw *w = sc_api_begin(req);
    if (msg) {
        sc_jw_key(w, "message");
        sc_jw_cstr(w, msg);
    }
    sc_jw_key(w, "data");
    sc_jw_obj_begin(w);
    sc_jw_key(w, key);
    sc_jw_cstr(w, value);
    sc_jw_obj_end(w);
    return sc_api_end(w, status);
}

int sc_api_data_raw(sc_req *req, int status, const char *key, sc_slice json)
{
    sc_jw *w = sc_api_begin(req);
    sc_jw_key(w, "data");
    if (key) {
        sc_jw_obj_begin(w);
        sc_jw_key(w, key);
    }
    sc_jw_raw(w, json);
    if (key)
        sc_jw_obj_end(w);
    return sc_api_end(w, status);
}

void *sc_api_state_new(sc_req *req, size_t size, void (*on_gone)(void *state))
{
    void *state = sc_arena_alloc(req->arena, size);
    memset(state, 0, size);
    req->state = state;
    if (on_gone)
        sc_req_on_dispose(req, on_gone, state);
    return state;
}

void sc_api_finish_error(sc_req *req, int status, const char *message)
{
    sc_req_finish(req, sc_res_error(req, status, message));
}

const char *sc_api_base_url(sc_req *req)
{
    const char *pub = sc_api_app(req)->settings->public_url;
    if (pub && *pub) {
        size_t n = strlen(pub);
        while (n > 0 && pub[n - 1] == '/')
            n--;
        return sc_arena_strndup(req->arena, pub, n);
    }
    /* The Host header only when http/host.h finds it valid and allowed: the same rule as the redirect to HTTPS. */
    sc_host h;
    sc_slice host = SC_SLICE_LIT("localhost");
    if (sc_req_host(req, &h))
        host = (sc_slice){h.name.ptr, h.port.len ? (size_t)(h.port.ptr + h.port.len - h.name.ptr) : h.name.len};
    const char *scheme = sc_req_secure(req) ? "https://" : "http://";
    size_t sl = strlen(scheme);
    char *url = sc_arena_alloc(req->arena, sl + host.len + 1);
    memcpy(url, scheme, sl);
    memcpy(url + sl, host.ptr, host.len);
    url[sl + host.len] = '\0';
    return url;
}

bool sc_api_plausible_id(sc_slice s)
{
    if (s.len == 0 || s.len > SC_API_MAX_ID_LEN)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

const char *sc_api_id_or_null(sc_req *req, sc_slice s)
{
    if (!s.ptr)
        return NULL;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c <= 0x20 || c >= 0x7f)
            return NULL;
    }
    return sc_arena_strndup(req->arena, s.ptr, s.len);
}

const char *sc_api_dup(sc_req *req, sc_slice s)
{
    return s.ptr ? sc_arena_strndup(req->arena, s.ptr, s.len) : NULL;
}

static int number_param(sc_req *req, const char *name, uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
    sc_slice v;
    unsigned long long n;
    *out = def;
    if (!sc_req_query(req, name, &v))
        return 0;
    if (sc_slice_to_u64(v, max, &n) != 0 || n < min) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s must be a whole number from %llu to %llu", name, (unsigned long long)min,
                 (unsigned long long)max);
        return sc_res_error(req, 400, sc_arena_strndup(req->arena, msg, strlen(msg)));
    }
    *out = n;
    return 0;
}

int sc_api_page(sc_req *req, sc_page *p)
{
    int st = number_param(req, "page", 1, 1, 1000000, &p->page);
    if (!st)
        st = number_param(req, "limit", 100, 1, 1000, &p->limit);
    if (st)
        return st;
    p->offset = (p->page - 1) * p->limit;
    /* A deep offset costs the database every row before it, and so does an exact count of a long list: both are
     * bounded, the offset here and the count by count_cap (a count of at most that many rows, which an index or
     * a scan stops at). Keyset paging would make deep pages cheap too, but changes what clients send; what
     * reaches this far is better found with the list's filters. */
    uint64_t max = sc_api_app(req)->settings->max_list_offset;
    if (p->offset > max) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "(page - 1) * limit must be at most %llu: narrow the search with filters instead of paging "
                 "further",
                 (unsigned long long)max);
        return sc_res_error(req, 400, sc_arena_strndup(req->arena, msg, strlen(msg)));
    }
    p->count_cap = (max / p->limit + 1) * p->limit;
    snprintf(p->limit_str, sizeof(p->limit_str), "%llu", (unsigned long long)p->limit);
    snprintf(p->offset_str, sizeof(p->offset_str), "%llu", (unsigned long long)p->offset);
    snprintf(p->count_cap_str, sizeof(p->count_cap_str), "%llu", (unsigned long long)p->count_cap);
    return 0;
}

void sc_api_total(sc_req *req, uint64_t total)
{
    char v[24];
    snprintf(v, sizeof(v), "%llu", (unsigned long long)total);
    sc_res_header(req, "X-Total-Count", sc_slice_cstr(v));
}

const char *sc_api_error_body(sc_buf *out, int status, const char *message)
{
    sc_jw w;
    sc_jw_init(&w, out);
    sc_jw_obj_begin(&w);
    sc_jw_key(&w, "status");
    sc_jw_cstr(&w, status >= 500 ? "error" : "fail");
    sc_jw_key(&w, "message");
    sc_jw_cstr(&w, message);
    sc_jw_obj_end(&w);
    return "application/json; charset=utf-8";
}

/* The reader's error for a body that is not declared as JSON, told apart from parse errors by its address. */
static const char unsupported_type[] = "request body must be application/json";

/* Whether a Content-Type value is application/json, in any case, with or without parameters ("; charset=utf-8").
 */
static bool is_json_type(sc_slice ct)
{
    long semi = sc_slice_find(ct, ';');
    sc_slice type = sc_slice_trim((sc_slice){ct.ptr, semi < 0 ? ct.len : (size_t)semi});
    return sc_slice_eq_nocase(type, SC_SLICE_LIT("application/json"));
}

sc_jr sc_api_json_begin(sc_req *req)
{
    sc_jr jr;
    sc_slice body = {req->body->ptr, req->body->len};
    /* A body of another type is refused before it is parsed: what a cross-site form or a no-cors fetch can send
     * (text/plain, form encodings) must never pass for JSON, whatever its bytes. No body needs no type. */
    if (body.len && !is_json_type(sc_req_header(req, "content-type"))) {
        jr = (sc_jr){.arena = req->arena, .root = NULL, .error = unsupported_type};
        return jr;
    }
    sc_jr_begin(&jr, req->arena, body);
    return jr;
}

int sc_api_json_error(sc_req *req, const sc_jr *jr)
{
    return sc_res_error(req, jr->error == unsupported_type ? 415 : 400, jr->error);
}

int sc_api_retry_later(sc_req *req, int status, uint64_t seconds, const char *message)
{
    char v[24];
    snprintf(v, sizeof(v), "%llu", (unsigned long long)seconds);
    sc_res_header(req, "Retry-After", sc_slice_cstr(v));
    return sc_res_error(req, status, message);
}

void sc_api_finish_password_busy(sc_req *req)
{
    sc_req_finish(req,
                  sc_api_retry_later(req, 503, 1, "the server is busy checking passwords; try again shortly"));
}
