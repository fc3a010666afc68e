/* Inside the PostgreSQL pool (not for callers, which see db/pg.h): the query, transaction, connection and pool
 * objects, and the calls between pg.c (queries, batches and their results, transactions, the pool) and pg_conn.c
 * (a connection's life: connect, session setup, socket events, breakage and reconnect with backoff). */
#ifndef SC_DB_PG_INTERNAL_H
#define SC_DB_PG_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "db/pg.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define TICK_MS 50

typedef enum {
    K_USER,     /* an application query outside transactions */
    K_TX_BEGIN, /* BEGIN, waiting for a connection of its own */
    K_TX_STMT,  /* a statement inside a transaction */
    K_TX_END,   /* COMMIT or ROLLBACK */
    K_SETUP,    /* session setup and statement preparation */
    K_VERSION,  /* the schema version check */
    K_SYNC,     /* a Sync marker */
} item_kind;

typedef struct pg_conn pg_conn;

struct sc_pg_query {
    sc_pg_query *prev, *next; /* pending queue, or connection FIFO (next only) */
    sc_pg_pool *pool;
    item_kind kind;
    int stmt;        /* prepared statement index, or -1 with sql */
    const char *sql; /* points into `block` or a static string */
    int nparams;
    const char **values;
    char *block; /* owned copies of sql and parameter values */
    sc_pg_cb cb;
    sc_pg_tx_cb tx_cb;
    void *data;
    sc_pg_tx *tx;
    uint64_t deadline;
    PGresult *result;
    const char *err; /* for deferred delivery */
    bool queued;     /* in the pending queue */
    bool sent;
    bool isolate; /* sent again after a failed batch: in a batch of its own */
};

struct sc_pg_tx {
    sc_pg_pool *pool;
    pg_conn *conn;
    bool failed;
};

typedef enum { PC_DOWN, PC_CONNECTING, PC_SETUP, PC_READY, PC_CLOSED } conn_state;

struct pg_conn {
    sc_pg_pool *pool;
    int index;
    PGconn *pg;
    uv_poll_t *poll;
    int fd;
    int events;
    uv_timer_t timer; /* reconnect backoff and connect timeout */
    conn_state state;
    sc_pg_query *head, *tail;
    sc_pg_query *batch_head, *batch_tail; /* answered queries of the batch whose Sync is awaited */
    bool batch_error;                     /* a query of that batch failed, so the batch rolled back */
    unsigned depth;                       /* user queries in flight */
    bool need_sync;
    bool reserved; /* draining to be pinned by a waiting transaction */
    sc_pg_tx *pinned;
    uint64_t backoff_ms;
    bool ever_up;
};

struct sc_pg_pool {
    uv_loop_t *loop;
    sc_pg_config cfg;
    char *conninfo;
    const sc_pg_stmt *stmts;
    size_t nstmts;
    pg_conn *conns;
    sc_pg_query *pending_head, *pending_tail;
    uint64_t npending;
    uint64_t ntx_waiting; /* BEGINs in the pending queue */
    sc_pg_query *deferred_head, *deferred_tail;
    uv_prepare_t prepare;
    uv_timer_t tick;
    uint64_t outstanding;
    bool closing, schema_too_new;
    unsigned open_handles;
    void (*on_closed)(void *data);
    void *on_closed_data;
    sc_pg_stats stats;
};

/* pg.c */
/* A query, Sync or setup item with owned copies of its SQL and parameters. */
sc_pg_query *sc_pg_item_new(sc_pg_pool *p, item_kind kind, int stmt, const char *sql, int nparams,
                            const char *const *values);
/* Frees an item and its result. */
void sc_pg_item_free(sc_pg_query *q);
/* Takes a query out of the pool's pending queue. */
void sc_pg_pending_remove(sc_pg_pool *p, sc_pg_query *q);
/* Calls the query's callback with its result or err, then frees it. */
void sc_pg_deliver(sc_pg_query *q, const char *err);
/* Appends a sent item to the connection's FIFO of awaited answers. */
void sc_pg_fifo_push(pg_conn *c, sc_pg_query *q);
/* Sends an item in pipeline mode; 0 or -1 when libpq refused it. */
int sc_pg_send_item(pg_conn *c, sc_pg_query *q);
/* Whether a connection of the pool is on its way up (so waiting queries may still be served). */
bool sc_pg_any_connecting(const sc_pg_pool *p);
/* Consumes every result libpq has for the connection, settling batches at their Sync. */
void sc_pg_read_results(pg_conn *c);

/* pg_conn.c */
/* Close callback of a connection's poll handle (allocated per connect). */
void sc_pg_on_poll_closed(uv_handle_t *h);
/* The connection failed: its queries are failed or queued again, and it reconnects after a backoff. */
void sc_pg_conn_broken(pg_conn *c, const char *why);
/* Starts a non-blocking connect under the connect deadline. */
void sc_pg_conn_connect(pg_conn *c);
/* Sends what libpq holds for the socket; watches for writability while some remains. */
void sc_pg_conn_flush(pg_conn *c);
/* Close callbacks of a connection's timer and of the pool's own handles (the last one frees a closing pool). */
void sc_pg_on_conn_timer_closed(uv_handle_t *h);
void sc_pg_on_pool_handle_closed(uv_handle_t *h);

#endif
