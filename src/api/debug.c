/* Endpoints for the test suite, enabled by STACCATO_DEBUG_ROUTES: an echo of the parsed body, a response delayed
 * by a timer (a stand-in for slow asynchronous work such as a database query), and the route table. */
#include "api/debug.h"

#include <jansson.h>
#include <stdlib.h>
#include <uv.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/db.h"
#include "api/respond.h"
#include "core/mem.h"
#include "http/method.h"
#include "http/request.h"
#include "http/router.h"
#include "http/server.h"
#include "json/read.h"
#include "json/write.h"

static int dump_cb(const char *buffer, size_t size, void *data)
{
    sc_buf_append(data, buffer, size);
    return 0;
}

int sc_api_debug_echo(sc_req *req)
{
    size_t bytes = req->body->len;
    json_t *doc = NULL;
    if (bytes) {
        json_error_t err;
        doc = json_loadb(req->body->ptr, bytes, JSON_DECODE_ANY, &err);
        if (!doc)
            return sc_res_error(req, 400, "request body is not valid JSON");
    }
    sc_jw *w = sc_api_begin(req);
    sc_jw_key(w, "data");
    sc_jw_obj_begin(w);
    sc_jw_key(w, "bytes");
    sc_jw_uint(w, bytes);
    sc_jw_key(w, "json");
    if (doc) {
        sc_buf tmp = {0};
        json_dump_callback(doc, dump_cb, &tmp, JSON_COMPACT | JSON_ENCODE_ANY);
        sc_jw_raw(w, sc_buf_slice(&tmp));
        sc_buf_free(&tmp);
        json_decref(doc);
    } else {
        sc_jw_null(w);
    }
    sc_jw_obj_end(w);
    return sc_api_end(w, 200);
}

static const char *access_name(sc_gate gate)
{
    if (gate == SC_API_OPTIONAL)
        return "optional";
    if (gate == SC_API_USER)
        return "user";
    if (gate == SC_API_ADMIN)
        return "admin";
    return gate ? "other" : "public";
}

int sc_api_debug_routes(sc_req *req)
{
    size_t n;
    const sc_route *routes = sc_api_routes(sc_api_app(req), &n);
    sc_jw *w = sc_api_begin(req);
    sc_jw_key(w, "data");
    sc_jw_obj_begin(w);
    sc_jw_key(w, "routes");
    sc_jw_arr_begin(w);
    for (size_t i = 0; i < n; i++) {
        for (unsigned bit = 1; bit && bit <= routes[i].methods; bit <<= 1) {
            if (!(routes[i].methods & bit) || !sc_method_name(bit))
                continue;
            sc_jw_obj_begin(w);
            sc_jw_key(w, "method");
            sc_jw_cstr(w, sc_method_name(bit));
            sc_jw_key(w, "pattern");
            sc_jw_cstr(w, routes[i].pattern);
            sc_jw_key(w, "access");
            sc_jw_cstr(w, access_name(routes[i].gate));
            sc_jw_key(w, "stream");
            sc_jw_bool(w, (routes[i].flags & SC_ROUTE_STREAM_BODY) != 0);
            sc_jw_obj_end(w);
        }
    }
    sc_jw_arr_end(w);
    sc_jw_obj_end(w);
    return sc_api_end(w, 200);
}

typedef struct sleeper {
    uv_timer_t timer;
    sc_req *req; /* NULL once the request has ended */
    uint64_t ms;
} sleeper;

static void on_sleeper_closed(uv_handle_t *h) { free(h->data); }

/* The request ended (answered or abandoned): stop the timer; it frees itself once closed. */
static void sleeper_dispose(void *data)
{
    sleeper *s = data;
    s->req = NULL;
    uv_close((uv_handle_t *)&s->timer, on_sleeper_closed);
}

static void on_sleep_done(uv_timer_t *t)
{
    sleeper *s = t->data;
    sc_req *req = s->req;
    req->res.content_type = "application/json; charset=utf-8";
    sc_buf_printf(req->res.body, "{\"status\":\"success\",\"data\":{\"sleptMs\":%llu}}",
                  (unsigned long long)s->ms);
    sc_req_finish(req, 200);
}

int sc_api_debug_sleep(sc_req *req)
{
    sc_slice v;
    unsigned long long ms = 0;
    if (sc_req_query(req, "ms", &v) && sc_slice_to_u64(v, 600000, &ms) != 0)
        return sc_res_error(req, 400, "ms must be a whole number of milliseconds up to 600000");
    sleeper *s = sc_calloc(sizeof(*s));
    s->req = req;
    s->ms = ms;
    uv_timer_init(sc_server_loop(req->server), &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_sleep_done, ms, 0);
    sc_req_on_dispose(req, sleeper_dispose, s);
    return SC_ASYNC;
}

static void on_debug_db(sc_req *req, const char *err, PGresult *res)
{
    if (sc_api_db_failed(req, err, res))
        return;
    sc_req_finish(req, sc_api_data_str(req, 200, NULL, "tag", PQgetvalue(res, 0, 0)));
}

/* Runs one query that echoes `tag` after `sleep_ms` on the database, to test the pool under concurrency, slow
 * queries, timeouts and clients that leave mid-query. */
int sc_api_debug_db(sc_req *req)
{
    sc_slice tag = SC_SLICE_LIT(""), sleep = SC_SLICE_LIT("0");
    unsigned long long ms;
    sc_req_query(req, "tag", &tag);
    sc_req_query(req, "sleep_ms", &sleep);
    if (sc_slice_to_u64(sleep, 600000, &ms) != 0)
        return sc_res_error(req, 400, "sleep_ms must be a whole number of milliseconds up to 600000");
    SC_API_DB(req, SC_STMT_DEBUG_SLEEP, on_debug_db, tag.ptr, sleep.ptr);
    return SC_ASYNC;
}

/* ---- /_debug/upload: a streaming body sink that pauses now and then ----------------------------------------- */

typedef struct upload_probe {
    sc_req *req;
    uv_timer_t timer;
    bool timer_open;
    uint64_t bytes, limit, since_pause;
    uint64_t pauses;
} upload_probe;

static void on_probe_timer_closed(uv_handle_t *h) { free(h->data); }

static void on_probe_resume(uv_timer_t *t)
{
    upload_probe *u = t->data;
    sc_req_resume_body(u->req);
}

/* Counts bytes; every 64 KiB it stops reading for 5 ms (as a sink waiting for a disk would); beyond ?limit= it
 * rejects with 413. */
static int probe_data(void *ctx, const char *data, size_t len)
{
    upload_probe *u = ctx;
    u->bytes += len;
    u->since_pause += len;
    if (u->limit && u->bytes > u->limit)
        return 413;
    if (u->since_pause >= 64 * 1024) {
        u->since_pause = 0;
        u->pauses++;
        uv_timer_start(&u->timer, on_probe_resume, 5, 0);
        return SC_BODY_PAUSE;
    }
    return 0;
}

static void probe_end(void *ctx)
{
    upload_probe *u = ctx;
    sc_req *req = u->req;
    req->res.content_type = "application/json; charset=utf-8";
    sc_buf_printf(req->res.body, "{\"status\":\"success\",\"data\":{\"bytes\":%llu,\"pauses\":%llu}}",
                  (unsigned long long)u->bytes, (unsigned long long)u->pauses);
    sc_req_finish(req, 200);
}

static const sc_body_sink probe_sink = {probe_data, probe_end};

static void probe_dispose(void *data)
{
    upload_probe *u = data;
    uv_close((uv_handle_t *)&u->timer, on_probe_timer_closed);
}

int sc_api_debug_upload(sc_req *req)
{
    sc_slice v;
    unsigned long long limit = 0;
    if (sc_req_query(req, "limit", &v) && sc_slice_to_u64(v, UINT64_MAX, &limit) != 0)
        return sc_res_error(req, 400, "limit must be a whole number of bytes");
    if (sc_req_query(req, "reject", &v))
        return sc_res_error(req, 403, "rejected before reading the body");
    upload_probe *u = sc_calloc(sizeof(*u));
    u->req = req;
    u->limit = limit;
    uv_timer_init(sc_server_loop(req->server), &u->timer);
    u->timer.data = u;
    sc_req_on_dispose(req, probe_dispose, u);
    sc_req_stream_body(req, &probe_sink, u);
    return SC_ASYNC;
}
