/* Operational endpoints: liveness and metrics. */
#include "api/api.h"
#include "api/db.h"
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

int sc_api_metrics(sc_req *req)
{
    req->res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    sc_server_metrics_render(req->server, req->res.body);
    return 200;
}

static void on_ping(sc_req *req, const char *err, PGresult *res)
{
    sc_app *app = req->app;
    (void)res;
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
