/* Database access for handlers: the one table of prepared statements, gathered from every resource's header, and
 * the calls that run them.
 *
 * Each resource header (api/<resource>.h) lists its statements as X(NAME, sql) rows in SC_STMTS_<RESOURCE>(X);
 * SC_API_STMTS below joins the lists into one enum (SC_STMT_NAME), which is also the index the pool prepares
 * them by ("s_NAME" on every pooled connection). A new statement therefore touches only its resource's header; a
 * new resource adds its list here once.
 *
 * Calls name their parameters and the compiler counts them: SC_API_DB(req, SC_STMT_X, on_done, a, b, c) builds the
 * array as a compound literal and takes its length from sizeof, so a list and its count cannot disagree. The
 * pool copies the values, so they may live on the caller's stack. */
#ifndef SC_API_DB_H
#define SC_API_DB_H

#include <stdbool.h>

#include "core/slice.h"
#include "db/pg.h"
#include "http/request.h"

#include "api/albums.h"
#include "api/authentications.h"
#include "api/collaborations.h"
#include "api/debug.h"
#include "api/export.h"
#include "api/genres.h"
#include "api/jobs.h"
#include "api/likes.h"
#include "api/ops.h"
#include "api/playlists.h"
#include "api/songs.h"
#include "api/stream.h"
#include "api/uploads.h"
#include "api/user_email.h"
#include "api/users.h"

/* Every prepared statement of the server, one list per resource. */
#define SC_API_STMTS(X)                                                                                           \
    SC_STMTS_OPS(X)                                                                                               \
    SC_STMTS_DEBUG(X)                                                                                             \
    SC_STMTS_USERS(X)                                                                                             \
    SC_STMTS_USER_EMAIL(X)                                                                                        \
    SC_STMTS_AUTHENTICATIONS(X)                                                                                   \
    SC_STMTS_ALBUMS(X)                                                                                            \
    SC_STMTS_SONGS(X)                                                                                             \
    SC_STMTS_GENRES(X)                                                                                            \
    SC_STMTS_PLAYLISTS(X)                                                                                         \
    SC_STMTS_COLLABORATIONS(X)                                                                                    \
    SC_STMTS_LIKES(X)                                                                                             \
    SC_STMTS_STREAM(X)                                                                                            \
    SC_STMTS_UPLOADS(X)                                                                                           \
    SC_STMTS_EXPORT(X)                                                                                            \
    SC_STMTS_JOBS(X)

/* The statement ids: indexes into sc_api_stmts, SC_STMT_COUNT of them. */
enum {
#define X(name, sql) SC_STMT_##name,
    SC_API_STMTS(X)
#undef X
        SC_STMT_COUNT
};

/* The statements by id, for sc_pg_pool_new: name "s_<NAME>" and text. */
extern const sc_pg_stmt sc_api_stmts[];

/* The text parameters of a query as an array (a compound literal: it lives until the end of the enclosing block,
 * which is long enough, since the pool copies them). */
#define SC_API_VALUES(...) ((const char *const[]){__VA_ARGS__})
/* How many values SC_API_VALUES(...) holds, as the int libpq wants. */
#define SC_API_NVALUES(...) ((int)(sizeof(SC_API_VALUES(__VA_ARGS__)) / sizeof(const char *)))

/* Runs statement stmt for a request with the parameters that follow cb (at least one; a statement without
 * parameters is called as sc_api_db(req, stmt, 0, NULL, cb)). */
#define SC_API_DB(req, stmt, cb, ...)                                                                             \
    sc_api_db(req, stmt, SC_API_NVALUES(__VA_ARGS__), SC_API_VALUES(__VA_ARGS__), cb)
/* The same for work that is not a request's (a cache refill, a job, an upload's commit): sc_pg_exec on pool. */
#define SC_API_PG_EXEC(pool, stmt, cb, data, ...)                                                                 \
    sc_pg_exec(pool, stmt, SC_API_NVALUES(__VA_ARGS__), SC_API_VALUES(__VA_ARGS__), cb, data)
/* The same inside a transaction: sc_pg_tx_exec on tx. */
#define SC_API_TX_EXEC(tx, stmt, cb, data, ...)                                                                   \
    sc_pg_tx_exec(tx, stmt, SC_API_NVALUES(__VA_ARGS__), SC_API_VALUES(__VA_ARGS__), cb, data)

/* The same on a blocking connection of its own (the startup sweep on the threadpool, the command line):
 * PQexecParams with text parameters and a text result. */
#define SC_API_PQ_EXEC(conn, sql, ...)                                                                            \
    PQexecParams(conn, sql, SC_API_NVALUES(__VA_ARGS__), NULL, SC_API_VALUES(__VA_ARGS__), NULL, NULL, 0)

/* Called with the request when its query completes (never after the request has ended). */
typedef void (*sc_api_db_cb)(sc_req *req, const char *err, PGresult *res);

/* Runs a prepared statement for a request and ties the query to it: a request that ends early (the client went
 * away) cancels its query. Called through SC_API_DB, or directly where the values are gathered at run time. */
void sc_api_db(sc_req *req, int stmt, int nparams, const char *const *values, sc_api_db_cb cb);

/* Answers a failed query: 503 when the database is unavailable or busy, 504 on timeout, 500 otherwise (logged;
 * nothing internal reaches the client). Returns the status. */
int sc_api_db_error(sc_req *req, const char *err, PGresult *res);
/* Finishes an asynchronous request with sc_api_db_error's answer. */
void sc_api_db_finish_error(sc_req *req, const char *err, PGresult *res);
/* For query callbacks: when err is set, finishes the request with sc_api_db_error's answer and returns true, so
 * that a callback opens with `if (sc_api_db_failed(req, err, res)) return;`. */
bool sc_api_db_failed(sc_req *req, const char *err, PGresult *res);

/* Whether err is a query error with SQLSTATE state ("23505": unique violation, "23503": foreign key). */
bool sc_api_db_sqlstate(const char *err, PGresult *res, const char *state);
/* Whether column col of the first row is the boolean true. */
bool sc_api_db_true(PGresult *res, int col);
/* Column col of the first row as a slice (its bytes stay in res). */
sc_slice sc_api_db_col(PGresult *res, int col);
/* Column col of the first row as a count (0 when it is not a number). */
unsigned long long sc_api_db_count(PGresult *res, int col);
/* Whether an UPDATE or DELETE changed no row. */
bool sc_api_db_none_changed(PGresult *res);
/* The outcome of an UPDATE or DELETE of one row: the failed query answered (sc_api_db_error), 404 not_found when
 * it changed no row, or 0 to go on. */
int sc_api_db_changed(sc_req *req, const char *err, PGresult *res, const char *not_found);

#endif
