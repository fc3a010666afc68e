/* An asynchronous PostgreSQL connection pool on the event loop.
 *
 * Every connection runs in libpq's pipeline mode: queries are sent as they come and many are in flight per
 * connection at once; the Sync that ends each batch is sent once per loop iteration, so the queries of all the
 * requests that arrived together share one write and one round trip. Queries use prepared statements from a table
 * the application hands in (prepared on every connection as it comes up) or parameterised SQL; parameters only,
 * never SQL built from strings.
 *
 * When every connection is busy, queries wait in a bounded queue (full: SC_PG_ERR_BUSY at once). When no
 * connection is up, queries fail at once with SC_PG_ERR_UNAVAILABLE: a request should answer 503 quickly, not
 * hang while the database is away. Connections reconnect with exponential backoff and re-prepare. Every query has
 * a deadline (SC_PG_ERR_TIMEOUT); the server-side statement_timeout is set to the same value so that the database
 * also abandons it.
 *
 * Callbacks are never called from inside the call that submits the query, and never after sc_pg_cancel. */
#ifndef SC_DB_PG_H
#define SC_DB_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Error sentinels passed as `err` to callbacks; compare by pointer. */
extern const char SC_PG_ERR_UNAVAILABLE[]; /* no connection to the database */
extern const char SC_PG_ERR_BUSY[];        /* the wait queue is full */
extern const char SC_PG_ERR_TIMEOUT[];     /* the query's deadline passed */
extern const char SC_PG_ERR_QUERY[];       /* the database answered with an error; res holds it */
extern const char SC_PG_ERR_SHUTDOWN[];    /* the pool is closing */

typedef struct sc_pg_stmt {
    const char *name;
    const char *sql;
} sc_pg_stmt;

typedef struct sc_pg_config {
    const char *conninfo;    /* a libpq connection string or URL; empty: libpq's PG* variables */
    unsigned pool_size;      /* connections */
    unsigned max_queue;      /* queries waiting for a connection */
    unsigned pipeline_depth; /* queries in flight per connection */
    uint64_t query_timeout_ms;
    uint64_t connect_timeout_ms;
    int64_t max_schema_version; /* refuse a database migrated beyond this (0: no check) */
} sc_pg_config;

typedef struct sc_pg_pool sc_pg_pool;
typedef struct sc_pg_query sc_pg_query;
typedef struct sc_pg_tx sc_pg_tx;

/* Called once per query. err is NULL on success. res (owned by the pool, valid during the call only) holds the
 * rows, or the error result with SC_PG_ERR_QUERY (see sc_pg_sqlstate); it is NULL for the other errors. */
typedef void (*sc_pg_cb)(void *data, const char *err, PGresult *res);

sc_pg_pool *sc_pg_pool_new(uv_loop_t *loop, const sc_pg_config *cfg, const sc_pg_stmt *stmts, size_t nstmts);

/* Runs prepared statement `stmt` (an index into the table) with text parameters (NULL values are SQL NULL).
 * Parameters are copied. Returns a handle for sc_pg_cancel. */
sc_pg_query *sc_pg_exec(sc_pg_pool *p, int stmt, int nparams, const char *const *values, sc_pg_cb cb, void *data);
/* Same with SQL text instead of a prepared statement. */
sc_pg_query *sc_pg_exec_sql(sc_pg_pool *p, const char *sql, int nparams, const char *const *values, sc_pg_cb cb,
                            void *data);
/* The callback will not be called. Safe from any callback; a query already sent still runs to its end and its
 * result is dropped. */
void sc_pg_cancel(sc_pg_query *q);

/* Transactions pin one connection until sc_pg_tx_end. begin's callback receives the transaction (NULL on error).
 * Statements run in order; after an error the transaction only accepts sc_pg_tx_end, which then rolls back. */
typedef void (*sc_pg_tx_cb)(void *data, const char *err, sc_pg_tx *tx);
sc_pg_query *sc_pg_tx_begin(sc_pg_pool *p, sc_pg_tx_cb cb, void *data);
sc_pg_query *sc_pg_tx_exec(sc_pg_tx *tx, int stmt, int nparams, const char *const *values, sc_pg_cb cb,
                           void *data);
sc_pg_query *sc_pg_tx_exec_sql(sc_pg_tx *tx, const char *sql, int nparams, const char *const *values, sc_pg_cb cb,
                               void *data);
/* Commits (commit true) or rolls back and releases the connection; cb (may be NULL) gets the COMMIT's outcome.
 * After this call tx is gone. */
void sc_pg_tx_end(sc_pg_tx *tx, bool commit, sc_pg_cb cb, void *data);

/* The SQLSTATE of an error result ("23505" for a unique violation), or "". */
const char *sc_pg_sqlstate(const PGresult *res);

/* Whether at least one connection is up and ready. */
bool sc_pg_pool_ready(const sc_pg_pool *p);
/* Whether the database turned out to be migrated beyond what this build knows (serving must stop). */
bool sc_pg_pool_schema_too_new(const sc_pg_pool *p);

typedef struct sc_pg_stats {
    unsigned connections_ready, connections_total;
    uint64_t queued, in_flight;
    uint64_t queries, errors, timeouts, rejected, reconnects;
} sc_pg_stats;
void sc_pg_pool_stats(const sc_pg_pool *p, sc_pg_stats *out);

/* Fails everything pending with SC_PG_ERR_SHUTDOWN, closes every connection, and calls on_closed when all
 * handles are closed; the pool is freed then. */
void sc_pg_pool_close(sc_pg_pool *p, void (*on_closed)(void *data), void *data);

#endif
