#include "api/db.h"

#include "api/api.h"
#include "core/log.h"

#include <string.h>

const sc_pg_stmt sc_api_stmts[] = {
#define X(name, sql) {"s_" #name, sql},
    SC_API_STMTS(X)
#undef X
};

typedef struct db_call {
    sc_req *req;
    sc_pg_query *query; /* NULL once completed */
    sc_api_db_cb cb;
} db_call;

static void on_request_gone(void *data)
{
    db_call *call = data;
    if (call->query)
        sc_pg_cancel(call->query);
    call->query = NULL;
}

static void on_result(void *data, const char *err, PGresult *res)
{
    db_call *call = data;
    call->query = NULL;
    call->cb(call->req, err, res);
}

void sc_api_db(sc_req *req, int stmt, int nparams, const char *const *values, sc_api_db_cb cb)
{
    sc_app *app = req->app;
    db_call *call = sc_arena_alloc(req->arena, sizeof(*call));
    call->req = req;
    call->cb = cb;
    sc_req_on_dispose(req, on_request_gone, call);
    call->query = sc_pg_exec(app->pg, stmt, nparams, values, on_result, call);
}

int sc_api_db_error(sc_req *req, const char *err, PGresult *res)
{
    /* 57014: the server's statement_timeout fired before our own deadline did. */
    if (err == SC_PG_ERR_TIMEOUT || (err == SC_PG_ERR_QUERY && strcmp(sc_pg_sqlstate(res), "57014") == 0))
        return sc_res_error(req, 504, "the database did not answer in time");
    if (err == SC_PG_ERR_QUERY) {
        sc_log_error("query failed for %.*s %.*s: %s", (int)req->method_name.len, req->method_name.ptr,
                     (int)req->path.len, req->path.ptr, res ? PQresultErrorMessage(res) : "no result");
        return sc_res_error(req, 500, NULL);
    }
    return sc_res_error(req, 503, "the database is unavailable");
}
