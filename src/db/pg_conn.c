/* A pooled PostgreSQL connection's life: libpq's non-blocking connect under a deadline, the session setup and
 * statement preparation, the socket's events, and what happens when a connection breaks: its queries fail or go
 * back to the pool's queue, and it reconnects with exponential backoff. The queries themselves are in pg.c. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"
#include "db/pg_internal.h"

static void conn_watch(pg_conn *c, int events);

/* ---- connection lifecycle ----------------------------------------------------------------------------------- */

/* Every handle of the pool ends here; the last one to close while the pool is closing frees it. */
static void handle_closed(sc_pg_pool *p)
{
    if (--p->open_handles > 0 || !p->closing)
        return;
    void (*cb)(void *) = p->on_closed;
    void *data = p->on_closed_data;
    free(p->conns);
    free(p->conninfo);
    free(p);
    if (cb)
        cb(data);
}

void sc_pg_on_poll_closed(uv_handle_t *h)
{
    sc_pg_pool *p = h->data;
    free(h);
    handle_closed(p);
}

void sc_pg_on_conn_timer_closed(uv_handle_t *h) { handle_closed(((pg_conn *)h->data)->pool); }
void sc_pg_on_pool_handle_closed(uv_handle_t *h) { handle_closed(h->data); }

/* Stops watching the socket; uv_close stops the poll synchronously, so libpq may close the fd right after. */
static void conn_unwatch(pg_conn *c)
{
    if (!c->poll)
        return;
    uv_close((uv_handle_t *)c->poll, sc_pg_on_poll_closed);
    c->poll = NULL;
    c->fd = -1;
    c->events = 0;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void conn_watch(pg_conn *c, int events)
{
    int fd = PQsocket(c->pg);
    if (c->poll && fd != c->fd)
        conn_unwatch(c);
    if (!c->poll) {
        c->poll = sc_alloc(sizeof(uv_poll_t));
        uv_poll_init(c->pool->loop, c->poll, fd);
        c->poll->data = c->pool;
        c->pool->open_handles++;
        c->fd = fd;
        c->events = 0;
    }
    if (events != c->events) {
        c->events = events;
        uv_poll_start(c->poll, events, on_poll);
    }
}

static void fail_fifo(pg_conn *c, const char *err)
{
    /* Answered but not committed: without their Sync, their transaction never committed. */
    sc_pg_query *b = c->batch_head;
    c->batch_head = c->batch_tail = NULL;
    c->batch_error = false;
    while (b) {
        sc_pg_query *next = b->next;
        sc_pg_deliver(b, err);
        b = next;
    }
    sc_pg_query *q = c->head;
    c->head = c->tail = NULL;
    while (q) {
        sc_pg_query *next = q->next;
        if (q->kind == K_SYNC || q->kind == K_SETUP || q->kind == K_VERSION)
            sc_pg_item_free(q);
        else
            sc_pg_deliver(q, err);
        q = next;
    }
    c->depth = 0;
}

static void on_reconnect_timer(uv_timer_t *t)
{
    pg_conn *c = t->data;
    if (c->state == PC_CONNECTING || c->state == PC_SETUP) {
        sc_pg_conn_broken(c, "connect timed out");
        return;
    }
    sc_pg_conn_connect(c);
}

void sc_pg_conn_broken(pg_conn *c, const char *why)
{
    sc_pg_pool *p = c->pool;
    if (c->state == PC_DOWN || c->state == PC_CLOSED)
        return;
    bool was_ready = c->state == PC_READY;
    if (why) {
        /* One line when a connection goes away; the retries after it are only worth a debug line. */
        char msg[512];
        size_t n = 0;
        for (const char *w = why; *w && n + 1 < sizeof(msg); w++)
            msg[n++] = *w == '\n' || *w == '\t' ? ' ' : *w;
        while (n && msg[n - 1] == ' ')
            n--;
        msg[n] = '\0';
        if (was_ready || (!c->ever_up && c->backoff_ms == 0))
            sc_log_warn("database connection %d %s: %s", c->index, was_ready ? "lost" : "failed", msg);
        else
            sc_log_debug("database connection %d failed again: %s", c->index, msg);
    }
    conn_unwatch(c);
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->state = p->closing ? PC_CLOSED : PC_DOWN;
    c->need_sync = false;
    c->reserved = false;
    if (c->pinned) {
        c->pinned->conn = NULL;
        c->pinned->failed = true;
        c->pinned = NULL;
    }
    fail_fifo(c, p->closing ? SC_PG_ERR_SHUTDOWN : SC_PG_ERR_UNAVAILABLE);
    if (p->closing)
        return;
    p->stats.reconnects++;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    uint64_t jitter = sc_random_below(c->backoff_ms / 4 + 1);
    uv_timer_start(&c->timer, on_reconnect_timer, c->backoff_ms + jitter, 0);
    /* With no connection left and none coming up, waiting queries would only time out: fail them now. */
    if (!sc_pg_pool_ready(p) && !sc_pg_any_connecting(p)) {
        while (p->pending_head) {
            sc_pg_query *q = p->pending_head;
            sc_pg_pending_remove(p, q);
            sc_pg_deliver(q, SC_PG_ERR_UNAVAILABLE);
        }
    }
}

static void start_setup(pg_conn *c)
{
    sc_pg_pool *p = c->pool;
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        sc_pg_conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    c->state = PC_SETUP;
    char timeout[64];
    snprintf(timeout, sizeof(timeout), "SET statement_timeout = %llu",
             (unsigned long long)p->cfg.query_timeout_ms);
    sc_pg_query *q = sc_pg_item_new(p, K_SETUP, -1, timeout, 0, NULL);
    if (sc_pg_send_item(c, q) != 0)
        goto fail_item;
    q = sc_pg_item_new(p, K_VERSION, -1, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL);
    if (sc_pg_send_item(c, q) != 0)
        goto fail_item;
    for (size_t i = 0; i < p->nstmts; i++) {
        if (!PQsendPrepare(c->pg, p->stmts[i].name, p->stmts[i].sql, 0, NULL)) {
            sc_pg_conn_broken(c, PQerrorMessage(c->pg));
            return;
        }
        q = sc_pg_item_new(p, K_SETUP, -1, NULL, 0, NULL);
        q->sent = true;
        sc_pg_fifo_push(c, q);
    }
    c->need_sync = true;
    conn_watch(c, UV_READABLE);
    return;
fail_item:
    sc_pg_item_free(q);
    sc_pg_conn_broken(c, PQerrorMessage(c->pg));
}

static void connect_step(pg_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        conn_watch(c, UV_READABLE);
        break;
    case PGRES_POLLING_WRITING:
        conn_watch(c, UV_WRITABLE);
        break;
    case PGRES_POLLING_OK:
        start_setup(c);
        break;
    default:
        sc_pg_conn_broken(c, PQerrorMessage(c->pg));
        break;
    }
}

/* Notices and warnings from the server go to our log as one line, not straight to stderr. */
static void on_notice(void *arg, const char *message)
{
    pg_conn *c = arg;
    sc_log_warn("database connection %d: %s", c->index, message);
}

void sc_pg_conn_connect(pg_conn *c)
{
    sc_pg_pool *p = c->pool;
    c->pg = PQconnectStart(p->conninfo);
    if (c->pg)
        PQsetNoticeProcessor(c->pg, on_notice, c);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        c->state = PC_CONNECTING;
        sc_pg_conn_broken(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    c->state = PC_CONNECTING;
    uv_timer_start(&c->timer, on_reconnect_timer, p->cfg.connect_timeout_ms, 0);
    conn_watch(c, UV_WRITABLE);
}

static pg_conn *conn_of_poll(sc_pg_pool *p, uv_poll_t *h)
{
    for (unsigned i = 0; i < p->cfg.pool_size; i++)
        if (p->conns[i].poll == h)
            return &p->conns[i];
    return NULL;
}

void sc_pg_conn_flush(pg_conn *c)
{
    int r = PQflush(c->pg);
    if (r < 0) {
        sc_pg_conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    conn_watch(c, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sc_pg_pool *p = h->data;
    pg_conn *c = conn_of_poll(p, h);
    if (!c)
        return;
    if (c->state == PC_CONNECTING) {
        connect_step(c);
        return;
    }
    if (status < 0) {
        /* libuv reports a socket error without saying which; libpq finds the real one when it reads. */
        sc_pg_conn_broken(c, PQconsumeInput(c->pg) ? "socket error" : PQerrorMessage(c->pg));
        return;
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(c->pg)) {
            sc_pg_conn_broken(c, PQerrorMessage(c->pg));
            return;
        }
        sc_pg_read_results(c);
        if (c->state != PC_READY && c->state != PC_SETUP)
            return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        sc_pg_conn_broken(c, PQerrorMessage(c->pg));
        return;
    }
    if (events & UV_WRITABLE || c->events & UV_WRITABLE)
        sc_pg_conn_flush(c);
}
