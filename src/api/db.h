/* Database access for handlers: the prepared statements of the API, and a call that ties a query to a request so
 * that a request that ends early (the client went away) cancels its query. */
#ifndef SC_API_DB_H
#define SC_API_DB_H

#include "db/pg.h"
#include "http/request.h"

#include "api/sql_catalog.h"
#include "api/sql_jobs.h"
#include "api/sql_playlists.h"
#include "api/sql_social.h"
#include "api/sql_stream.h"
#include "api/sql_upload.h"
#include "api/sql_users.h"

/* Prepared statements, prepared on every pooled connection: one list per resource, joined here. */
#define SC_STMTS_OPS(X)                                                                                           \
    X(PING, "SELECT 1")                                                                                           \
    X(DEBUG_SLEEP, "SELECT $1::text, pg_sleep($2::float8 / 1000)")

#define SC_API_STMTS(X) SC_STMTS_OPS(X) SC_STMTS_USERS(X) SC_STMTS_CATALOG(X) SC_STMTS_PLAYLISTS(X) SC_STMTS_SOCIAL(X)        \
    SC_STMTS_STREAM(X) SC_STMTS_UPLOAD(X) SC_STMTS_JOBS(X)

enum {
#define X(name, sql) SC_STMT_##name,
    SC_API_STMTS(X)
#undef X
        SC_STMT_COUNT
};

extern const sc_pg_stmt sc_api_stmts[];

/* Called with the request when its query completes (never after the request has ended). */
typedef void (*sc_api_db_cb)(sc_req *req, const char *err, PGresult *res);

/* Runs a prepared statement for a request. */
void sc_api_db(sc_req *req, int stmt, int nparams, const char *const *values, sc_api_db_cb cb);

/* Answers a failed query: 503 when the database is unavailable or busy, 504 on timeout, 500 otherwise (logged;
 * nothing internal reaches the client). Returns the status. */
int sc_api_db_error(sc_req *req, const char *err, PGresult *res);

#endif
