/* The PostgreSQL pool: libpq's non-blocking connect and pipeline mode driven by uv_poll.
 *
 * Each connection keeps a FIFO of what it has sent and awaits: queries, and the Sync markers that end each batch.
 * libpq returns, for every query, its result(s) followed by NULL; for every Sync a PGRES_PIPELINE_SYNC result.
 *
 * The queries of one batch run in one implicit transaction that commits at the Sync. An error aborts the queries
 * behind it (PGRES_PIPELINE_ABORTED) and rolls back the ones before it, even though their results already arrived.
 * So results are held until the batch's Sync: a clean batch is delivered; in a failed batch only the failing query
 * gets its error, and every other query (rolled back or never run) is sent again. Each retry round loses at least
 * the failing query, so it ends.
 *
 * The uv_prepare handle runs right before the loop polls: it delivers failures that must not be reported from
 * inside the submitting call, and sends one Sync on each connection that has unsynced queries. */
#include "db/pg.h"
#include "db/pg_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

const char SC_PG_ERR_UNAVAILABLE[] = "database unavailable";
const char SC_PG_ERR_BUSY[] = "database busy";
const char SC_PG_ERR_TIMEOUT[] = "database query timed out";
const char SC_PG_ERR_QUERY[] = "database query failed";
const char SC_PG_ERR_SHUTDOWN[] = "database pool closing";

static void pump(sc_pg_pool *p);
static void on_tick(uv_timer_t *t);
/* ---- items -------------------------------------------------------------------------------------------------- */

sc_pg_query *sc_pg_item_new(sc_pg_pool *p, item_kind kind, int stmt, const char *sql, int nparams,
                            const char *const *values)
{
    size_t size = sql ? strlen(sql) + 1 : 0;
    for (int i = 0; i < nparams; i++)
        size += values[i] ? strlen(values[i]) + 1 : 0;
    sc_pg_query *q = sc_calloc(sizeof(*q) + sizeof(char *) * (size_t)nparams);
    q->values = (const char **)(q + 1);
    q->block = size ? sc_alloc(size) : NULL;
    char *w = q->block;
    if (sql) {
        size_t n = strlen(sql) + 1;
        memcpy(w, sql, n);
        q->sql = w;
        w += n;
    }
    for (int i = 0; i < nparams; i++) {
        if (!values[i]) {
            q->values[i] = NULL;
            continue;
        }
        size_t n = strlen(values[i]) + 1;
        memcpy(w, values[i], n);
        q->values[i] = w;
        w += n;
    }
    q->pool = p;
    q->kind = kind;
    q->stmt = stmt;
    q->nparams = nparams;
    q->deadline = uv_now(p->loop) + p->cfg.query_timeout_ms;
    return q;
}

void sc_pg_item_free(sc_pg_query *q)
{
    if (q->result)
        PQclear(q->result);
    free(q->block);
    free(q);
}

static void outstanding_add(sc_pg_pool *p)
{
    if (p->outstanding++ == 0 && !p->closing)
        uv_timer_start(&p->tick, on_tick, TICK_MS, TICK_MS);
}

static void outstanding_done(sc_pg_pool *p)
{
    if (--p->outstanding == 0)
        uv_timer_stop(&p->tick);
}

static void pending_push(sc_pg_pool *p, sc_pg_query *q, bool front)
{
    q->queued = true;
    if (front) {
        q->prev = NULL;
        q->next = p->pending_head;
        if (p->pending_head)
            p->pending_head->prev = q;
        else
            p->pending_tail = q;
        p->pending_head = q;
    } else {
        q->next = NULL;
        q->prev = p->pending_tail;
        if (p->pending_tail)
            p->pending_tail->next = q;
        else
            p->pending_head = q;
        p->pending_tail = q;
    }
    p->npending++;
    p->ntx_waiting += q->kind == K_TX_BEGIN;
}

void sc_pg_pending_remove(sc_pg_pool *p, sc_pg_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        p->pending_head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        p->pending_tail = q->prev;
    q->prev = q->next = NULL;
    q->queued = false;
    p->npending--;
    p->ntx_waiting -= q->kind == K_TX_BEGIN;
}

/* Queues a failure to be reported from the prepare phase, outside the caller's stack. */
static void defer_fail(sc_pg_pool *p, sc_pg_query *q, const char *err)
{
    q->err = err;
    q->next = NULL;
    if (p->deferred_tail)
        p->deferred_tail->next = q;
    else
        p->deferred_head = q;
    p->deferred_tail = q;
}

/* Reports an outcome to the owner of a query and frees it. */
void sc_pg_deliver(sc_pg_query *q, const char *err)
{
    sc_pg_pool *p = q->pool;
    if (err && err != SC_PG_ERR_SHUTDOWN)
        p->stats.errors++;
    if (q->tx && err && q->kind != K_TX_BEGIN)
        q->tx->failed = true;
    if (q->kind == K_TX_BEGIN) {
        sc_pg_tx *tx = q->tx;
        if (err) {
            if (tx && tx->conn) {
                tx->conn->pinned = NULL;
            }
            free(tx);
            tx = NULL;
        }
        if (q->tx_cb)
            q->tx_cb(q->data, err, tx);
        else if (tx)
            sc_pg_tx_end(tx, false, NULL, NULL); /* begun for an owner that has gone */
    } else if (q->cb) {
        q->cb(q->data, err, q->result);
    }
    outstanding_done(p);
    sc_pg_item_free(q);
}

static bool result_ok(const PGresult *r)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY;
}

const char *sc_pg_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

/* An error result that says the server is going away (class 57P: admin or crash shutdown, cannot connect now) or
 * the connection broke (class 08) is the database being unavailable, not a failed query. */
static const char *error_of(const PGresult *r)
{
    const char *state = sc_pg_sqlstate(r);
    if (strncmp(state, "57P", 3) == 0 || strncmp(state, "08", 2) == 0 || !r)
        return SC_PG_ERR_UNAVAILABLE;
    return SC_PG_ERR_QUERY;
}

/* ---- sending ------------------------------------------------------------------------------------------------ */

void sc_pg_fifo_push(pg_conn *c, sc_pg_query *q)
{
    q->next = NULL;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
}

int sc_pg_send_item(pg_conn *c, sc_pg_query *q)
{
    int ok;
    if (q->stmt >= 0)
        ok = PQsendQueryPrepared(c->pg, c->pool->stmts[q->stmt].name, q->nparams, q->values, NULL, NULL, 0);
    else
        ok = PQsendQueryParams(c->pg, q->sql, q->nparams, NULL, q->values, NULL, NULL, 0);
    if (!ok)
        return -1;
    q->sent = true;
    sc_pg_fifo_push(c, q);
    c->need_sync = true;
    if (q->kind == K_USER || q->kind == K_TX_STMT || q->kind == K_TX_BEGIN || q->kind == K_TX_END)
        c->depth++;
    if (q->isolate) {
        /* A retried query gets a Sync of its own: if its batch fails again, it cannot take others along, and
         * a run of failing queries costs one round each instead of a round per failure for every query. */
        if (PQpipelineSync(c->pg)) {
            sc_pg_fifo_push(c, sc_pg_item_new(c->pool, K_SYNC, -1, NULL, 0, NULL));
            c->need_sync = false;
            sc_pg_conn_flush(c); /* a broken connection is found here, and its FIFO (this query too) is failed */
        }                        /* else the prepare phase's Sync finds the broken connection */
    }
    return 0;
}

static pg_conn *pick_conn(sc_pg_pool *p)
{
    pg_conn *best = NULL;
    for (unsigned i = 0; i < p->cfg.pool_size; i++) {
        pg_conn *c = &p->conns[i];
        if (c->state != PC_READY || c->pinned || c->reserved || c->depth >= p->cfg.pipeline_depth)
            continue;
        if (!best || c->depth < best->depth)
            best = c;
    }
    return best;
}

/* A waiting transaction gets a connection of its own: one already idle, else the least busy one stops taking
 * new queries until it drains. */
static pg_conn *pin_conn(sc_pg_pool *p)
{
    pg_conn *least = NULL;
    for (unsigned i = 0; i < p->cfg.pool_size; i++) {
        pg_conn *c = &p->conns[i];
        if (c->state != PC_READY || c->pinned)
            continue;
        if (c->depth == 0 && c->head == NULL)
            return c;
        if (c->reserved)
            return NULL; /* one is already draining for us */
        if (!least || c->depth < least->depth)
            least = c;
    }
    if (least)
        least->reserved = true;
    return NULL;
}

static void pump(sc_pg_pool *p)
{
    sc_pg_query *q = p->pending_head;
    while (q) {
        sc_pg_query *next = q->next;
        pg_conn *c = q->kind == K_TX_BEGIN ? pin_conn(p) : pick_conn(p);
        if (c) {
            sc_pg_pending_remove(p, q);
            if (q->kind == K_TX_BEGIN) {
                c->reserved = false;
                c->pinned = q->tx;
                q->tx->conn = c;
            }
            if (sc_pg_send_item(c, q) != 0) {
                defer_fail(p, q, SC_PG_ERR_UNAVAILABLE);
                sc_pg_conn_broken(c, PQerrorMessage(c->pg));
            }
        } else if (q->kind != K_TX_BEGIN && p->ntx_waiting == 0) {
            break; /* every connection is full: the queries behind this one cannot go either */
        }
        q = next;
    }
}

bool sc_pg_any_connecting(const sc_pg_pool *p)
{
    for (unsigned i = 0; i < p->cfg.pool_size; i++)
        if (p->conns[i].state == PC_CONNECTING || p->conns[i].state == PC_SETUP)
            return true;
    return false;
}

static sc_pg_query *submit(sc_pg_pool *p, sc_pg_query *q)
{
    p->stats.queries++;
    outstanding_add(p);
    if (p->closing) {
        defer_fail(p, q, SC_PG_ERR_SHUTDOWN);
    } else if (!sc_pg_pool_ready(p) && !sc_pg_any_connecting(p)) {
        p->stats.rejected++;
        defer_fail(p, q, SC_PG_ERR_UNAVAILABLE);
    } else if (p->npending >= p->cfg.max_queue) {
        p->stats.rejected++;
        defer_fail(p, q, SC_PG_ERR_BUSY);
    } else {
        pending_push(p, q, false);
        pump(p);
    }
    return q;
}

sc_pg_query *sc_pg_exec(sc_pg_pool *p, int stmt, int nparams, const char *const *values, sc_pg_cb cb, void *data)
{
    sc_pg_query *q = sc_pg_item_new(p, K_USER, stmt, NULL, nparams, values);
    q->cb = cb;
    q->data = data;
    return submit(p, q);
}

sc_pg_query *sc_pg_exec_sql(sc_pg_pool *p, const char *sql, int nparams, const char *const *values, sc_pg_cb cb,
                            void *data)
{
    sc_pg_query *q = sc_pg_item_new(p, K_USER, -1, sql, nparams, values);
    q->cb = cb;
    q->data = data;
    return submit(p, q);
}

void sc_pg_cancel(sc_pg_query *q)
{
    if (!q)
        return;
    q->cb = NULL;
    q->tx_cb = NULL;
    if (q->queued) {
        sc_pg_pool *p = q->pool;
        sc_pg_pending_remove(p, q);
        if (q->kind == K_TX_BEGIN)
            free(q->tx);
        outstanding_done(p);
        sc_pg_item_free(q);
    }
}

/* ---- transactions ------------------------------------------------------------------------------------------- */

sc_pg_query *sc_pg_tx_begin(sc_pg_pool *p, sc_pg_tx_cb cb, void *data)
{
    sc_pg_query *q = sc_pg_item_new(p, K_TX_BEGIN, -1, "BEGIN", 0, NULL);
    q->tx_cb = cb;
    q->data = data;
    q->tx = sc_calloc(sizeof(sc_pg_tx));
    q->tx->pool = p;
    return submit(p, q);
}

static sc_pg_query *tx_submit(sc_pg_tx *tx, sc_pg_query *q)
{
    sc_pg_pool *p = tx->pool;
    p->stats.queries++;
    outstanding_add(p);
    q->tx = tx;
    if (!tx->conn || p->closing) {
        defer_fail(p, q, p->closing ? SC_PG_ERR_SHUTDOWN : SC_PG_ERR_UNAVAILABLE);
    } else if (sc_pg_send_item(tx->conn, q) != 0) {
        defer_fail(p, q, SC_PG_ERR_UNAVAILABLE);
        sc_pg_conn_broken(tx->conn, PQerrorMessage(tx->conn->pg));
    }
    return q;
}

sc_pg_query *sc_pg_tx_exec(sc_pg_tx *tx, int stmt, int nparams, const char *const *values, sc_pg_cb cb, void *data)
{
    sc_pg_query *q = sc_pg_item_new(tx->pool, K_TX_STMT, stmt, NULL, nparams, values);
    q->cb = cb;
    q->data = data;
    return tx_submit(tx, q);
}

sc_pg_query *sc_pg_tx_exec_sql(sc_pg_tx *tx, const char *sql, int nparams, const char *const *values, sc_pg_cb cb,
                               void *data)
{
    sc_pg_query *q = sc_pg_item_new(tx->pool, K_TX_STMT, -1, sql, nparams, values);
    q->cb = cb;
    q->data = data;
    return tx_submit(tx, q);
}

void sc_pg_tx_end(sc_pg_tx *tx, bool commit, sc_pg_cb cb, void *data)
{
    bool failed = tx->failed;
    sc_pg_query *q = sc_pg_item_new(tx->pool, K_TX_END, -1, commit && !failed ? "COMMIT" : "ROLLBACK", 0, NULL);
    q->cb = cb;
    q->data = data;
    q->tx = NULL; /* the transaction object goes now; the item remembers the connection */
    sc_pg_pool *p = tx->pool;
    pg_conn *c = tx->conn;
    p->stats.queries++;
    outstanding_add(p);
    if (c)
        c->pinned = NULL;
    free(tx);
    if (!c || p->closing) {
        defer_fail(p, q, p->closing ? SC_PG_ERR_SHUTDOWN : SC_PG_ERR_UNAVAILABLE);
        return;
    }
    /* Keep the connection from taking other work until ROLLBACK/COMMIT is answered. */
    c->reserved = true;
    if (sc_pg_send_item(c, q) != 0) {
        defer_fail(p, q, SC_PG_ERR_UNAVAILABLE);
        sc_pg_conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    if (commit && failed)
        q->err = SC_PG_ERR_QUERY; /* reported when the ROLLBACK completes */
}

/* ---- results ------------------------------------------------------------------------------------------------ */

static void conn_ready(pg_conn *c)
{
    sc_pg_pool *p = c->pool;
    if (!c->ever_up || c->backoff_ms > BACKOFF_MIN_MS)
        sc_log_info("database connection %d ready", c->index);
    uv_timer_stop(&c->timer);
    c->state = PC_READY;
    c->ever_up = true;
    c->backoff_ms = 0;
    pump(p);
}

/* One item's results are complete. Returns false when the connection was torn down. */
static bool complete(pg_conn *c, sc_pg_query *q)
{
    sc_pg_pool *p = c->pool;
    if (q->kind == K_USER || q->kind == K_TX_STMT || q->kind == K_TX_BEGIN || q->kind == K_TX_END)
        c->depth--;
    switch (q->kind) {
    case K_SETUP:
    case K_VERSION: {
        bool ok = result_ok(q->result);
        if (ok && q->kind == K_VERSION && p->cfg.max_schema_version > 0) {
            long long v = PQntuples(q->result) ? strtoll(PQgetvalue(q->result, 0, 0), NULL, 10) : 0;
            if (v > p->cfg.max_schema_version) {
                sc_log_error("database schema version %lld is newer than this build knows (%lld): refusing to "
                             "serve; upgrade staccato",
                             v, (long long)p->cfg.max_schema_version);
                p->schema_too_new = true;
            } else if (v < p->cfg.max_schema_version) {
                sc_log_error("database schema version %lld is older than this build needs (%lld): run staccato "
                             "migrate",
                             v, (long long)p->cfg.max_schema_version);
                ok = false;
            }
        }
        if (!ok || p->schema_too_new) {
            if (q->result && PQresultStatus(q->result) != PGRES_PIPELINE_ABORTED)
                sc_log_warn("database connection %d setup failed: %s", c->index,
                            q->result ? PQresultErrorMessage(q->result) : "no result");
            sc_pg_item_free(q);
            sc_pg_conn_broken(c, NULL);
            return false;
        }
        sc_pg_item_free(q);
        return true;
    }
    case K_TX_END:
        c->reserved = false;
        if (!result_ok(q->result)) {
            sc_pg_deliver(q, SC_PG_ERR_QUERY);
            sc_pg_conn_broken(c, "transaction end failed");
            return false;
        }
        sc_pg_deliver(q, q->err);
        pump(p);
        return true;
    default:
        break;
    }
    if (q->kind == K_USER) {
        /* Held until the Sync says whether the batch committed. */
        ExecStatusType st = q->result ? PQresultStatus(q->result) : PGRES_FATAL_ERROR;
        if (!result_ok(q->result) && st != PGRES_PIPELINE_ABORTED)
            c->batch_error = true;
        q->next = NULL;
        if (c->batch_tail)
            c->batch_tail->next = q;
        else
            c->batch_head = q;
        c->batch_tail = q;
        return true;
    }
    sc_pg_deliver(q, result_ok(q->result) ? NULL : error_of(q->result));
    return true;
}

/* The Sync of a batch arrived: sc_pg_deliver its queries, or after an error, the error and send the rest again. */
static void settle_batch(pg_conn *c)
{
    sc_pg_pool *p = c->pool;
    sc_pg_query *q = c->batch_head, *retry_head = NULL, **retry_tail = &retry_head;
    bool failed = c->batch_error;
    c->batch_head = c->batch_tail = NULL;
    c->batch_error = false;
    while (q) {
        sc_pg_query *next = q->next;
        bool ok = result_ok(q->result);
        ExecStatusType st = q->result ? PQresultStatus(q->result) : PGRES_FATAL_ERROR;
        if (!failed || (!ok && st != PGRES_PIPELINE_ABORTED) || (!q->cb && !q->tx_cb)) {
            sc_pg_deliver(q, ok ? NULL : error_of(q->result));
        } else {
            PQclear(q->result);
            q->result = NULL;
            q->sent = false;
            q->isolate = true;
            q->next = NULL;
            *retry_tail = q;
            retry_tail = &q->next;
        }
        q = next;
    }
    /* Back to the front of the queue, in their original order. */
    sc_pg_query *rev = NULL;
    while (retry_head) {
        sc_pg_query *next = retry_head->next;
        retry_head->next = rev;
        rev = retry_head;
        retry_head = next;
    }
    while (rev) {
        sc_pg_query *next = rev->next;
        pending_push(p, rev, true);
        rev = next;
    }
}

void sc_pg_read_results(pg_conn *c)
{
    sc_pg_pool *p = c->pool;
    while (c->head && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        sc_pg_query *q = c->head;
        if (q->kind == K_SYNC) {
            if (!r)
                continue;
            ExecStatusType st = PQresultStatus(r);
            PQclear(r);
            if (st != PGRES_PIPELINE_SYNC) {
                sc_pg_conn_broken(c, "unexpected result in pipeline");
                return;
            }
            c->head = q->next;
            if (!c->head)
                c->tail = NULL;
            sc_pg_item_free(q);
            settle_batch(c);
            if (c->state == PC_SETUP && !c->head) {
                conn_ready(c);
            }
            continue;
        }
        if (r) {
            if (!q->result)
                q->result = r;
            else
                PQclear(r);
            continue;
        }
        c->head = q->next;
        if (!c->head)
            c->tail = NULL;
        if (!complete(c, q))
            return;
    }
    if (c->reserved && c->depth == 0 && !c->head)
        pump(p);
    else if (c->state == PC_READY && c->depth < p->cfg.pipeline_depth)
        pump(p);
}

/* ---- prepare phase, deadlines ------------------------------------------------------------------------------- */

static void on_prepare(uv_prepare_t *h)
{
    sc_pg_pool *p = h->data;
    while (p->deferred_head) {
        sc_pg_query *q = p->deferred_head;
        p->deferred_head = q->next;
        if (!p->deferred_head)
            p->deferred_tail = NULL;
        sc_pg_deliver(q, q->err);
    }
    for (unsigned i = 0; i < p->cfg.pool_size; i++) {
        pg_conn *c = &p->conns[i];
        if (!c->need_sync || (c->state != PC_READY && c->state != PC_SETUP))
            continue;
        c->need_sync = false;
        if (!PQpipelineSync(c->pg)) {
            sc_pg_conn_broken(c, PQerrorMessage(c->pg));
            continue;
        }
        sc_pg_query *s = sc_pg_item_new(p, K_SYNC, -1, NULL, 0, NULL);
        sc_pg_fifo_push(c, s);
        sc_pg_conn_flush(c);
    }
}

static void expire(sc_pg_query *q, uint64_t now)
{
    if (q->deadline > now || (!q->cb && !q->tx_cb))
        return;
    sc_pg_pool *p = q->pool;
    p->stats.timeouts++;
    if (q->kind == K_TX_BEGIN) {
        sc_pg_tx_cb cb = q->tx_cb;
        q->tx_cb = NULL;
        cb(q->data, SC_PG_ERR_TIMEOUT, NULL);
        /* The BEGIN may still go through; sc_pg_deliver() then ends the orphaned transaction. */
        return;
    }
    sc_pg_cb cb = q->cb;
    q->cb = NULL;
    if (q->tx)
        q->tx->failed = true;
    cb(q->data, SC_PG_ERR_TIMEOUT, NULL);
}

static void on_tick(uv_timer_t *t)
{
    sc_pg_pool *p = t->data;
    uint64_t now = uv_now(p->loop);
    for (sc_pg_query *q = p->pending_head; q;) {
        sc_pg_query *next = q->next;
        if (q->deadline <= now) {
            sc_pg_pending_remove(p, q);
            p->stats.timeouts++;
            if (q->kind == K_TX_BEGIN) {
                free(q->tx);
                q->tx = NULL;
            }
            sc_pg_deliver(q, SC_PG_ERR_TIMEOUT);
        }
        q = next;
    }
    for (unsigned i = 0; i < p->cfg.pool_size; i++)
        for (sc_pg_query *q = p->conns[i].head; q; q = q->next)
            if (q->kind != K_SYNC && q->kind != K_SETUP && q->kind != K_VERSION)
                expire(q, now);
}

/* ---- pool --------------------------------------------------------------------------------------------------- */

sc_pg_pool *sc_pg_pool_new(uv_loop_t *loop, const sc_pg_config *cfg, const sc_pg_stmt *stmts, size_t nstmts)
{
    sc_pg_pool *p = sc_calloc(sizeof(*p));
    p->loop = loop;
    p->cfg = *cfg;
    if (p->cfg.pool_size == 0)
        p->cfg.pool_size = 1;
    if (p->cfg.pipeline_depth == 0)
        p->cfg.pipeline_depth = 1;
    p->conninfo = sc_strdup(cfg->conninfo ? cfg->conninfo : "");
    p->stmts = stmts;
    p->nstmts = nstmts;
    p->conns = sc_calloc(sizeof(pg_conn) * p->cfg.pool_size);
    uv_prepare_init(loop, &p->prepare);
    p->prepare.data = p;
    uv_prepare_start(&p->prepare, on_prepare);
    uv_unref((uv_handle_t *)&p->prepare);
    uv_timer_init(loop, &p->tick);
    p->tick.data = p;
    p->open_handles = 2;
    for (unsigned i = 0; i < p->cfg.pool_size; i++) {
        pg_conn *c = &p->conns[i];
        c->pool = p;
        c->index = (int)i;
        c->fd = -1;
        uv_timer_init(loop, &c->timer);
        c->timer.data = c;
        p->open_handles++;
        sc_pg_conn_connect(c);
    }
    return p;
}

bool sc_pg_pool_ready(const sc_pg_pool *p)
{
    for (unsigned i = 0; i < p->cfg.pool_size; i++)
        if (p->conns[i].state == PC_READY)
            return true;
    return false;
}

bool sc_pg_pool_schema_too_new(const sc_pg_pool *p) { return p->schema_too_new; }

void sc_pg_pool_stats(const sc_pg_pool *p, sc_pg_stats *out)
{
    *out = p->stats;
    out->connections_total = p->cfg.pool_size;
    out->connections_ready = 0;
    out->in_flight = 0;
    for (unsigned i = 0; i < p->cfg.pool_size; i++) {
        out->connections_ready += p->conns[i].state == PC_READY;
        out->in_flight += p->conns[i].depth;
    }
    out->queued = p->npending;
}

void sc_pg_pool_close(sc_pg_pool *p, void (*on_closed)(void *data), void *data)
{
    p->closing = true;
    p->on_closed = on_closed;
    p->on_closed_data = data;
    while (p->pending_head) {
        sc_pg_query *q = p->pending_head;
        sc_pg_pending_remove(p, q);
        if (q->kind == K_TX_BEGIN) {
            free(q->tx);
            q->tx = NULL;
        }
        sc_pg_deliver(q, SC_PG_ERR_SHUTDOWN);
    }
    for (unsigned i = 0; i < p->cfg.pool_size; i++) {
        pg_conn *c = &p->conns[i];
        if (c->state != PC_DOWN)
            sc_pg_conn_broken(c, NULL);
        c->state = PC_CLOSED;
        uv_timer_stop(&c->timer);
    }
    while (p->deferred_head) {
        sc_pg_query *q = p->deferred_head;
        p->deferred_head = q->next;
        sc_pg_deliver(q, q->err);
    }
    p->deferred_tail = NULL;
    /* Poll handles closed above finish through sc_pg_on_poll_closed; the rest close here. */
    for (unsigned i = 0; i < p->cfg.pool_size; i++)
        uv_close((uv_handle_t *)&p->conns[i].timer, sc_pg_on_conn_timer_closed);
    uv_close((uv_handle_t *)&p->prepare, sc_pg_on_pool_handle_closed);
    uv_close((uv_handle_t *)&p->tick, sc_pg_on_pool_handle_closed);
}
