/* Operational endpoints: liveness, readiness and metrics (routes in api/ops.h). */
#include "api/ops.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/db.h"
#include "api/media_cache.h"
#include "auth/password.h"
#include "core/buf.h"
#include "http/host.h"
#include "http/request.h"
#include "http/server.h"
#include "json/write.h"

static const char health_body[] = "{\"status\":\"success\",\"data\":{\"status\":\"ok\"}}";

int sc_api_health(sc_req *req)
{
    req->res.content_type = "application/json; charset=utf-8";
    sc_buf_append(req->res.body, health_body, sizeof(health_body) - 1);
    return 200;
}

#define METRICS_TOKEN_MIN 16

int sc_api_metrics_check(const sc_settings *st, char *err, size_t errlen)
{
    if (strcmp(st->metrics, "token") == 0 && strlen(st->metrics_token) < METRICS_TOKEN_MIN) {
        snprintf(err, errlen, "STACCATO_METRICS=token needs a STACCATO_METRICS_TOKEN of at least %d bytes",
                 METRICS_TOKEN_MIN);
        return -1;
    }
    return 0;
}

/* Whether given equals want, in a time that depends on given's length alone (which the sender knows), not on where
 * the two differ or on want's length. want is not empty (sc_api_metrics_check). */
static bool token_equal(sc_slice given, const char *want)
{
    size_t n = strlen(want);
    volatile unsigned char diff = given.len != n;
    for (size_t i = 0; i < given.len; i++)
        diff |= (unsigned char)(given.ptr[i] ^ want[i % n]);
    return diff == 0;
}

int sc_api_gate_metrics(sc_req *req)
{
    const sc_settings *st = sc_api_app(req)->settings;
    if (strcmp(st->metrics, "public") == 0)
        return 0;
    if (strcmp(st->metrics, "off") == 0)
        return sc_res_error(req, 404, "route not found");
    if (strcmp(st->metrics, "token") == 0) {
        sc_slice authz = sc_slice_trim(sc_req_header(req, "authorization"));
        if (authz.len > 7 && strncasecmp(authz.ptr, "Bearer ", 7) == 0 && *st->metrics_token &&
            token_equal(sc_slice_trim((sc_slice){authz.ptr + 7, authz.len - 7}), st->metrics_token))
            return 0;
        return sc_res_error(req, 403, "the metrics need the metrics token");
    }
    if (sc_req_client_local(req))
        return 0;
    return sc_res_error(req, 403, "the metrics are for local clients only");
}

int sc_api_metrics(sc_req *req)
{
    req->res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    sc_server_metrics_render(req->server, req->res.body);
    sc_media_cache_stats mc = sc_media_cache_get_stats(sc_api_app(req)->media);
    sc_buf_printf(req->res.body,
                  "# HELP staccato_media_cache_lookups_total Stream requests answered from the media cache (hit) "
                  "or "
                  "the database (miss).\n# TYPE staccato_media_cache_lookups_total counter\n"
                  "staccato_media_cache_lookups_total{result=\"hit\"} %llu\n"
                  "staccato_media_cache_lookups_total{result=\"miss\"} %llu\n"
                  "# HELP staccato_media_cache_entries Songs and albums in the media cache.\n"
                  "# TYPE staccato_media_cache_entries gauge\nstaccato_media_cache_entries %llu\n"
                  "# HELP staccato_media_cache_open_files Media files the media cache holds open.\n"
                  "# TYPE staccato_media_cache_open_files gauge\nstaccato_media_cache_open_files %llu\n"
                  "# HELP staccato_media_cache_notifications_total Notifications of changed songs and albums "
                  "received.\n# TYPE staccato_media_cache_notifications_total counter\n"
                  "staccato_media_cache_notifications_total %llu\n",
                  (unsigned long long)mc.hits, (unsigned long long)mc.misses, (unsigned long long)mc.entries,
                  (unsigned long long)mc.files, (unsigned long long)mc.notifications);
    sc_buf_printf(req->res.body,
                  "# HELP staccato_password_jobs Password hashes and checks on the threadpool (running) and "
                  "waiting "
                  "for a place (waiting).\n# TYPE staccato_password_jobs gauge\n"
                  "staccato_password_jobs{state=\"running\"} %u\nstaccato_password_jobs{state=\"waiting\"} %u\n",
                  sc_password_running(), sc_password_waiting());
    return 200;
}

static void on_ping(sc_req *req, const char *err, PGresult *res)
{
    sc_app *app = sc_api_app(req);
    bool db = err == NULL;
    bool cache = app->redis && sc_redis_connected(app->redis);
    req->res.content_type = "application/json; charset=utf-8";
    sc_jw w;
    sc_jw_init(&w, req->res.body);
    sc_jw_obj_begin(&w);
    sc_jw_key(&w, "status");
    sc_jw_cstr(&w, db ? "success" : "error");
    if (!db) {
        sc_jw_key(&w, "message");
        sc_jw_cstr(&w, "the database is unavailable");
    }
    sc_jw_key(&w, "data");
    sc_jw_obj_begin(&w);
    sc_jw_key(&w, "database");
    sc_jw_cstr(&w, db ? "up" : "down");
    sc_jw_key(&w, "redis");
    sc_jw_cstr(&w, cache ? "up" : "down");
    sc_jw_obj_end(&w);
    sc_jw_obj_end(&w);
    sc_req_finish(req, db ? 200 : 503);
}

int sc_api_ready(sc_req *req)
{
    sc_api_db(req, SC_STMT_PING, 0, NULL, on_ping);
    return SC_ASYNC;
}
