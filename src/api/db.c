/* The prepared statements' table and the database calls of handlers (api/db.h): a query tied to its request, the
 * answers to failed queries, and readers of the one-row results most statements give. */
#include "api/db.h"

#include <string.h>

#include "api/api.h"
#include "core/log.h"

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
    db_call *call = sc_arena_alloc(req->arena, sizeof(*call));
    call->req = req;
    call->cb = cb;
    sc_req_on_dispose(req, on_request_gone, call);
    call->query = sc_pg_exec(sc_api_app(req)->pg, stmt, nparams, values, on_result, call);
}

int sc_api_db_error(sc_req *req, const char *err, PGresult *res)
{
    /* 57014: the server's statement_timeout fired before our own deadline did. */
    if (err == SC_PG_ERR_TIMEOUT || sc_api_db_sqlstate(err, res, "57014"))
        return sc_res_error(req, 504, "the database did not answer in time");
    if (err == SC_PG_ERR_QUERY) {
        sc_log_error("query failed for %.*s %.*s: %s", (int)req->method_name.len, req->method_name.ptr,
                     (int)req->path.len, req->path.ptr, res ? PQresultErrorMessage(res) : "no result");
        return sc_res_error(req, 500, NULL);
    }
    return sc_res_error(req, 503, "the database is unavailable");
}

void sc_api_db_finish_error(sc_req *req, const char *err, PGresult *res)
{
    sc_req_finish(req, sc_api_db_error(req, err, res));
}

bool sc_api_db_failed(sc_req *req, const char *err, PGresult *res)
{
    if (!err)
        return false;
    sc_api_db_finish_error(req, err, res);
    return true;
}

bool sc_api_db_sqlstate(const char *err, PGresult *res, const char *state)
{
    return err == SC_PG_ERR_QUERY && strcmp(sc_pg_sqlstate(res), state) == 0;
}

bool sc_api_db_true(PGresult *res, int col) { return PQgetvalue(res, 0, col)[0] == 't'; }

sc_slice sc_api_db_col(PGresult *res, int col)
{
    return (sc_slice){PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col)};
}

unsigned long long sc_api_db_count(PGresult *res, int col)
{
    unsigned long long n = 0;
    if (sc_slice_to_u64(sc_api_db_col(res, col), UINT64_MAX, &n) != 0)
        n = 0;
    return n;
}

bool sc_api_db_none_changed(PGresult *res) { return strcmp(PQcmdTuples(res), "0") == 0; }

int sc_api_db_changed(sc_req *req, const char *err, PGresult *res, const char *not_found)
{
    if (err)
        return sc_api_db_error(req, err, res);
    return sc_api_db_none_changed(res) ? sc_res_error(req, 404, not_found) : 0;
}
